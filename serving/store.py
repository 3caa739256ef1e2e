"""The serving store: one interface, a Postgres and an embedded implementation.

The implementation is picked once, here, from ``settings.target``; routes, publish and
scripts only see ``ServingStore``. Every method takes the table's contract, so a new
mart needs no new store code. Reads always take the tenant as an argument and both
stores filter by it (Postgres additionally through row-level security), so a caller
cannot forget the tenant and read everyone's rows.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa

from core.contracts.table import TableContract
from core.settings import Settings, Target

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

# A served row: the contract's columns plus published_at, as Python values.
Row = dict[str, Any]


class StoreUnavailable(RuntimeError):
    """The store cannot answer right now (server down, file unreadable, schema ahead)."""


class NothingPublished(StoreUnavailable):
    """The store is reachable but nothing has been published to this table yet."""


@dataclass(frozen=True)
class PublishResult:
    """What one publish did.

    ``rows`` is the tenant's row count now live; ``rows_replaced`` how many of the
    tenant's rows it took out. Neither counts other tenants' rows: a publish never
    reads or writes them.
    """

    table: str
    tenant_id: str
    rows: int
    rows_replaced: int
    published_at: datetime


# A cursor encodes a score and a lead id: far below this when it is one of ours.
MAX_CURSOR_LENGTH = 512
_CURSOR_ALPHABET = re.compile(r"^[A-Za-z0-9_-]*$")
MAX_ID_LENGTH = 200


def is_clean_text(value: object, max_length: int = MAX_ID_LENGTH) -> bool:
    """A str a key column may hold: bounded, no NUL or control characters, valid UTF-8."""
    if not isinstance(value, str) or not 0 < len(value) <= max_length:
        return False
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


@dataclass(frozen=True)
class ScoreCursor:
    """Keyset position after the last item of a page: (score desc, lead_id asc).

    An unknown score (null) sorts as ``UNKNOWN_SCORE_SORTS_AS`` (-1), after every
    score, so a cursor's score is -1..100.

    Keyset rather than offset paging so a page costs the same at any depth and a
    republish between two pages neither repeats nor skips the rows already seen.
    """

    score: int
    lead_id: str

    def encode(self) -> str:
        raw = json.dumps([self.score, self.lead_id], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> ScoreCursor:
        """Parse a token from ``encode``; ValueError for anything a client made up.

        Checked all the way down, since every later step trusts it: the token's
        length and alphabet, valid UTF-8 and JSON, a flat pair, a score in range, a
        lead id without NUL or lone surrogates (neither Postgres nor UTF-8 takes them).
        """
        if len(token) > MAX_CURSOR_LENGTH or not _CURSOR_ALPHABET.fullmatch(token):
            raise ValueError("invalid cursor")
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            score, lead_id = json.loads(raw.decode("utf-8"))
        except (binascii.Error, UnicodeDecodeError, ValueError, TypeError, RecursionError) as exc:
            raise ValueError("invalid cursor") from exc
        if type(score) is not int or not -1 <= score <= 100 or not is_clean_text(lead_id):
            raise ValueError("invalid cursor")
        return cls(score=score, lead_id=lead_id)

    def values(self) -> tuple[int, str]:
        """The position as values of ``LEAD_SCORES.order_by``."""
        return (self.score, self.lead_id)


class ServingStore(Protocol):
    """What publish, the API and scripts need from a serving store."""

    @property
    def kind(self) -> Target: ...

    def publish(
        self, contract: TableContract, *, tenant_id: str, table: pa.Table | pa.RecordBatchReader
    ) -> PublishResult:
        """Atomically replace ``tenant_id``'s rows of one table; readers see all-old or all-new.

        Costs in proportion to the tenant's rows; other tenants and other tables are
        not touched. ContractError, before anything changes, on a bad table.
        """
        ...

    def list_rows(
        self,
        contract: TableContract,
        *,
        tenant_id: str,
        equals: Mapping[str, object] | None = None,
        at_least: Mapping[str, object] | None = None,
        after: Sequence[object] | None = None,
        limit: int,
    ) -> list[Row]:
        """Up to ``limit`` rows in ``contract.order_by`` order, strictly after ``after``.

        NothingPublished when the table has never been published to (by any tenant).
        """
        ...

    def get_row(
        self, contract: TableContract, *, tenant_id: str, key: Mapping[str, object]
    ) -> Row | None:
        """The tenant's row with primary key ``key`` (the columns after tenant_id)."""
        ...

    def last_published_at(self) -> datetime:
        """Time of the latest publish of any table; NothingPublished / StoreUnavailable."""
        ...


