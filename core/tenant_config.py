"""Per-tenant configuration files, as scoring and supplier policy keep them: one YAML
file per tenant under ``config/<kind>/`` (``default.yaml`` for the rest), validated by
a pydantic model with errors that name the file and each bad key, and versioned by
content so every row a configuration produced can say which one it was."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from core.tenancy import check_tenant_id

DEFAULT_NAME = "default"

Model = TypeVar("Model", bound=BaseModel)


def tenant_file(config_dir: Path, tenant_id: str) -> Path:
    """The tenant's own file, else the default one."""
    own = config_dir / f"{check_tenant_id(tenant_id)}.yaml"
    return own if own.exists() else config_dir / f"{DEFAULT_NAME}.yaml"


def content_version(config: BaseModel, version: int) -> str:
    """``v<version>-<hash of the content>``: a change to the file without a bump of
    its ``version`` still gives a new version."""
    digest = hashlib.sha256(
        json.dumps(config.model_dump(mode="json"), sort_keys=True).encode()
    ).hexdigest()
    return f"v{version}-{digest[:8]}"


def parse_yaml(text: str, model: type[Model], *, where: str, error: type[ValueError]) -> Model:
    """Validate YAML text as ``model``; ``error`` names ``where`` and each bad key."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{where}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise error(f"{where}: expected a mapping at the top, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise error(f"{where}: {problems}") from exc


def load_tenant_file(
    config_dir: Path, tenant_id: str, model: type[Model], *, what: str, error: type[ValueError]
) -> Model:
    """The tenant's validated configuration (its own file or the default)."""
    path = tenant_file(config_dir, tenant_id)
    if not path.exists():
        raise error(f"{path}: no {what} (and no {DEFAULT_NAME}.yaml)")
    return parse_yaml(path.read_text(encoding="utf-8"), model, where=str(path), error=error)
