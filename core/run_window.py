"""A backfill's span of days, as a run carries it: the tag ``bizos/window``.

One definition for the three places that meet it: ``bizos backfill`` writes the tag
(pipelines/backfill.py), the dbt step turns it into ``--vars`` for the incremental
marts (assets/warehouse.py, dbt/macros/run_window.sql), and ops read it in the UI.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

WINDOW_TAG = "bizos/window"
"""``<since>..<until>``: UTC days, both included."""


@dataclass(frozen=True)
class DayWindow:
    since: date
    until: date

    @property
    def tag(self) -> str:
        return f"{self.since.isoformat()}..{self.until.isoformat()}"

    def dbt_vars(self) -> dict[str, str]:
        """dbt's ``window_start`` (included) and ``window_end`` (excluded: the day after
        ``until``), so a filter is ``start <= day < end`` on either engine."""
        return {
            "window_start": self.since.isoformat(),
            "window_end": (self.until + timedelta(days=1)).isoformat(),
        }


def parse_window_tag(value: str | None) -> DayWindow | None:
    """The window of a ``bizos/window`` tag; None without one; ValueError if malformed."""
    if not value:
        return None
    since, sep, until = value.partition("..")
    try:
        if not sep:
            raise ValueError
        window = DayWindow(date.fromisoformat(since), date.fromisoformat(until))
    except ValueError:
        raise ValueError(f"tag {WINDOW_TAG}={value!r}: expected YYYY-MM-DD..YYYY-MM-DD") from None
    if window.until < window.since:
        raise ValueError(f"tag {WINDOW_TAG}={value!r}: the window ends before it starts")
    return window
