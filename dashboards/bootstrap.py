"""The Superset side of ``bizos dashboards``: run by Superset's own Python, never imported
by the platform's (it needs Superset, SQLAlchemy 1.4 and their pins).

``python dashboards/bootstrap.py import|grant|export``, with a JSON request on standard
input (so a password is never an argument) and a JSON answer on standard output.

- ``import``: upgrade the metadata database, create the admin, import the bundle with
  the database URIs and schemas of this installation, and give every tenant a role
  with a row-level filter on every dataset. A dataset whose table is not in the store
  yet is left out, and its charts become a markdown note saying so, so a dashboard
  whose mart has not landed opens and says why it is empty. Nothing is written when
  the rendered bundle and the tenants are those of the last import.
- ``grant``: give a user a tenant's role, creating the user as an analyst.
- ``export``: write the dashboards as they are now back to the bundle, with the
  installation's URIs, ids and schemas taken out again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ANALYST_ROLE = "bizos_analyst"
TENANT_ROLE_PREFIX = "tenant:"
RLS_GROUP = "tenant_id"
DENY_FILTER = "bizos: no tenant, no rows"
NOT_LANDED_PREFIX = "MARKDOWN-notlanded-"
PLACEHOLDER_URI = "bizos://{name}"
SQL_PLACEHOLDER = "bizos://sql/"
SQL_DIR = Path(__file__).resolve().parent / "sql"
_TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def _bundle_files(bundle: Path) -> dict[str, str]:
    return {
        str(p.relative_to(bundle)): p.read_text()
        for p in sorted(bundle.rglob("*.yaml"))
        if p.is_file()
    }


def _db_key(path: str) -> str:
    """``databases/serving.yaml`` -> ``serving``: the key the request's URIs use."""
    return Path(path).stem


def _existing_tables(uri: str, extra: dict[str, Any], schema: str | None) -> set[str]:
    import sqlalchemy as sa

    engine = sa.create_engine(uri, **extra.get("engine_params", {}))
    try:
        inspector = sa.inspect(engine)
        found = set(inspector.get_table_names(schema=schema)) | set(
            inspector.get_view_names(schema=schema)
        )
        if engine.dialect.name != "postgresql":
            return found
        # The serving migrations create every table up front: on Postgres a table
        # has landed once a tenant's rows are in it (the DuckDB store has a view only
        # after a publish). Tables this login may not read are not ours to show.
        landed = set()
        with engine.connect() as conn:
            for table in sorted(found):
                name = f'"{schema}"."{table}"' if schema else f'"{table}"'
                readable = conn.exec_driver_sql(
                    "SELECT has_table_privilege(%(name)s, 'SELECT')", {"name": name}
                ).scalar()
                if readable and conn.exec_driver_sql(f"SELECT 1 FROM {name} LIMIT 1").first():
                    landed.add(table)
        return landed
    finally:
        engine.dispose()


def virtual_sql(placeholder: str, uri: str, schema: str | None) -> tuple[str, list[str]]:
    """A virtual dataset's SQL for this store's dialect, and the tables it reads.

    The bundle names it ``bizos://sql/<name>``; the text is
    ``dashboards/sql/<name>.<dialect>.sql`` (DuckDB and Postgres unnest JSON
    differently), with ``{schema}`` naming the store's schema.
    """
    name = placeholder.removeprefix(SQL_PLACEHOLDER)
    dialect = uri.split(":", 1)[0].split("+", 1)[0]
    path = SQL_DIR / f"{name}.{dialect}.sql"
    if not path.is_file():
        raise ValueError(f"virtual dataset {name}: no SQL for {dialect} ({path})")
    text = path.read_text()
    tables = sorted(set(re.findall(r"\{schema\}\.(\w+)", text)))
    return text.replace("{schema}", schema or "main").strip(), tables


