"""Reading times people write (ISO 8601 or epoch milliseconds) as epoch milliseconds in UTC."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)


def epoch_ms(text: str) -> int:
    """'1724788801000', '2025-08-27T13:30:00Z', '2025-08-27 13:30+02:00' or '2025-08-27'.

    A time without an offset is UTC. Raises ValueError for anything else.
    """
    text = text.strip()
    if text.isdigit():
        return int(text)
    # Python 3.10's fromisoformat does not read the Z suffix.
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    # Integer arithmetic: timestamp() * 1000 can land a millisecond low through float rounding.
    return (moment - _EPOCH) // _MS
