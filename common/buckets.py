"""How the `bars` table partitions a symbol's history (storage writes it, the dashboard and the
query CLI read it): a partition per UTC day for 1m bars (1,440 rows), per month for 5m bars (at
most 8,928), per year for 1d bars (at most 366). A bucket is named by its first day."""

from __future__ import annotations

from datetime import date

DAY_MS = 86_400_000
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def bar_bucket_day(interval: str, start_ms: int) -> int:
    """The bucket of a bar starting at `start_ms`, as days since 1970-01-01."""
    day = start_ms // DAY_MS
    if interval == "1m":
        return day
    when = date.fromordinal(_EPOCH_ORDINAL + day)
    first = when.replace(day=1) if interval == "5m" else when.replace(month=1, day=1)
    return first.toordinal() - _EPOCH_ORDINAL


def bar_buckets(interval: str, start_ms: int, end_ms: int) -> list[int]:
    """The buckets [start_ms, end_ms) touches, newest first."""
    first = bar_bucket_day(interval, start_ms)
    found = []
    day = (end_ms - 1) // DAY_MS
    while day >= first:
        bucket = bar_bucket_day(interval, day * DAY_MS)
        found.append(bucket)
        day = bucket - 1
    return found