def render_bundle(
    bundle: Path, databases: dict[str, dict[str, Any]]
) -> tuple[dict[str, str], list[str]]:
    """The bundle as this installation imports it, and the tables it found missing."""
    files = _bundle_files(bundle)
    db_by_uuid: dict[str, dict[str, Any]] = {}
    out: dict[str, str] = {}
    for path, text in files.items():
        if path.startswith("databases/"):
            doc = yaml.safe_load(text)
            conf = databases[_db_key(path)]
            doc["sqlalchemy_uri"] = conf["uri"]
            doc.setdefault("extra", {})["engine_params"] = conf.get("engine_params", {})
            db_by_uuid[str(doc["uuid"])] = {
                **conf,
                "tables": _existing_tables(conf["uri"], doc["extra"], conf.get("schema")),
            }
            out[path] = yaml.safe_dump(doc, sort_keys=False)
    missing_datasets: dict[str, str] = {}
    for path, text in files.items():
        if path.startswith("datasets/"):
            doc = yaml.safe_load(text)
            conf = db_by_uuid[str(doc["database_uuid"])]
            doc["schema"] = conf.get("schema")
            needs = [doc["table_name"]]
            if str(doc.get("sql") or "").startswith(SQL_PLACEHOLDER):
                doc["sql"], needs = virtual_sql(doc["sql"], conf["uri"], conf.get("schema"))
            absent = [t for t in needs if t not in conf["tables"]]
            if absent:
                missing_datasets[str(doc["uuid"])] = absent[0]
                continue
            out[path] = yaml.safe_dump(doc, sort_keys=False)
    missing_charts: dict[str, str] = {}
    for path, text in files.items():
        if path.startswith("charts/"):
            doc = yaml.safe_load(text)
            table = missing_datasets.get(str(doc["dataset_uuid"]))
            if table is not None:
                missing_charts[str(doc["uuid"])] = table
                continue
            out[path] = text
    for path, text in files.items():
        if path.startswith("dashboards/"):
            doc = yaml.safe_load(text)
            doc["position"] = _with_notes(doc["position"], missing_charts)
            out[path] = yaml.safe_dump(doc, sort_keys=False)
        elif path == "metadata.yaml":
            out[path] = text
    return out, sorted(set(missing_datasets.values()))


def _with_notes(position: dict[str, Any], missing: dict[str, str]) -> dict[str, Any]:
    """Replace each chart of a missing table by a markdown note in the same place."""
    renamed: dict[str, str] = {}
    result: dict[str, Any] = {}
    for key, node in position.items():
        if isinstance(node, dict) and node.get("type") == "CHART":
            table = missing.get(str(node["meta"].get("uuid")))
            if table is not None:
                new_id = NOT_LANDED_PREFIX + str(node["meta"]["uuid"])
                renamed[key] = new_id
                name = node["meta"].get("sliceName", "This chart")
                result[new_id] = {
                    "id": new_id,
                    "type": "MARKDOWN",
                    "children": [],
                    "parents": node.get("parents", []),
                    "meta": {
                        "width": node["meta"].get("width", 4),
                        "height": node["meta"].get("height", 50),
                        "code": (
                            f"### {name}\n\n**Not landed yet**: the table `{table}` has not"
                            " been published to the serving store. This chart appears at the"
                            " next `bizos dashboards up` after its mart is published."
                        ),
                    },
                }
                continue
        result[key] = node
    for node in result.values():
        if isinstance(node, dict) and "children" in node:
            node["children"] = [renamed.get(c, c) for c in node["children"]]
    return result


def _fingerprint(contents: dict[str, str], tenants: list[str], version: str) -> str:
    digest = hashlib.sha256(version.encode())
    for path in sorted(contents):
        digest.update(path.encode() + b"\0" + contents[path].encode() + b"\0")
    digest.update(json.dumps(sorted(tenants)).encode())
    return digest.hexdigest()


# -- inside the app --------------------------------------------------------------------


def _app() -> Any:
    from superset.app import create_app

    return create_app()


def _upgrade_metadata(state: Path) -> bool:
    """Migrate Superset's metadata database and sync its roles, once per Superset version."""
    import superset
    from flask_migrate import upgrade
    from superset import appbuilder, security_manager

    marker = state / "metadata_version"
    version = superset.__version__ if hasattr(superset, "__version__") else "unknown"
    if marker.exists() and marker.read_text() == version:
        return False
    upgrade(directory=str(Path(superset.__file__).parent / "migrations"))
    appbuilder.add_permissions(update_perms=True)
    security_manager.sync_role_definitions()
    marker.write_text(version)
    return True


def _ensure_admin(username: str, password: str) -> bool:
    from superset import security_manager

    if security_manager.find_user(username=username) is not None:
        return False
    role = security_manager.find_role("Admin")
    user = security_manager.add_user(
        username, "BizOS", "Admin", f"{username}@localhost", role, password=password
    )
    if not user:
        raise RuntimeError(f"could not create the Superset admin {username}")
    return True


