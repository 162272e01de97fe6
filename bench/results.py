"""Where a benchmark's table goes: printed, and written to its results folder to keep."""

from __future__ import annotations

from pathlib import Path


def publish(text: str, results_dir: Path, name: str) -> Path:
    """Print the table and write it to results_dir/name.md; the file written."""
    results_dir.mkdir(parents=True, exist_ok=True)
    out = results_dir / f"{name}.md"
    out.write_text(text + "\n")
    print(text)
    return out
