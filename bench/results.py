"""Where a benchmark's table goes: printed, and written to its results folder to keep."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from common.settings import Option, path_value

RESULTS_DIR = Option(
    "--results-dir",
    "BENCH_RESULTS_DIR",
    "bench-results",
    "where the results table (a Markdown file a run, and a benchmark's logs) is written",
    path_value,
)


def stamp(when: datetime | None = None) -> str:
    """A run's UTC time as its results files name it."""
    return (when or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")


def publish(text: str, results_dir: Path, name: str) -> Path:
    """Print the table and write it to results_dir/name.md; the file written."""
    results_dir.mkdir(parents=True, exist_ok=True)
    out = results_dir / f"{name}.md"
    out.write_text(text + "\n")
    print(text)
    print(f"\nwritten to {out}")
    return out