def _datasets(uuids: list[str]) -> list[Any]:
    """The bundle's datasets as imported here (those whose table has landed)."""
    from superset.connectors.sqla.models import SqlaTable
    from superset.extensions import db

    return list(db.session.query(SqlaTable).filter(SqlaTable.uuid.in_(uuids)))


def _ensure_analyst_role(datasets: list[Any]) -> None:
    """The role every analyst holds: read our datasets and dashboards, nothing else.

    Gamma gives the screens; this adds ``datasource_access`` on each dataset. Rows are
    limited by the tenant roles' filters, and by the deny filter for a user with none.
    """
    from superset import security_manager

    role = security_manager.find_role(ANALYST_ROLE) or security_manager.add_role(ANALYST_ROLE)
    for dataset in datasets:
        pv = security_manager.add_permission_view_menu("datasource_access", dataset.get_perm())
        security_manager.add_permission_role(role, pv)


def _open_dashboards_to_analysts(contents: dict[str, str]) -> None:
    """Give the analyst role our dashboards (DASHBOARD_RBAC): what they may open does
    not depend on which marts have landed. Rows are still the tenant filters' call."""
    from superset import security_manager
    from superset.extensions import db
    from superset.models.dashboard import Dashboard

    role = security_manager.find_role(ANALYST_ROLE)
    uuids = [yaml.safe_load(t)["uuid"] for p, t in contents.items() if p.startswith("dashboards/")]
    for dashboard in db.session.query(Dashboard).filter(Dashboard.uuid.in_(uuids)):
        if role not in dashboard.roles:
            dashboard.roles.append(role)
    db.session.commit()


def _tenant_role(tenant: str) -> Any:
    from superset import security_manager

    if not _TENANT_ID.fullmatch(tenant):
        raise ValueError(f"tenant id {tenant!r} is not a valid tenant id")
    name = TENANT_ROLE_PREFIX + tenant
    return security_manager.find_role(name) or security_manager.add_role(name)


def _ensure_tenant_filters(tenants: list[str], datasets: list[Any]) -> None:
    """One Regular filter per tenant role on every dataset, and a Base filter that
    gives no rows to a user who holds no tenant role (an analyst created by hand)."""
    from superset import security_manager
    from superset.connectors.sqla.models import RowLevelSecurityFilter
    from superset.extensions import db

    for tenant in sorted(set(tenants)):
        role = _tenant_role(tenant)
        name = f"bizos tenant {tenant}"
        rls = db.session.query(RowLevelSecurityFilter).filter_by(name=name).one_or_none()
        if rls is None:
            rls = RowLevelSecurityFilter(name=name)
            db.session.add(rls)
        _set_if_changed(rls, "filter_type", "Regular")
        _set_if_changed(rls, "group_key", RLS_GROUP)
        _set_if_changed(rls, "clause", f"tenant_id = '{tenant}'")
        _set_if_changed(rls, "description", f"rows of tenant {tenant} only")
        _set_list_if_changed(rls, "roles", [role])
        _set_list_if_changed(rls, "tables", datasets)
    existing = [
        r for r in security_manager.get_all_roles() if r.name.startswith(TENANT_ROLE_PREFIX)
    ]
    deny = db.session.query(RowLevelSecurityFilter).filter_by(name=DENY_FILTER).one_or_none()
    if deny is None:
        deny = RowLevelSecurityFilter(name=DENY_FILTER)
        db.session.add(deny)
    _set_if_changed(deny, "filter_type", "Base")
    _set_if_changed(deny, "clause", "1 = 0")
    _set_if_changed(deny, "description", "exempt: Admin and the tenant roles")
    _set_list_if_changed(deny, "roles", [security_manager.find_role("Admin"), *existing])
    _set_list_if_changed(deny, "tables", datasets)
    db.session.commit()


def _set_if_changed(obj: Any, attr: str, value: Any) -> None:
    if getattr(obj, attr) != value:
        setattr(obj, attr, value)


