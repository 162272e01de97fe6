"""JSON for the bulk answers, written directly: a day of 1-minute bars is 1,440 rows, and
building a dict per row for json.dumps cost more than reading the rows from Cassandra."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable

# The columns of a bar row, in the order the store reads them.
BAR_FIELDS = ("t", "open", "high", "low", "close", "vwap", "volume", "count")


def _plain(row: tuple) -> bool:
    """Every value is a finite float or an int: repr() is then exactly its JSON."""
    for value in row:
        if isinstance(value, float):
            if not math.isfinite(value):
                return False
        elif not isinstance(value, int) or isinstance(value, bool):
            return False
    return True


def bars_json(rows: Iterable[tuple]) -> str:
    parts = []
    for row in rows:
        if _plain(row):
            t, o, h, lo, c, v, vol, n = row
            parts.append(
                f'{{"t":{t},"open":{o!r},"high":{h!r},"low":{lo!r},"close":{c!r},'
                f'"vwap":{v!r},"volume":{vol},"count":{n}}}'
            )
        else:
            # A missing or non-finite value (a row written outside the pipeline): null.
            values = {
                name: (None if isinstance(x, float) and not math.isfinite(x) else x)
                for name, x in zip(BAR_FIELDS, row, strict=True)
            }
            parts.append(json.dumps(values, separators=(",", ":")))
    return "[" + ",".join(parts) + "]"


# The columns of a candle row (dashboard.candles), in order.
CANDLE_FIELDS = ("t", "open", "high", "low", "close", "vwap", "volume", "count", "history")


def candles_json(rows: Iterable[tuple]) -> str:
    """Candles as JSON objects; a non-finite number (a row written outside the pipeline) is
    null."""
    return json.dumps(
        [
            {
                name: (None if isinstance(x, float) and not math.isfinite(x) else x)
                for name, x in zip(CANDLE_FIELDS, row, strict=True)
            }
            for row in rows
        ],
        separators=(",", ":"),
    )
