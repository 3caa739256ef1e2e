"""What every benchmark section records: the machine, its load, and where results go.

Figures from a shared machine only mean something next to its load, so each
section states cores, RAM, Python and the load average when it was taken.
"""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"


def ram_gib() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_line() -> str:
    one, five, fifteen = os.getloadavg()
    return (
        f"Machine: {os.cpu_count()} cores ({cpu_model()}), {ram_gib():.0f} GiB RAM, "
        f"Python {platform.python_version()}; load average {one:.2f} / {five:.2f} / "
        f"{fifteen:.2f} (1/5/15 min) at the end of the run."
    )


def record_section(title: str, what: str, command: str, body: str) -> None:
    """Append a dated section to bench/RESULTS.md: the command, then ``body``."""
    text = (
        f"\n## {title}\n\n### {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {what}\n\n"
        f"Command: `{command}`\n\n{body}"
    )
    with RESULTS.open("a") as fh:
        fh.write(text)
