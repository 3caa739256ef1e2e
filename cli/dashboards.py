"""`bizos dashboards`: Superset as a service of the platform (up, down, export, grant).

Superset runs from a virtualenv of its own (``.superset-venv``: it pins SQLAlchemy 1.4
and pandas 2.1), built from ``dashboards/requirements.txt`` and ``constraints.txt``.
This module never imports Superset: it builds that venv, then runs
``dashboards/bootstrap.py`` with Superset's Python for everything inside Superset
(metadata, admin, the bundle import, roles and row-level filters), and starts the
web server as a child of its own session. The state of one installation (metadata
database, secret key, pid, log) lives in ``BIZOS_HOME/superset``.

Superset reads only the serving store: the views-only DuckDB file opened read-only
(DuckDB allows one writer, the publisher) or the Postgres ``serving`` schema, and the
ops database for the platform-health dashboard.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from rich.console import Console

from core.settings import PROJECT_ROOT, Settings, Target, get_settings

dashboards_app = typer.Typer(
    help="Superset dashboards: start, stop, export, grant tenants.", no_args_is_help=True
)
console = Console(width=120, stderr=True)

DASHBOARDS_DIR = PROJECT_ROOT / "dashboards"
BUNDLE_DIR = DASHBOARDS_DIR / "bundle"
REQUIREMENTS = DASHBOARDS_DIR / "requirements.txt"
CONSTRAINTS = DASHBOARDS_DIR / "constraints.txt"
EMBEDDED_ADMIN = ("admin", "admin")
START_TIMEOUT_S = 180.0
DASHBOARDS_GROUP = "bizos_dashboards"
"""The NOLOGIN role that holds Superset's grants and policies (serving_0011, ops_0007)."""
DEFAULT_LOGIN = "bizos_superset"


class DashboardSettings(BaseSettings):
    """``BIZOS_SUPERSET_*``: where Superset runs and who administers it."""

    model_config = SettingsConfigDict(
        env_prefix="BIZOS_SUPERSET_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    port: int = Field(default=8088, ge=1, le=65535)
    admin_user: str | None = None
    admin_password: SecretStr | None = None
    venv: Path = Field(default=PROJECT_ROOT / ".superset-venv")
    database_url: SecretStr | None = Field(
        default=None,
        description="Postgres login Superset reads serving (and ops) as; required on Postgres"
        " (`bizos dashboards db-role` makes it)",
    )
    secret_key: SecretStr | None = None


class DashboardsError(RuntimeError):
    """Superset cannot be set up or reached; the message says what and where."""


@dataclass(frozen=True)
class Superset:
    """One installation: its venv, its state under BIZOS_HOME, its port."""

    settings: Settings
    dashboard: DashboardSettings

    @property
    def state_dir(self) -> Path:
        return self.settings.home / "superset"

    @property
    def python(self) -> Path:
        return self.dashboard.venv / "bin" / "python"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard.port}"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "superset.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "superset.log"

    def admin(self) -> tuple[str, str]:
        """The admin's name and password; defaults only for the embedded target."""
        user = self.dashboard.admin_user
        password = self.dashboard.admin_password
        if user and password:
            return user, password.get_secret_value()
        if self.settings.target is Target.DUCKDB:
            return user or EMBEDDED_ADMIN[0], (
                password.get_secret_value() if password else EMBEDDED_ADMIN[1]
            )
        raise DashboardsError(
            "BIZOS_SUPERSET_ADMIN_USER and BIZOS_SUPERSET_ADMIN_PASSWORD must be set"
            " on the Postgres target (there is no default admin outside embedded mode)"
        )

    def env(self) -> dict[str, str]:
        """The environment of Superset's processes: its config, state and key, nothing else
        of the platform's secrets."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("BIZOS_", "SUPERSET_", "DAGSTER_"))
        }
        env.update(
            SUPERSET_CONFIG_PATH=str(DASHBOARDS_DIR / "superset_config.py"),
            BIZOS_SUPERSET_STATE_DIR=str(self.state_dir),
            FLASK_APP="superset.app:create_app()",
            PYTHONDONTWRITEBYTECODE="1",
        )
        if self.dashboard.secret_key is not None:
            env["BIZOS_SUPERSET_SECRET_KEY"] = self.dashboard.secret_key.get_secret_value()
        return env


def superset_for(settings: Settings | None = None) -> Superset:
    return Superset(settings or get_settings(), DashboardSettings())


# -- the venv ----------------------------------------------------------------------------


def _uv() -> str:
    found = shutil.which("uv") or str(PROJECT_ROOT / ".tools" / "bin" / "uv")
    if not Path(found).exists():
        raise DashboardsError("uv not found (PATH or .tools/bin/uv): run `make env` first")
    return found


def ensure_venv(superset: Superset) -> bool:
    """Build Superset's venv if it is missing or older than its requirements."""
    venv = superset.dashboard.venv
    stamp = venv / ".synced"
    inputs = max(REQUIREMENTS.stat().st_mtime, CONSTRAINTS.stat().st_mtime)
    if stamp.exists() and stamp.stat().st_mtime >= inputs and superset.python.exists():
        return False
    console.print(f"building Superset's virtualenv in {venv} (a few minutes, once)")
    uv = _uv()
    if not superset.python.exists():
        _run([uv, "venv", "--python", "3.11", str(venv)])
    _run(
        [uv, "pip", "install", "--python", str(superset.python), "--compile-bytecode"]
        + ["-r", str(REQUIREMENTS), "-c", str(CONSTRAINTS)]
    )
    stamp.touch()
    return True


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise DashboardsError(f"{Path(cmd[0]).name} failed:\n{done.stderr[-3000:]}")


