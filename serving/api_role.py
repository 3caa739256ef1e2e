"""The API's own Postgres login role: a member of ``bizos_reader`` and nothing else.

The publisher owns the serving tables; if the API logged in as the publisher and only
did ``SET LOCAL ROLE bizos_reader``, a ``RESET ROLE`` (say, through injected SQL)
would read every tenant. So the API logs in as a role that:

- is not a superuser, owns nothing, cannot create roles or databases, cannot bypass RLS;
- is a member of ``bizos_reader`` (INHERIT: it reads what the reader reads, under the
  reader's tenant policy) and of no other role, so ``SET ROLE`` can reach nothing
  but the reader, and ``RESET ROLE`` lands on itself: the same rights.

Every grant the API needs is made to ``bizos_reader`` by the migrations, so the name
of the login role is the operator's choice and no migration knows it. Creating it
needs the publisher's (owner's) URL; the password is generated here, shown once and
not stored by the platform.
"""

from __future__ import annotations

import re
import secrets
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from core.settings import Settings
from migrations import ensure_current

DEFAULT_ROLE = "bizos_api"
READER_ROLE = "bizos_reader"
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# CREATE ROLE races with another database of the cluster doing the same: tolerate it.
_CREATE = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {name_literal}) THEN
        BEGIN
            CREATE ROLE {name} LOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
END
$$
"""


class ApiRoleError(RuntimeError):
    """The named role cannot be the API's login role (it is privileged, or owns things)."""


def create_api_role(settings: Settings, name: str = DEFAULT_ROLE) -> str:
    """Create (or reset the password of) the API's login role; return its URL, once.

    Runs as ``settings.postgres_url`` (the publisher), after migrating both trees so
    ``bizos_reader`` and its grants exist. Refuses a role that already has
    privileges the API must not have, rather than quietly stripping them.
    """
    return create_login_role(settings, name, READER_ROLE)


def create_login_role(settings: Settings, name: str, group: str) -> str:
    """A login role that is a member of ``group`` (INHERIT, no SET) and of nothing else,
    owns nothing and holds no privilege of its own; its URL with a fresh password.

    The API's login (group ``bizos_reader``) and Superset's (``bizos_dashboards``,
    cli/dashboards.py) are both made here, so both get the same refusals.
    """
    if not _ROLE_NAME.fullmatch(name):
        raise ApiRoleError(f"role name {name!r}: use lower-case letters, digits and _")
    ensure_current(settings, "ops")
    ensure_current(settings, "serving")
    password = secrets.token_urlsafe(24)
    ident = sql.Identifier(name)
    with psycopg.connect(settings.postgres_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL(_CREATE).format(name_literal=sql.Literal(name), name=ident))
        refusal = login_role_refusal(conn, name, group)
        if refusal:
            raise ApiRoleError(refusal)
        conn.execute(
            sql.SQL(
                "ALTER ROLE {} WITH LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE"
                " NOREPLICATION NOBYPASSRLS PASSWORD {}"
            ).format(ident, sql.Literal(password))
        )
        if conn.info.server_version >= 160000:
            conn.execute(
                sql.SQL("GRANT {} TO {} WITH INHERIT TRUE, SET FALSE").format(
                    sql.Identifier(group), ident
                )
            )
        else:
            conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), ident))
        conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(settings.postgres.dbname), ident
            )
        )
    return role_url(settings.postgres_url, name, password)


def login_role_refusal(conn: psycopg.Connection[Any], name: str, group: str) -> str | None:
    """Why ``name`` cannot be a login that only reads through ``group``; None when it can.

    Privileged (superuser, createrole, createdb, bypassrls, replication), owning
    tables here, or a member of any role but ``group``.
    """
    found = conn.execute(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication"
        " FROM pg_roles WHERE rolname = %s",
        [name],
    ).fetchone()
    if found is None:
        return f"role {name} does not exist"
    if any(found):
        return f"role {name} is privileged (superuser, createrole, ...): refused"
    owns = conn.execute(
        "SELECT count(*) FROM pg_class WHERE relowner = %s::regrole", [name]
    ).fetchone()
    if owns and owns[0]:
        return f"role {name} owns tables in this database: refused"
    others = conn.execute(
        "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid"
        " WHERE m.member = %s::regrole AND r.rolname <> %s",
        [name, group],
    ).fetchall()
    if others:
        return f"role {name} is a member of {sorted(r[0] for r in others)}: refused"
    return None


def role_url(owner_url: str, name: str, password: str) -> str:
    """``owner_url`` with the user and password replaced (host, port, database kept)."""
    parts = urlsplit(owner_url)
    host = parts.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{quote(name, safe='')}:{quote(password, safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))