def serving_store(settings: Settings, *, pool: ConnectionPool | None = None) -> ServingStore:
    """The store for ``settings.target``: the only place the choice is made.

    ``pool`` is the API's connection pool; without one the Postgres store opens a
    short-lived connection per call, which suits publish jobs and scripts.
    """
    if settings.target is Target.POSTGRES:
        from serving.postgres_store import PostgresStore

        return PostgresStore(settings, pool=pool)
    from serving.duckdb_store import DuckDBStore

    return DuckDBStore(settings)


# -- SQL shared by both stores (identifiers come from contracts, values are bound) -----


def quote(name: str) -> str:
    """A SQL identifier, quoted the same way on Postgres and DuckDB."""
    return '"' + name.replace('"', '""') + '"'


def select_list(contract: TableContract) -> str:
    return ", ".join(quote(c) for c in contract.served_columns)


def order_expression(contract: TableContract, column: str) -> str:
    """An order column as SQL sorts it: ``COALESCE`` with its null value when it has one.

    The null value is a contract constant (an int or a str), written as a literal so
    that the ORDER BY, the keyset condition and the Postgres index expression agree.
    """
    null_value = contract.null_sorts_as(column)
    if null_value is None:
        return quote(column)
    if isinstance(null_value, bool) or not isinstance(null_value, int | str):
        raise TypeError(f"{contract.name}.{column}: nulls sort as an int or a str")
    literal = str(null_value) if isinstance(null_value, int) else _sql_text(null_value)
    return f"COALESCE({quote(column)}, {literal})"


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def order_clause(contract: TableContract) -> str:
    return ", ".join(
        f"{order_expression(contract, c)} DESC"
        if contract.descending(c)
        else order_expression(contract, c)
        for c in contract.order_columns
    )


def row_filter(
    contract: TableContract,
    *,
    tenant_id: str,
    equals: Mapping[str, object] | None,
    at_least: Mapping[str, object] | None,
    after: Sequence[object] | None,
    placeholder: Callable[[str], str],
) -> tuple[str, dict[str, object]]:
    """A WHERE condition and its parameters; ``placeholder`` spells a named parameter.

    ``after`` is a keyset position over ``contract.order_by``: rows strictly after it
    in that order, i.e. for (c1, c2, ...) the OR over i of "equal on c1..c(i-1) and
    past it on ci", where past means less for a descending column.
    """
    known = set(contract.columns)
    conditions = [f"{quote('tenant_id')} = {placeholder('tenant_id')}"]
    params: dict[str, object] = {"tenant_id": tenant_id}
    for i, (column, value) in enumerate((equals or {}).items()):
        _check_column(column, known)
        conditions.append(f"{quote(column)} = {placeholder(f'eq{i}')}")
        params[f"eq{i}"] = value
    for i, (column, value) in enumerate((at_least or {}).items()):
        _check_column(column, known)
        conditions.append(f"{quote(column)} >= {placeholder(f'ge{i}')}")
        params[f"ge{i}"] = value
    if after is not None:
        order = contract.order_columns
        if len(after) != len(order):
            raise ValueError(f"a position in {contract.name} has {len(order)} values")
        branches = []
        for i, column in enumerate(order):
            terms = [
                f"{order_expression(contract, c)} = {placeholder(f'k{j}')}"
                for j, c in enumerate(order[:i])
            ]
            op = "<" if contract.descending(column) else ">"
            terms.append(f"{order_expression(contract, column)} {op} {placeholder(f'k{i}')}")
            branches.append("(" + " AND ".join(terms) + ")")
        conditions.append("(" + " OR ".join(branches) + ")")
        params.update({f"k{i}": v for i, v in enumerate(after)})
    return " AND ".join(conditions), params


def key_filter(
    contract: TableContract,
    *,
    tenant_id: str,
    key: Mapping[str, object],
    placeholder: Callable[[str], str],
) -> tuple[str, dict[str, object]]:
    """WHERE condition for one row by primary key."""
    wanted = [c for c in contract.primary_key if c != "tenant_id"]
    if sorted(key) != sorted(wanted):
        raise ValueError(f"the key of {contract.name} is {wanted}, got {sorted(key)}")
    return row_filter(
        contract,
        tenant_id=tenant_id,
        equals=key,
        at_least=None,
        after=None,
        placeholder=placeholder,
    )


def _check_column(column: str, known: set[str]) -> None:
    if column not in known:
        raise ValueError(f"unknown column {column!r}")