# -- what Superset reads -----------------------------------------------------------------


def database_request(superset: Superset) -> dict[str, dict[str, Any]]:
    """The URIs, engine parameters and schemas of the bundle's two databases here."""
    settings = superset.settings
    if settings.target is Target.DUCKDB:
        views = settings.serving_dir / "serving.duckdb"
        if not views.exists():
            raise DashboardsError(
                f"{views} does not exist: nothing has been published yet (run `bizos run`)"
            )
        from migrations import ensure_current, ops_sqlite_path

        ensure_current(settings, "ops")
        return {
            "serving": {
                "uri": f"duckdb:///{views}",
                "engine_params": {"connect_args": {"read_only": True}},
                "schema": "main",
            },
            "ops": {
                "uri": f"sqlite:///file:{ops_sqlite_path(settings)}?mode=ro&uri=true",
                "engine_params": {},
                "schema": "main",
            },
        }
    uri = dashboards_login_url(superset)
    uri = uri.replace("postgresql+psycopg://", "postgresql://", 1).replace(
        "postgresql://", "postgresql+psycopg2://", 1
    )
    return {
        "serving": {"uri": uri, "engine_params": {}, "schema": "serving"},
        "ops": {"uri": uri, "engine_params": {}, "schema": "ops"},
    }


def dashboards_login_url(superset: Superset) -> str:
    """``BIZOS_SUPERSET_DATABASE_URL``, once checked to be a read-only dashboards login.

    Superset reads every tenant's rows through one connection (its own row filters
    split them per analyst), so the login must be a member of ``bizos_dashboards``
    and of nothing else, own nothing and hold no privilege of its own (made so by
    ``bizos dashboards db-role``). The publisher's URL is never used: it owns the
    tables and could write them. The URL is never printed.
    """
    import psycopg

    from serving.api_role import login_role_refusal

    url = superset.dashboard.database_url
    if url is None:
        raise DashboardsError(
            "BIZOS_SUPERSET_DATABASE_URL is not set: on the Postgres target Superset logs in"
            " as a read-only role of its own; `bizos dashboards db-role` makes it and prints"
            " the URL once"
        )
    uri = url.get_secret_value()
    try:
        with psycopg.connect(uri, connect_timeout=10) as conn:
            row = conn.execute(
                "SELECT current_user, pg_has_role(current_user, %s, 'USAGE')", [DASHBOARDS_GROUP]
            ).fetchone()
            user, member = row if row is not None else ("?", False)
            refusal = login_role_refusal(conn, user, DASHBOARDS_GROUP)
    except psycopg.Error as exc:
        raise DashboardsError(
            f"BIZOS_SUPERSET_DATABASE_URL: cannot connect ({type(exc).__name__}:"
            f" {_without_secret(str(exc).splitlines()[0] if str(exc) else '', uri)})"
        ) from None
    if refusal is None and not member:
        refusal = f"role {user} is not a member of {DASHBOARDS_GROUP}"
    if refusal is not None:
        raise DashboardsError(
            f"BIZOS_SUPERSET_DATABASE_URL: {refusal} (Superset must log in as a read-only"
            " role: `bizos dashboards db-role`)"
        )
    return uri


def _without_secret(message: str, uri: str) -> str:
    """``message`` with the URL and its password taken out (libpq quotes a malformed
    connection string back in its error)."""
    from urllib.parse import urlsplit

    message = message.replace(uri, "<BIZOS_SUPERSET_DATABASE_URL>")
    try:
        password = urlsplit(uri).password
    except ValueError:
        password = None
    return message.replace(password, "***") if password else message