def _set_list_if_changed(obj: Any, attr: str, values: list[Any]) -> None:
    """Replace a relationship only when its members differ, so a second ``up`` writes
    nothing (the objects are flushed first, so new ones have ids to compare)."""
    from superset.extensions import db

    db.session.flush()
    if {v.id for v in getattr(obj, attr)} != {v.id for v in values}:
        setattr(obj, attr, values)


def do_import(request: dict[str, Any]) -> dict[str, Any]:
    state = Path(os.environ["BIZOS_SUPERSET_STATE_DIR"])
    bundle = Path(request["bundle"])
    app = _app()
    with app.app_context():
        import superset
        from superset.commands.importers.v1.assets import ImportAssetsCommand
        from superset.extensions import db

        upgraded = _upgrade_metadata(state)
        admin_created = _ensure_admin(request["admin_user"], request["admin_password"])
        contents, missing = render_bundle(bundle, request["databases"])
        dataset_uuids = [
            yaml.safe_load(t)["uuid"] for p, t in contents.items() if p.startswith("datasets/")
        ]
        version = getattr(superset, "__version__", "unknown")
        fingerprint = _fingerprint(contents, request["tenants"], version)
        marker = state / "bundle.sha256"
        imported = not (marker.exists() and marker.read_text() == fingerprint)
        if imported:
            from flask import g
            from superset import security_manager

            # The import checks the acting user's rights: act as the admin.
            g.user = security_manager.find_user(username=request["admin_user"])
            ImportAssetsCommand(contents).run()
            datasets = _datasets(dataset_uuids)
            _ensure_analyst_role(datasets)
            _open_dashboards_to_analysts(contents)
            _ensure_tenant_filters(request["tenants"], datasets)
            db.session.commit()
            marker.write_text(fingerprint)
    return {
        "metadata_upgraded": upgraded,
        "admin_created": admin_created,
        "imported": imported,
        "not_landed": missing,
        "tenants": sorted(request["tenants"]),
    }


def do_grant(request: dict[str, Any]) -> dict[str, Any]:
    """Give ``user`` the role of ``tenant``; create the user as an analyst if needed."""
    app = _app()
    with app.app_context():
        from superset import security_manager
        from superset.extensions import db

        user = security_manager.find_user(username=request["user"])
        password = request.get("password") or ""
        # Refuse before anything is written: a failed grant creates no role or filter.
        if user is None and len(password) < 8:
            raise ValueError(
                f"user {request['user']} does not exist: a new user needs a password of at"
                " least 8 characters on stdin (nothing was created)"
            )
        analyst = security_manager.find_role(ANALYST_ROLE)
        if analyst is None:
            raise RuntimeError("no analyst role: run `bizos dashboards up` first")
        datasets = _datasets(request["dataset_uuids"])
        tenant_roles = {
            r.name[len(TENANT_ROLE_PREFIX) :]
            for r in security_manager.get_all_roles()
            if r.name.startswith(TENANT_ROLE_PREFIX)
        }
        _ensure_tenant_filters(sorted(tenant_roles | {request["tenant"]}), datasets)
        role = _tenant_role(request["tenant"])
        created = user is None
        if user is None:
            user = security_manager.add_user(
                request["user"],
                request["user"],
                "analyst",
                f"{request['user']}@localhost",
                [security_manager.find_role("Gamma"), analyst, role],
                password=password,
            )
            if not user:
                raise RuntimeError(f"could not create user {request['user']}")
        else:
            wanted = [r for r in (security_manager.find_role("Gamma"), analyst, role) if r]
            for r in wanted:
                if r not in user.roles:
                    user.roles.append(r)
            security_manager.update_user(user)
        db.session.commit()
        return {
            "user": user.username,
            "created": created,
            "tenants": sorted(
                r.name[len(TENANT_ROLE_PREFIX) :]
                for r in user.roles
                if r.name.startswith(TENANT_ROLE_PREFIX)
            ),
        }


_ID_PARAMS = ("slice_id", "dashboards")


