"""Typed FastAPI dependencies: the store, the key store, and the caller's tenant."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from core.settings import Settings
from serving.keys import ApiKeyStore, lookup_tenant
from serving.store import ServingStore

api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="ApiKey",
    description="Tenant API key (`bz_...`). The key decides the tenant.",
)
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="Bearer",
    description="The same API key sent as `Authorization: Bearer bz_...`.",
)


def request_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_store(request: Request) -> ServingStore:
    return request.app.state.store


def get_api_keys(request: Request) -> ApiKeyStore:
    return request.app.state.api_keys


SettingsDep = Annotated[Settings, Depends(request_settings)]
StoreDep = Annotated[ServingStore, Depends(get_store)]
ApiKeysDep = Annotated[ApiKeyStore, Depends(get_api_keys)]


def current_tenant(
    keys: ApiKeysDep,
    api_key: Annotated[str | None, Security(api_key_header)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> str:
    """The tenant bound to the request's key; 401 when there is no valid key.

    The tenant never comes from the URL or the body, so a caller can only ever
    name its own tenant. The key itself is never logged or echoed back.
    """
    key = api_key or (credentials.credentials if credentials else None)
    if not key:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="missing API key: send X-API-Key or Authorization: Bearer",
            headers={"WWW-Authenticate": 'Bearer realm="bizos"'},
        )
    tenant_id = lookup_tenant(keys, key)
    if tenant_id is None:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="invalid API key",
            headers={"WWW-Authenticate": 'Bearer realm="bizos", error="invalid_token"'},
        )
    return tenant_id


CurrentTenant = Annotated[str, Depends(current_tenant)]