def known_tenants(settings: Settings) -> list[str]:
    """Tenants with data in the serving store or an inbox: each gets a Superset role."""
    from core.tenancy import InvalidTenantId, check_tenant_id

    found: set[str] = set()
    if settings.inbox_dir.is_dir():
        found |= {p.name for p in settings.inbox_dir.iterdir() if p.is_dir()}
    if settings.target is Target.DUCKDB and settings.serving_dir.is_dir():
        found |= {
            p.stem.removeprefix("tenant=") for p in settings.serving_dir.glob("*/tenant=*.parquet")
        }
    elif settings.target is Target.POSTGRES:
        import psycopg

        with psycopg.connect(settings.postgres_url, connect_timeout=10) as conn:
            rows = conn.execute(
                "SELECT DISTINCT tenant_id FROM serving.publish_log"
                " WHERE to_regclass('serving.publish_log') IS NOT NULL"
            ).fetchall()
        found |= {r[0] for r in rows}
    tenants = []
    for tenant in sorted(found):
        try:
            tenants.append(check_tenant_id(tenant))
        except InvalidTenantId:
            continue
    return tenants


def bundle_dataset_uuids() -> list[str]:
    return [
        str(yaml.safe_load(p.read_text())["uuid"])
        for p in sorted((BUNDLE_DIR / "datasets").rglob("*.yaml"))
    ]


# -- running Superset --------------------------------------------------------------------


def _ensure_secret_key(superset: Superset) -> None:
    superset.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_file = superset.state_dir / "secret_key"
    if superset.dashboard.secret_key is None and not key_file.exists():
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))


