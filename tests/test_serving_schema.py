"""The OpenAPI document is complete: schemathesis drives every operation from it.

Property-based, against the real app (embedded store, two published tenants, a real
key), in-process over ASGI. Each operation gets a small, derandomized budget, so this
runs in seconds and the same way every time. Checks: no 5xx, every status, content
type, header and body as documented (problem+json for errors), and malformed input
(the negative cases schemathesis makes from the schema) refused with a 4xx.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from core.contracts.lead_model_cards import LEAD_MODEL_CARDS
from core.contracts.lead_score_history import LEAD_SCORE_HISTORY
from core.contracts.supplier_risk import SUPPLIER_RISK
from core.settings import get_settings
from serving.keys import create_key
from serving.main import create_app
from serving.publish import publish_lead_scores, publish_table
from tests.test_serving_contract import history_rows, lead_scores_table, model_card_row
from tests.test_sourcing_api import publish_both as publish_sourcing
from tests.test_supplier_reviews import risk_row

# The app is built at import, as schemathesis needs its schema to make the tests; that
# opens nothing. Its home is filled (and removed) by the fixture below, before any call.
HOME = Path(tempfile.gettempdir()) / f"bizos-schema-{uuid.uuid4().hex}"
SETTINGS = get_settings(home=HOME, database_url=None, api_rate_limit=100_000)
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(SETTINGS))


@pytest.fixture(scope="module")
def api_key() -> Iterator[str]:
    HOME.mkdir(parents=True)
    try:
        publish_lead_scores(SETTINGS, "acme", lead_scores_table("acme", 60))
        publish_lead_scores(SETTINGS, "globex", lead_scores_table("globex", 20))
        card = pa.Table.from_pylist([model_card_row("acme")])
        publish_table(SETTINGS, LEAD_MODEL_CARDS, "acme", card)
        history = pa.Table.from_pylist(history_rows("acme", "lead-0003", 4))
        publish_table(SETTINGS, LEAD_SCORE_HISTORY, "acme", history)
        risk = [risk_row("acme", f"S-{i}") for i in range(1, 4)]
        publish_table(SETTINGS, SUPPLIER_RISK, "acme", pa.Table.from_pylist(risk))
        publish_sourcing(SETTINGS)
        yield create_key(SETTINGS, "acme")
    finally:
        shutil.rmtree(HOME, ignore_errors=True)


@schema.parametrize()
@settings(
    max_examples=20,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_keeps_its_documented_contract(
    case: schemathesis.Case, api_key: str
) -> None:
    # A cursor is an opaque token: one the schema allows but we never issued is a 400,
    # not "valid data rejected", so that one check is left out.
    case.call_and_validate(
        headers={"X-API-Key": api_key},
        excluded_checks=[schemathesis.checks.positive_data_acceptance],
    )


def test_the_document_names_every_route_and_error_shape() -> None:
    document = schema.raw_schema
    assert set(document["paths"]) == {
        "/health",
        "/ready",
        "/metrics",
        "/v1/leads/scores",
        "/v1/leads/{lead_id}/score",
        "/v1/leads/model",
        "/v1/suppliers/risk",
        "/v1/suppliers/{supplier_id}/risk",
        "/v1/suppliers/reviews",
        "/v1/suppliers/{supplier_id}/reviews",
        "/v1/sourcing/opportunities",
        "/v1/sourcing/opportunities/{asin}",
        "/v1/ops/freshness",
    }
    scores = document["paths"]["/v1/leads/scores"]["get"]
    for status in ("400", "401", "403", "422", "429", "503"):
        assert list(scores["responses"][status]["content"]) == ["application/problem+json"]
    assert {"ApiKey", "Bearer"} <= set(document["components"]["securitySchemes"])
