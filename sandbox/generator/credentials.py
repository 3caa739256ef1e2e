"""Fake per-tenant credentials the sandbox accepts, in each provider's format.

``credentials.json`` maps tenant -> source -> ``{"secret": ..., "expired_secret": ...,
...}``. ``secret`` is what a tenant would store (``bizos credentials set``);
``expired_secret`` is refused by the sandbox with the provider's "expired"
error, for testing that path; other keys are non-secret settings (the GA4
property id), or for SP-API the fields of the JSON secret (client id and
secret, refresh token), which the sandbox's Login with Amazon endpoint checks.
"""

from __future__ import annotations

import json
import string
from typing import Any

from sandbox.generator.core import stream, token

LOWER_ALNUM = string.ascii_lowercase + string.digits
URLSAFE = string.ascii_letters + string.digits + "-_"


def _one_source(seed: int, tenant_id: str, source: str, generation: str) -> str:
    rng = stream(seed, tenant_id, "credentials", source, generation)
    if source == "stripe":
        return "sk_test_51" + token(rng, 14) + token(rng, 84)
    if source == "ga4":
        return "ya29.sbx-" + token(rng, 120, URLSAFE)
    if source == "crm_api":
        return "crm_" + token(rng, 40)
    if source == "saleor":
        return token(rng, 30)  # Saleor app tokens are 30 characters
    if source == "cms_forms":
        return "cmsf_" + token(rng, 36, LOWER_ALNUM)
    if source == "ai_usage":
        return "aiu_" + token(rng, 44)
    if source == "sp_api":
        # A Login with Amazon app and a seller's authorization, as Amazon formats them.
        return json.dumps(
            {
                "client_id": "amzn1.application-oa2-client." + token(rng, 32, "0123456789abcdef"),
                "client_secret": "amzn1.oa2-cs.v1." + token(rng, 64, "0123456789abcdef"),
                "refresh_token": "Atzr|" + token(rng, 300, URLSAFE),
            },
            sort_keys=True,
        )
    raise ValueError(f"unknown source {source!r}")


def tenant_credentials(seed: int, tenant_id: str, sources: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for source in sources:
        entry: dict[str, Any] = {
            "secret": _one_source(seed, tenant_id, source, "current"),
            "expired_secret": _one_source(seed, tenant_id, source, "expired"),
        }
        if source == "ga4":
            rng = stream(seed, tenant_id, "credentials", "ga4.property")
            entry["property_id"] = str(rng.randrange(300_000_000, 499_999_999))
            email = f"bizos-ingest@{tenant_id}-analytics.iam.gserviceaccount.com"
            entry["client_email"] = email
            # A service-account key file as Google issues it. The sandbox's token
            # endpoint (POST /ga4/token) trades a JWT naming this client_email for
            # the access token in ``secret``; it does not check the signature.
            entry["service_account_json"] = json.dumps(
                {
                    "type": "service_account",
                    "project_id": f"{tenant_id}-analytics",
                    "private_key_id": token(rng, 40, "0123456789abcdef"),
                    "private_key": "-----BEGIN PRIVATE KEY-----\nSANDBOX-NOT-A-REAL-KEY-"
                    + token(rng, 64)
                    + "\n-----END PRIVATE KEY-----\n",
                    "client_email": email,
                    "client_id": str(rng.randrange(10**20, 10**21)),
                    "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                    "token_uri": "https://oauth2.googleapis.com/token",
                },
                sort_keys=True,
            )
        if source == "sp_api":
            # The JSON stored with `bizos credentials set`; the sandbox's token
            # endpoint trades the refresh token for access tokens.
            entry.update(json.loads(entry["secret"]))
        out[source] = entry
    return out
