"""Read a tenant's CRM lead export (CSV) as a stream of records, one line at a time.

Every physical line ends up in exactly one place: a loaded record (a quoted
newline makes one record of several lines), a rejected one, or a blank line.
The reader never holds more than one record's worth of the file, and a record is
bounded (``MAX_RECORD_BYTES``, ``MAX_RECORD_LINES``): a physical line over the
bound is skipped unread, with only an excerpt kept.

A stray quote must not swallow the rest of the file. A record that spans lines
is accepted only if it closes within the bounds and has the header's field
count; otherwise its *first* physical line alone is rejected and reading
restarts at the second, so the damage is one row.

The file's shape is strict: a header that lacks a required column, repeats one
or cannot be read makes the whole file unusable (``ExportSchemaError``, naming
the file and the column); its rows are forgiven one at a time.
"""

from __future__ import annotations

import csv
import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

from core.contracts.crm_export import REQUIRED_COLUMNS

MAX_RECORD_BYTES = 1024 * 1024
"""A record (all its lines) larger than this is not a lead: it is rejected unread."""
MAX_RECORD_LINES = 1000
"""A quoted cell may hold newlines, but not this many: past it, the quote is stray."""
EXCERPT_CHARS = 2048
"""How much of a rejected record the quarantine keeps."""

# Control characters have no place in a lead; NUL in particular is loaded by
# DuckDB but refused by Postgres. Tab, CR and LF are fine (inside quoted cells).
# Lone surrogates are bytes that were not UTF-8 (decoded with surrogateescape).
_BAD_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\udc80-\udcff]")


class ExportSchemaError(ValueError):
    """The file itself is unusable (its header); none of its rows is loaded."""


@dataclass(slots=True)
class PhysicalLine:
    number: int
    text: str | None
    """None when the line was over ``MAX_RECORD_BYTES`` and skipped unread."""
    size: int
    head: str = ""
    """The start of a skipped line, for the quarantine."""


@dataclass(slots=True)
class Record:
    """One record of the file: values, or the reason it was rejected."""

    line: int
    lines: int
    values: list[str] | None = None
    reason: str | None = None
    excerpt: str = ""

    @property
    def blank(self) -> bool:
        return self.values is not None and not "".join(self.values).strip()


def excerpt(text: str) -> str:
    """At most ``EXCERPT_CHARS`` of ``text``, saying how much was left out."""
    if len(text) <= EXCERPT_CHARS:
        return text
    return f"{text[:EXCERPT_CHARS]}… [{len(text) - EXCERPT_CHARS} more characters]"