def bootstrap(superset: Superset, command: str, request: dict[str, Any]) -> dict[str, Any]:
    """Run ``dashboards/bootstrap.py COMMAND`` with Superset's Python; its JSON answer."""
    done = subprocess.run(
        [str(superset.python), str(DASHBOARDS_DIR / "bootstrap.py"), command],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        env=superset.env(),
        cwd=superset.state_dir,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    answer = json.loads(lines[-1]) if lines else {}
    if done.returncode != 0:
        detail = answer.get("error") or done.stderr[-3000:]
        raise DashboardsError(f"superset {command} failed: {detail}")
    return answer


def running_pid(superset: Superset) -> int | None:
    """The pid of this installation's server, if it is alive."""
    try:
        pid = int(superset.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def healthy(superset: Superset) -> bool:
    try:
        with urllib.request.urlopen(f"{superset.url}/health", timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start(superset: Superset) -> bool:
    """Start the web server unless it runs; False when it was already up."""
    if running_pid(superset) is not None and healthy(superset):
        return False
    if healthy(superset):
        raise DashboardsError(
            f"port {superset.dashboard.port} already serves another Superset:"
            " set BIZOS_SUPERSET_PORT or stop it"
        )
    gunicorn = superset.dashboard.venv / "bin" / "gunicorn"
    log = open(superset.log_file, "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [str(gunicorn), "--workers", "1", "--threads", "8", "--timeout", "120"]
        + ["--graceful-timeout", "5"]
        + ["--bind", f"127.0.0.1:{superset.dashboard.port}", "--limit-request-line", "0"]
        + ["superset.app:create_app()"],
        env=superset.env(),
        cwd=superset.state_dir,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    superset.pid_file.write_text(str(proc.pid))
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = superset.log_file.read_text(errors="replace")[-3000:]
            raise DashboardsError(f"Superset exited at start ({superset.log_file}):\n{tail}")
        if healthy(superset):
            return True
        time.sleep(0.5)
    stop(superset)
    raise DashboardsError(f"Superset did not answer on {superset.url} in {START_TIMEOUT_S:.0f} s")


def stop(superset: Superset) -> bool:
    pid = running_pid(superset)
    if pid is None:
        superset.pid_file.unlink(missing_ok=True)
        return False
    os.killpg(pid, signal.SIGTERM)
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.killpg(pid, signal.SIGKILL)
    superset.pid_file.unlink(missing_ok=True)
    return True


def up(superset: Superset) -> dict[str, Any]:
    """Everything ``bizos dashboards up`` does; idempotent (a second call changes nothing)."""
    admin_user, admin_password = superset.admin()
    built = ensure_venv(superset)
    _ensure_secret_key(superset)
    result = bootstrap(
        superset,
        "import",
        {
            "bundle": str(BUNDLE_DIR),
            "databases": database_request(superset),
            "tenants": known_tenants(superset.settings),
            "admin_user": admin_user,
            "admin_password": admin_password,
        },
    )
    result["venv_built"] = built
    result["started"] = start(superset)
    result["url"] = superset.url
    return result


def grant(superset: Superset, *, user: str, tenant: str, password: str) -> dict[str, Any]:
    from core.tenancy import check_tenant_id

    return bootstrap(
        superset,
        "grant",
        {
            "user": user,
            "tenant": check_tenant_id(tenant),
            "password": password,
            "dataset_uuids": bundle_dataset_uuids(),
        },
    )


def export(superset: Superset, bundle: Path = BUNDLE_DIR) -> dict[str, Any]:
    admin_user, _ = superset.admin()
    return bootstrap(superset, "export", {"bundle": str(bundle), "admin_user": admin_user})


# -- the commands ------------------------------------------------------------------------


def _fail(exc: Exception) -> typer.Exit:
    console.print(f"[red]error:[/] {exc}")
    return typer.Exit(2)


@dashboards_app.command("env")
def env_command() -> None:
    """Build Superset's virtualenv (as `make superset-env` does) if it is missing or stale."""
    try:
        built = ensure_venv(superset_for())
    except DashboardsError as exc:
        raise _fail(exc) from None
    console.print("built" if built else "up to date")


@dashboards_app.command("up")
def up_command() -> None:
    """Build, migrate, import the dashboards, create tenant roles, and start Superset."""
    try:
        result = up(superset_for())
    except DashboardsError as exc:
        raise _fail(exc) from None
    for table in result["not_landed"]:
        console.print(f"not landed yet: {table} (its charts show a note until it is published)")
    console.print(
        f"Superset on {result['url']}: "
        + ("dashboards imported" if result["imported"] else "dashboards unchanged")
        + f", tenants {', '.join(result['tenants']) or '(none)'}"
        + ("" if result["started"] else " (already running)")
    )


@dashboards_app.command("down")
def down_command() -> None:
    """Stop this installation's Superset."""
    stopped = stop(superset_for())
    console.print("stopped" if stopped else "not running")


@dashboards_app.command("export")
def export_command(
    bundle: Annotated[
        Path, typer.Option(help="bundle folder to write (default: dashboards/bundle)")
    ] = BUNDLE_DIR,
) -> None:
    """Write the dashboards as they are in Superset back to the bundle, for review as code."""
    if not (bundle / "metadata.yaml").exists():
        raise _fail(DashboardsError(f"{bundle} is not a dashboards bundle (no metadata.yaml)"))
    try:
        result = export(superset_for(), bundle)
    except DashboardsError as exc:
        raise _fail(exc) from None
    console.print(f"wrote {len(result['written'])} files to {bundle}")
    for title in result["kept_not_landed"]:
        console.print(f"kept as in the bundle (shows a not-landed note): {title}")


@dashboards_app.command("db-role")
def db_role_command(
    name: Annotated[str, typer.Option(help="the login role to create or reset")] = DEFAULT_LOGIN,
) -> None:
    """Create Superset's read-only Postgres login (or give it a new password) and print its
    URL once: set it as BIZOS_SUPERSET_DATABASE_URL where `bizos dashboards up` runs."""
    from serving.api_role import ApiRoleError, create_login_role

    settings = get_settings()
    if settings.target is not Target.POSTGRES:
        raise _fail(DashboardsError("Superset's login role exists on the Postgres target only"))
    try:
        url = create_login_role(settings, name, DASHBOARDS_GROUP)
    except ApiRoleError as exc:
        raise _fail(exc) from None
    console.print(f"role {name}: a member of {DASHBOARDS_GROUP} only. Its URL (shown once):")
    print(f"BIZOS_SUPERSET_DATABASE_URL={url}")


@dashboards_app.command("grant")
def grant_command(
    user: Annotated[str, typer.Option("--user", "-u", help="Superset user name")],
    tenant: Annotated[str, typer.Option("--tenant", "-t", help="tenant id")],
) -> None:
    """Give USER the role of TENANT; a new USER is created as an analyst with the
    password read from standard input (never an argument)."""
    from core.tenancy import InvalidTenantId

    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass(f"password for {user} (if new): ")
    else:
        password = sys.stdin.read().rstrip("\r\n")
    try:
        result = grant(superset_for(), user=user, tenant=tenant, password=password)
    except (DashboardsError, InvalidTenantId) as exc:
        raise _fail(exc) from None
    console.print(
        f"{'created' if result['created'] else 'updated'} {result['user']}:"
        f" tenants {', '.join(result['tenants'])}"
    )
