"""The API's query parameters, checked before anything reaches Cassandra (pure functions).

Each request is read into a small frozen object or refused with a ParamError whose text tells
the caller what to send instead; the server answers that with a 400. Every bound here keeps one
request's work small: a range is at most MAX_SPAN_MS and MAX_BARS bars, a tick list at most
MAX_TICKS rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from common.contract import EARLIEST_TS_MS, MAX_FUTURE_MS, ContractError, validate_symbol
from common.settings import format_duration
from common.times import epoch_ms

DAY_MS = 86_400_000
MAX_SPAN_MS = 31 * DAY_MS
MAX_BARS = 10_000
# With no `from`, a chart shows this many windows back from `to`.
DEFAULT_BARS = 240
MAX_TICKS = 1000
DEFAULT_TICKS = 100
# /api/ticks looks back through at most this many daily partitions for the last N ticks.
TICK_DAYS_BACK = 7
_MAX_VALUE_CHARS = 64


class ParamError(ValueError):
    """A request the API refuses; the text says what to send instead."""


@dataclass(frozen=True)
class BarsQuery:
    symbol: str
    window_ms: int
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class CandlesQuery:
    """A chart's candles: live aggregates of `interval_ms` joined with the source's history."""

    symbol: str
    interval_ms: int
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class TicksQuery:
    symbol: str
    last: int


@dataclass(frozen=True)
class LiveQuery:
    symbol: str | None


def _single(pairs: Iterable[tuple[str, str]], allowed: tuple[str, ...]) -> dict[str, str]:
    """The parameters as a dict: unknown or repeated names, and oversized values, are refused."""
    values: dict[str, str] = {}
    for name, value in pairs:
        if name not in allowed:
            shown = name if len(name) <= 20 else name[:20] + "..."
            takes = ", ".join(allowed) if allowed else "no parameters"
            raise ParamError(f"unknown parameter {shown!r}: this endpoint takes {takes}")
        if name in values:
            raise ParamError(f"parameter {name!r} is given twice")
        if len(value) > _MAX_VALUE_CHARS:
            raise ParamError(f"parameter {name!r} is too long ({len(value)} characters)")
        values[name] = value
    return values


def symbol_param(value: str | None) -> str:
    if value is None or value == "":
        raise ParamError("parameter 'symbol' is required, e.g. symbol=AAPL")
    try:
        return validate_symbol(value.strip().upper())
    except ContractError as e:
        raise ParamError(str(e)) from None


def window_param(value: str | None, windows_ms: tuple[int, ...], default_ms: int) -> int:
    known = ", ".join(format_duration(w) for w in windows_ms)
    if value is None or value == "":
        return default_ms
    text = value.strip().lower()
    ms: int | None = None
    if text.isdigit():
        ms = int(text)
    else:
        units = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": DAY_MS}
        for suffix in ("ms", "s", "m", "h", "d"):
            number = text[: -len(suffix)]
            if text.endswith(suffix) and number.isdigit():
                ms = int(number) * units[suffix]
                break
    if ms is None or ms not in windows_ms:
        raise ParamError(f"window {value!r} is not one of the window sizes computed: {known}")
    return ms


def time_param(name: str, value: str, now_ms: int) -> int:
    try:
        ms = epoch_ms(value)
    except (ValueError, OverflowError):
        raise ParamError(
            f"parameter {name!r}={value!r} is not a time: use ISO 8601 such as "
            "2025-08-27T13:30:00Z, or epoch milliseconds"
        ) from None
    if not EARLIEST_TS_MS <= ms <= now_ms + MAX_FUTURE_MS:
        raise ParamError(
            f"parameter {name!r}={value!r} is out of range: from 2000-01-01 to a day from now"
        )
    return ms


def _windowed(
    pairs: Iterable[tuple[str, str]],
    sizes: tuple[int, ...],
    default_ms: int,
    now_ms: int,
    most_ms: Callable[[int], int],
    noun: str,
) -> tuple[str, int, int, int]:
    """(symbol, window, from, to) of a chart request, its span at most most_ms(window) and
    MAX_BARS windows."""
    values = _single(pairs, ("symbol", "window", "from", "to"))
    symbol = symbol_param(values.get("symbol"))
    window_ms = window_param(values.get("window"), sizes, default_ms)
    end_ms = time_param("to", values["to"], now_ms) if values.get("to") else now_ms
    if values.get("from"):
        start_ms = time_param("from", values["from"], now_ms)
    else:
        start_ms = max(EARLIEST_TS_MS, end_ms - DEFAULT_BARS * window_ms)
    if start_ms >= end_ms:
        raise ParamError("the range is empty: 'from' must be before 'to'")
    span, most = end_ms - start_ms, most_ms(window_ms)
    if span > most:
        days = f"{most // DAY_MS} days" if most % DAY_MS == 0 else format_duration(most)
        raise ParamError(f"the range spans {format_duration(span)}: ask for at most {days} "
                         f"of {format_duration(window_ms)} {noun}")  # fmt: skip
    if span // window_ms > MAX_BARS:
        raise ParamError(
            f"the range holds {span // window_ms} {format_duration(window_ms)} {noun}: ask for "
            f"at most {MAX_BARS} (a shorter range or a larger window)"
        )
    return symbol, window_ms, start_ms, end_ms


def bars_query(
    pairs: Iterable[tuple[str, str]],
    *,
    windows_ms: tuple[int, ...],
    default_window_ms: int,
    now_ms: int,
) -> BarsQuery:
    return BarsQuery(*_windowed(pairs, windows_ms, default_window_ms, now_ms,
                                lambda _window: MAX_SPAN_MS, "bars"))  # fmt: skip


# Candle sizes a chart may ask for beside the processor's windows (history has them).
CHART_INTERVALS_MS = (300_000, DAY_MS)
# Daily candles: a year and a bit, for the range picker's longest view.
MAX_DAILY_SPAN_MS = 400 * DAY_MS


def candles_query(
    pairs: Iterable[tuple[str, str]],
    *,
    windows_ms: tuple[int, ...],
    default_window_ms: int,
    now_ms: int,
) -> CandlesQuery:
    """Like bars_query; `window` may also be 5m or 1d (candles of the source's history and of
    the 1-minute data rolled up), 1d over at most MAX_DAILY_SPAN_MS."""
    sizes = tuple(sorted({*windows_ms, *CHART_INTERVALS_MS}))
    return CandlesQuery(*_windowed(
        pairs, sizes, default_window_ms, now_ms,
        lambda window: MAX_DAILY_SPAN_MS if window == DAY_MS else MAX_SPAN_MS, "candles",
    ))  # fmt: skip


def ticks_query(pairs: Iterable[tuple[str, str]]) -> TicksQuery:
    values = _single(pairs, ("symbol", "last"))
    symbol = symbol_param(values.get("symbol"))
    text = values.get("last", "")
    if text == "":
        return TicksQuery(symbol, DEFAULT_TICKS)
    if not text.isdigit() or not 1 <= int(text) <= MAX_TICKS:
        raise ParamError(f"parameter 'last'={text!r} must be a whole number from 1 to {MAX_TICKS}")
    return TicksQuery(symbol, int(text))


def live_query(pairs: Iterable[tuple[str, str]]) -> LiveQuery:
    values = _single(pairs, ("symbol",))
    if not values.get("symbol"):
        return LiveQuery(None)
    return LiveQuery(symbol_param(values["symbol"]))


def page_params(pairs: Iterable[tuple[str, str]]) -> None:
    """The page keeps its symbol and window in its address; the page itself checks them."""
    _single(pairs, ("symbol", "window"))


def no_params(pairs: Iterable[tuple[str, str]]) -> None:
    _single(pairs, ())


def days_between(start_ms: int, end_ms: int) -> list[int]:
    """The UTC day numbers that [start_ms, end_ms) touches, oldest first."""
    return list(range(start_ms // DAY_MS, (end_ms - 1) // DAY_MS + 1))