def _normalized(
    path: str, doc: dict[str, Any], db_names: dict[str, str], sql_names: dict[str, str]
) -> dict[str, Any]:
    """Take this installation out of an exported file: URIs, schemas, numeric ids, and the
    dialect's text of a virtual dataset (it lives in ``dashboards/sql/``)."""
    if path.startswith("databases/"):
        name = db_names.get(str(doc["uuid"]), "serving")
        doc["sqlalchemy_uri"] = PLACEHOLDER_URI.format(name=name)
        doc.pop("password", None)
        doc.get("extra", {})["engine_params"] = {}
        doc.pop("ssh_tunnel", None)
    elif path.startswith("datasets/"):
        doc["schema"] = db_names.get(str(doc["database_uuid"]), "serving")
        if str(doc["uuid"]) in sql_names:
            doc["sql"] = sql_names[str(doc["uuid"])]
    elif path.startswith("charts/"):
        params = doc.get("params") or {}
        params["datasource"] = "0__table"
        for key in _ID_PARAMS:
            params.pop(key, None)
        if doc.get("query_context"):
            qc = json.loads(doc["query_context"])
            qc["datasource"] = {"id": 0, "type": "table"}
            if "form_data" in qc:
                qc["form_data"]["datasource"] = "0__table"
                for key in _ID_PARAMS:
                    qc["form_data"].pop(key, None)
            for query in qc.get("queries", []):
                query.pop("datasource", None)
            doc["query_context"] = json.dumps(qc, sort_keys=True)
    elif path.startswith("dashboards/"):
        for node in doc.get("position", {}).values():
            if isinstance(node, dict) and node.get("type") == "CHART":
                node["meta"]["chartId"] = 0
        meta = doc.get("metadata") or {}
        meta.pop("positions", None)
        for conf in (meta.get("chart_configuration") or {}).values():
            conf.get("crossFilters", {}).pop("chartsInScope", None)
    return doc


def do_export(request: dict[str, Any]) -> dict[str, Any]:
    """Export our dashboards (with their charts, datasets, databases) into the bundle.

    Files keep their names in the bundle (found by UUID); new ones are named as
    Superset names them. A dashboard that shows a not-landed note is left as it is
    in the bundle: exporting it would write the note over its charts.
    """
    bundle = Path(request["bundle"])
    existing: dict[str, str] = {}
    db_names: dict[str, str] = {}
    sql_names: dict[str, str] = {}
    for path, text in _bundle_files(bundle).items():
        doc = yaml.safe_load(text)
        if isinstance(doc, dict) and "uuid" in doc:
            existing[str(doc["uuid"])] = path
            if path.startswith("databases/"):
                db_names[str(doc["uuid"])] = _db_key(path)
            if str(doc.get("sql") or "").startswith(SQL_PLACEHOLDER):
                sql_names[str(doc["uuid"])] = doc["sql"]
    app = _app()
    written, kept = [], []
    with app.app_context():
        from flask import g
        from superset import security_manager
        from superset.commands.dashboard.export import ExportDashboardsCommand
        from superset.extensions import db
        from superset.models.dashboard import Dashboard

        g.user = security_manager.find_user(username=request["admin_user"])
        dashboard_uuids = [
            yaml.safe_load(t)["uuid"]
            for p, t in _bundle_files(bundle).items()
            if p.startswith("dashboards/")
        ]
        found = db.session.query(Dashboard).filter(Dashboard.uuid.in_(dashboard_uuids)).all()
        ids = []
        for dashboard in found:
            if NOT_LANDED_PREFIX in (dashboard.position_json or ""):
                kept.append(dashboard.dashboard_title)
            else:
                ids.append(dashboard.id)
        for path, content in ExportDashboardsCommand(ids, export_related=True).run():
            if not path.endswith(".yaml") or path.endswith("metadata.yaml"):
                continue
            # Superset puts the files under a dated root folder; keep what follows it.
            parts = path.split("/")
            kinds = ("databases", "datasets", "charts", "dashboards")
            rel = "/".join(parts[next(i for i, p in enumerate(parts) if p in kinds) :])
            doc = yaml.safe_load(content() if callable(content) else content)
            doc = _normalized(rel, doc, db_names, sql_names)
            target = existing.get(str(doc.get("uuid")), rel)
            (bundle / target).parent.mkdir(parents=True, exist_ok=True)
            (bundle / target).write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
            written.append(target)
    return {"written": sorted(set(written)), "kept_not_landed": sorted(kept)}


def main() -> None:
    command = sys.argv[1]
    request = json.loads(sys.stdin.read() or "{}")
    handlers = {"import": do_import, "grant": do_grant, "export": do_export}
    try:
        result = handlers[command](request)
    except (ValueError, RuntimeError) as exc:
        print(json.dumps({"error": str(exc)}))
        sys.exit(2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
