"""The replay CSV's format: its header, what names its columns, and how lines are read (the
replay source reads the rows; the producer's settings check a file's header before anything
starts)."""

from __future__ import annotations

import argparse
import csv
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from common.contract import clip, short

# Column names as written in a header -> the column they stand for.
COLUMN_NAMES = {
    "symbol": "symbol",
    "ticker": "symbol",
    "timestamp": "ts",
    "ts": "ts",
    "time": "ts",
    "ts_ms": "ts",
    "timestamp_ms": "ts",
    "price": "price",
    "volume": "volume",
    "size": "volume",
    "seq": None,  # counted again from the file's order
    "source": None,  # always "replay"
}
REQUIRED_COLUMNS = ("symbol", "ts", "price")
# A longer line is no tick row; the csv module would refuse it anyway (at 128 KiB).
MAX_LINE_CHARS = 64 * 1024


class ReplayFormatError(ValueError):
    """The file cannot be replayed at all (its header); the message is one line for the user."""


def open_csv(path: Path) -> TextIO:
    # utf-8-sig drops a BOM (spreadsheets write one); surrogateescape keeps bad bytes as they
    # were, so a row holding them is refused with its exact bytes instead of ending the file.
    return path.open(newline="", encoding="utf-8-sig", errors="surrogateescape")


def rows_of(f: TextIO) -> Iterator[tuple[int, list[str] | None, str]]:
    """(line number, fields or None if unreadable, raw line) of each line worth reading."""
    for lineno, line in enumerate(f, start=1):
        text = line.rstrip("\r\n")
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        if len(text) > MAX_LINE_CHARS:
            yield lineno, None, text[:MAX_LINE_CHARS]
            continue
        try:
            row = next(csv.reader([text]))
        except csv.Error:
            yield lineno, None, text
            continue
        yield lineno, row, text


def columns(header: list[str], where: str = "the header") -> dict[str, int]:
    """Column -> index from a header row, or ReplayFormatError saying what is wrong."""
    found: dict[str, int] = {}
    accepted = ", ".join(COLUMN_NAMES)
    for index, name in enumerate(header):
        key = name.strip().lstrip("\ufeff").lower()
        if key not in COLUMN_NAMES:
            raise ReplayFormatError(
                f"{where} names a column {short(name.strip(), 40)} that replay does not know "
                f"(accepted: {accepted}); the first line must be the header"
            )
        column = COLUMN_NAMES[key]
        if column is None:
            continue
        if column in found:
            raise ReplayFormatError(f"{where} names the {column} column twice")
        found[column] = index
    missing = [c for c in REQUIRED_COLUMNS if c not in found]
    if missing:
        raise ReplayFormatError(
            f"{where} lacks the {', '.join(missing)} column(s): it must name symbol, "
            "timestamp (or ts, time, ts_ms) and price, and may name volume"
        )
    return found


def read_header(path: Path) -> dict[str, int]:
    """The file's columns from its header; ReplayFormatError (or OSError) if it has none."""
    with open_csv(path) as f:
        for lineno, row, _ in rows_of(f):
            if row is None:
                raise ReplayFormatError(f"line {lineno} (the header) is not readable CSV")
            return columns(row, f"the header (line {lineno})")
    raise ReplayFormatError("the file holds no header and no rows")


def replay_file(text: str) -> Path:
    """An argparse check: a readable CSV whose header replay understands (checked at start)."""
    path = Path(text)
    try:
        if not path.is_file():
            raise argparse.ArgumentTypeError(f"{clip(text, 200)} is not a readable file")
        read_header(path)
    except OSError as e:
        why = e.strerror or type(e).__name__
        raise argparse.ArgumentTypeError(f"cannot read {clip(text, 200)}: {why}") from None
    except ReplayFormatError as e:
        raise argparse.ArgumentTypeError(f"{clip(text, 200)}: {e}") from None
    return path