class PhysicalLines:
    """The lines of a binary stream, each decoded and bounded, with push-back."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self._number = 0
        self._pending: deque[PhysicalLine] = deque()

    def push_back(self, lines: Iterable[PhysicalLine]) -> None:
        self._pending.extendleft(reversed(list(lines)))

    def __iter__(self) -> PhysicalLines:
        return self

    def __next__(self) -> PhysicalLine:
        if self._pending:
            return self._pending.popleft()
        data = self._fh.readline(MAX_RECORD_BYTES + 1)
        if not data:
            raise StopIteration
        self._number += 1
        if self._number == 1 and data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        if len(data) <= MAX_RECORD_BYTES or data.endswith(b"\n"):
            return PhysicalLine(
                self._number, data.decode("utf-8", errors="surrogateescape"), len(data)
            )
        # Over-long: keep a head for the excerpt, skip the rest up to the newline.
        head = data[: EXCERPT_CHARS * 4].decode("utf-8", errors="replace")[:EXCERPT_CHARS]
        size = len(data)
        while not data.endswith(b"\n"):
            data = self._fh.readline(MAX_RECORD_BYTES)
            if not data:
                break
            size += len(data)
        return PhysicalLine(self._number, None, size, head)


class _Overlong(Exception):
    """Raised through the csv reader when a record runs past its bounds."""


class _Feed:
    """Hands the csv reader one physical line at a time, remembering which."""

    def __init__(self, lines: PhysicalLines) -> None:
        self.lines = lines
        self.taken: list[PhysicalLine] = []
        self.size = 0

    def start_record(self) -> None:
        self.taken = []
        self.size = 0

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        line = next(self.lines)
        self.taken.append(line)
        self.size += line.size
        if line.text is None or (
            len(self.taken) > 1
            and (self.size > MAX_RECORD_BYTES or len(self.taken) > MAX_RECORD_LINES)
        ):
            raise _Overlong
        return line.text


def _text_of(lines: list[PhysicalLine]) -> str:
    return "".join(line.text if line.text is not None else line.head for line in lines)


class ExportReader:
    """Records of one export: ``read_header`` first, then ``records``."""

    def __init__(self, fh: BinaryIO) -> None:
        self._lines = PhysicalLines(fh)
        self._feed = _Feed(self._lines)
        self._reader = csv.reader(self._feed, strict=True)
        self.columns: list[str] | None = None
        self.field_count: int | None = None

    def _restart(self, failed: list[PhysicalLine]) -> None:
        """Give back all but the first line of a failed record; read afresh."""
        self._lines.push_back(failed[1:])
        self._reader = csv.reader(self._feed, strict=True)

    def _reject(self, lines: list[PhysicalLine], reason: str) -> Record:
        first = lines[0]
        if len(lines) > 1:
            reason = (
                f"{reason} (a quoted cell opened on line {first.number} did not close into a "
                f"valid record within {len(lines)} lines; this line is rejected alone and "
                "reading goes on from the next)"
            )
            self._restart(lines)
        elif first.text is None:
            self._reader = csv.reader(self._feed, strict=True)
        text = first.text if first.text is not None else first.head
        return Record(first.number, 1, reason=reason, excerpt=excerpt(text.rstrip("\r\n")))

    def next_record(self) -> Record | None:
        feed = self._feed
        feed.start_record()
        try:
            values = next(self._reader)
        except StopIteration:
            return None
        except _Overlong:
            lines = feed.taken
            last = lines[-1]
            if len(lines) == 1:
                reason = f"line of {last.size:,} bytes, over the {MAX_RECORD_BYTES:,}-byte limit"
            else:
                reason = f"unclosed quote: record over {MAX_RECORD_BYTES:,} bytes"
            return self._reject(lines, reason)
        except csv.Error as exc:
            if not feed.taken:  # csv's own error before any line: nothing to account
                raise
            self._reader = csv.reader(feed, strict=True)
            return self._reject(feed.taken, f"unreadable CSV: {exc}")
        lines = feed.taken
        if self.field_count is not None and len(values) != self.field_count and values:
            if len(lines) > 1:
                return self._reject(
                    lines,
                    f"unclosed quote: {len(values)} fields, expected {self.field_count}",
                )
            count = self.field_count
            reason = (
                f"truncated row: expected {count} fields, got {len(values)}"
                if len(values) < count
                else f"too many fields: expected {count}, got {len(values)}"
            )
            return Record(
                lines[0].number, 1, reason=reason, excerpt=excerpt(_text_of(lines).rstrip())
            )
        for line in lines:
            if line.text is not None and (bad := _BAD_CHARS.search(line.text)):
                return self._reject_chars(lines, values, bad.group())
        return Record(lines[0].number, len(lines), values=values)

    def _reject_chars(self, lines: list[PhysicalLine], values: list[str], char: str) -> Record:
        if "\udc80" <= char <= "\udcff":
            reason = "not valid UTF-8 (wrong file encoding?)"
        else:
            reason = f"control character U+{ord(char):04X}"
        columns = self.columns or []
        where = [columns[i] for i, v in enumerate(values) if char in v and i < len(columns)]
        if where:
            reason += f" in column {where[0]}"
        text = _text_of(lines).rstrip("\r\n")
        return Record(
            lines[0].number,
            len(lines),
            reason=reason,
            excerpt=excerpt(text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")),
        )

    def read_header(self, name: str) -> list[str]:
        """The lower-cased column names; ExportSchemaError when the file is unusable."""
        record = self.next_record()
        while record is not None and record.blank:
            record = self.next_record()
        if record is None:
            raise ExportSchemaError(f"{name}: no header row")
        if record.values is None:
            raise ExportSchemaError(f"{name}: unreadable header row: {record.reason}")
        header = [h.strip().lower() for h in record.values]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            names = ", ".join(repr(c) for c in missing)
            raise ExportSchemaError(f"{name}: missing required column(s) {names}")
        duplicated = sorted({h for h in header if header.count(h) > 1})
        if duplicated:
            raise ExportSchemaError(f"{name}: duplicated column(s) {', '.join(duplicated)}")
        self.columns = header
        self.field_count = len(header)
        return header

    def records(self) -> Iterator[Record]:
        while (record := self.next_record()) is not None:
            yield record


def parse_timestamp(value: str) -> datetime:
    """ISO 8601 (date or date-time, with or without offset); naive means UTC."""
    parsed = datetime.fromisoformat(value.strip())  # takes "Z" since Python 3.11
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


class LeadShape:
    """Turns one record's values into the lake's lead columns, by header position."""

    def __init__(self, header: list[str]) -> None:
        self.required = [header.index(c) for c in REQUIRED_COLUMNS]
        self.created_at = REQUIRED_COLUMNS.index("created_at")
        extra = sorted((h, i) for i, h in enumerate(header) if h and h not in REQUIRED_COLUMNS)
        self.extra_names = [h for h, _ in extra]
        """Extra columns, sorted: their cells become ``custom_attributes``."""
        self._extra = [i for _, i in extra]

    def lead(self, values: list[str]) -> list[object] | str:
        """The required cells (created_at parsed), then the extra cells; or a reason."""
        cells: list[object] = [values[i].strip() or None for i in self.required]
        raw_created = cells[self.created_at]
        if raw_created is not None:
            try:
                cells[self.created_at] = parse_timestamp(str(raw_created))
            except ValueError:
                return f"created_at is not a timestamp: {excerpt(str(raw_created))!r}"
        cells.extend(values[i] for i in self._extra)
        return cells
