"""The tick contract: what travels between the stages, how it is encoded, and what is valid.

Every stage imports this module and nothing else defines these shapes. On the wire a tick or an
aggregate is one compact JSON object; times are epoch milliseconds in UTC.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import json
import math
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

TICKS_TOPIC = "ticks"
AGGREGATES_TOPIC = "aggregates"
BARS_TOPIC = "bars"
DEAD_LETTER_TOPIC = "dead-letters"

# A tick is ~120 bytes; anything far larger is not a tick and is refused before parsing.
MAX_MESSAGE_BYTES = 4096

SYMBOL_PATTERN = re.compile(r"^[A-Z0-9.\-^=]{1,15}$")
EARLIEST_TS_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
MAX_FUTURE_MS = 24 * 60 * 60 * 1000
MAX_SOURCE_CHARS = 32
_SURROGATE = re.compile("[\ud800-\udfff]")

# Bounds on every number, checked where a message is parsed, so that no stage downstream can
# overflow on what the contract let through.
# Prices: the dearest listed share trades near 10^6 and the cheapest crypto tokens near 10^-8,
# so (0, 10^9] with a floor of 10^-9 keeps every real price and refuses denormals and junk.
# price * volume is then at most 10^21 per tick: a window's sum of those is far inside a double.
MIN_PRICE = 1e-9
MAX_PRICE = 1e9
# Volume: no instrument trades more than ~10^11 units a day. 10^12 per tick leaves room for a
# window's sum of 9.2 million maximal ticks inside a signed 64-bit integer (Spark's LongType,
# Cassandra's bigint), which is what the processor's sum(volume) and storage's column hold.
MAX_VOLUME = 10**12
# seq tells apart ticks in one millisecond; Cassandra stores it as int (32-bit signed).
MAX_SEQ = 2**31 - 1
# An aggregate's volume is a sum of volumes (bigint); its count of ticks is an int column.
MAX_AGGREGATE_VOLUME = 2**63 - 1
MAX_AGGREGATE_COUNT = 2**31 - 1
# Window sizes: from one millisecond up to a day (window_ms is an int column too).
MAX_WINDOW_MS = 24 * 60 * 60 * 1000


class ContractError(ValueError):
    """A message that breaks the contract; the text says why, for people and dead letters."""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def validate_symbol(symbol: object) -> str:
    if not isinstance(symbol, str):
        raise ContractError(f"symbol must be a string, got {type(symbol).__name__}")
    if not SYMBOL_PATTERN.fullmatch(symbol):
        raise ContractError(
            f"symbol {symbol!r} is not valid: use 1 to 15 upper-case letters, digits or . - ^ ="
        )
    return symbol


def parse_symbols(text: str) -> list[str]:
    """Split a user's list ("AAPL,MSFT GOOG") into validated, de-duplicated symbols in order."""
    symbols: list[str] = []
    for raw in re.split(r"[,\s]+", text.strip()):
        if raw and raw not in symbols:
            symbols.append(validate_symbol(raw))
    if not symbols:
        raise ContractError("no symbols given")
    return symbols


def _price(name: str, value: object) -> float:
    # bool is an int subclass; a True price is a bug upstream, not a price of 1.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ContractError(f"{name} must be a number, got {type(value).__name__}")
    if isinstance(value, int) and not -(10**20) < value < 10**20:
        # float() of a huge int raises OverflowError; no price is anywhere near this anyway.
        raise ContractError(
            f"{name} must be at most {MAX_PRICE:g}, got an integer of {len(str(abs(value)))} digits"
        )
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ContractError(f"{name} must be a finite number above 0, got {value!r}")
    if not MIN_PRICE <= value <= MAX_PRICE:
        raise ContractError(f"{name} {value!r} is outside {MIN_PRICE:g}..{MAX_PRICE:g}")
    return value


def _count(name: str, value: object, limit: int) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ContractError(f"{name} must be a whole number, got {short(value)}")
    if value < 0:
        raise ContractError(f"{name} must not be negative, got {short(value)}")
    if value > limit:
        raise ContractError(f"{name} {short(value)} is above the limit of {limit}")
    return value


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, saying so: whatever quotes input is bounded."""
    if len(text) <= limit:
        return text
    marker = f"...[{len(text)} chars]"
    return text[: max(0, limit - len(marker))] + marker


def short(value: object, limit: int = 40) -> str:
    """A value quoted in a reason or an error, bounded: huge numbers and long strings would flood
    the dead letters and the logs."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a repr that fails (digits limit, recursion) says so
        text = f"<{type(value).__name__}>"
    return clip(text, limit)


def _timestamp(name: str, value: object, now: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ContractError(
            f"{name} must be epoch milliseconds as a whole number, got {short(value)}"
        )
    if value < EARLIEST_TS_MS:
        hint = " (seconds instead of milliseconds?)" if value > 946_684_800 else ""
        raise ContractError(f"{name} {value} is before the year 2000{hint}")
    limit = (now_ms() if now is None else now) + MAX_FUTURE_MS
    if value > limit:
        raise ContractError(f"{name} {short(value)} is more than a day in the future")
    return value


def _text(name: str, value: object, limit: int = MAX_SOURCE_CHARS) -> str:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise ContractError(f"{name} must be a non-empty string of at most {limit} characters")
    if _SURROGATE.search(value):
        # JSON can spell a lone surrogate (\ud800) that no UTF-8 column or topic can hold.
        raise ContractError(f"{name} holds a lone surrogate, which is not text")
    return value


def _ohlc(item: object, names: tuple[str, ...]) -> dict[str, float]:
    """The prices `names` of an aggregate or a bar, each valid, open and close within
    low..high."""
    prices = {k: _price(k, getattr(item, k)) for k in names}
    if prices["low"] > prices["high"]:
        raise ContractError(f"low {prices['low']} is above high {prices['high']}")
    for name in ("open", "close"):
        if not prices["low"] <= prices[name] <= prices["high"]:
            raise ContractError(f"{name} {prices[name]} is outside low..high")
    return prices


@dataclass(frozen=True, slots=True)
class Tick:
    """One observed price of one symbol.

    ``seq`` tells apart ticks of the same symbol within the same millisecond (0, 1, 2 ... in the
    order the source saw them). (symbol, ts, seq) identifies a tick: delivering it twice gives
    the same identity, and it is also the order used to pick a window's open and close.
    """

    symbol: str
    price: float
    volume: int
    ts: int
    source: str
    seq: int = 0

    @property
    def identity(self) -> tuple[str, int, int]:
        return (self.symbol, self.ts, self.seq)

    @property
    def key(self) -> bytes:
        return message_key(self.symbol)

    def validated(self, now: int | None = None) -> Tick:
        return Tick(
            symbol=validate_symbol(self.symbol),
            price=_price("price", self.price),
            volume=_count("volume", self.volume, MAX_VOLUME),
            ts=_timestamp("ts", self.ts, now),
            source=_text("source", self.source),
            seq=_count("seq", self.seq, MAX_SEQ),
        )

    def to_json(self) -> bytes:
        # Every tick passes here, tens of thousands a second: formatting directly is ~15x faster
        # than asdict + json.dumps and gives the same bytes (float repr is what json writes for
        # a finite float; the strings still go through json.dumps, cached).
        return (
            f'{{"symbol":{_json_string(self.symbol)},"price":{self.price!r},'
            f'"volume":{self.volume},"ts":{self.ts},'
            f'"source":{_json_string(self.source)},"seq":{self.seq}}}'
        ).encode()

    @classmethod
    def from_json(cls, payload: bytes | str | None, now: int | None = None) -> Tick:
        with _refusing_anything():
            data = _load_object(payload)
            _require(data, TICK_REQUIRED_FIELDS)
            return cls(
                symbol=data["symbol"],
                price=data["price"],
                volume=data["volume"],
                ts=data["ts"],
                source=data["source"],
                seq=data.get("seq", 0),
            ).validated(now)

    @classmethod
    def from_record(cls, key: bytes | None, payload: bytes | None, now: int | None = None) -> Tick:
        """A tick read from Kafka: the value must be a valid tick and the key its symbol."""
        tick = cls.from_json(payload, now)
        check_key(key, tick.symbol)
        return tick


@dataclass(frozen=True, slots=True)
class Aggregate:
    """Statistics of one symbol over one tumbling event-time window [window_start, window_end).

    (symbol, window_ms, window_start) is the identity: a window re-emitted as late ticks arrive
    keeps it, so downstream upserts converge on the final values.
    """

    symbol: str
    window_ms: int
    window_start: int
    window_end: int
    open: float
    high: float
    low: float
    close: float
    avg: float
    vwap: float
    volume: int
    count: int

    @property
    def identity(self) -> tuple[str, int, int]:
        return (self.symbol, self.window_ms, self.window_start)

    @property
    def key(self) -> bytes:
        return message_key(self.symbol)

    def validated(self, now: int | None = None) -> Aggregate:
        validate_symbol(self.symbol)
        window_ms = _count("window_ms", self.window_ms, MAX_WINDOW_MS)
        start = _timestamp("window_start", self.window_start, now)
        end = _count("window_end", self.window_end, start + MAX_WINDOW_MS)
        if window_ms == 0 or end - start != window_ms:
            raise ContractError(
                f"window_end - window_start must equal window_ms > 0, got {start}..{end} "
                f"for {window_ms} ms"
            )
        if start % window_ms:
            raise ContractError(
                f"window_start {start} is not a multiple of window_ms {window_ms} "
                "(windows are aligned to the epoch)"
            )
        prices = _ohlc(self, PRICE_FIELDS)
        count = _count("count", self.count, MAX_AGGREGATE_COUNT)
        if count == 0:
            raise ContractError("count must be at least 1")
        return Aggregate(
            symbol=self.symbol,
            window_ms=window_ms,
            window_start=start,
            window_end=end,
            volume=_count("volume", self.volume, MAX_AGGREGATE_VOLUME),
            count=count,
            **prices,
        )

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, payload: bytes | str | None, now: int | None = None) -> Aggregate:
        with _refusing_anything():
            data = _load_object(payload)
            _require(data, AGGREGATE_FIELDS)
            return cls(**{name: data[name] for name in AGGREGATE_FIELDS}).validated(now)

    @classmethod
    def from_record(
        cls, key: bytes | None, payload: bytes | None, now: int | None = None
    ) -> Aggregate:
        """An aggregate read from Kafka: a valid aggregate keyed by its symbol."""
        aggregate = cls.from_json(payload, now)
        check_key(key, aggregate.symbol)
        return aggregate


# A source's bars: the intervals the sources serve, and how long each is. Daily bars start at
# 00:00 UTC of their trading date (the date in the exchange's own time zone), so that one
# trading day is one bar whatever the zone.
BAR_INTERVALS: dict[str, int] = {"1m": 60_000, "5m": 300_000, "1d": 86_400_000}
# Daily history goes back decades (Stooq has 1980s bars); epoch 0 is the floor.
EARLIEST_BAR_MS = 0


@dataclass(frozen=True, slots=True)
class Bar:
    """A source's own open/high/low/close/volume of one symbol over [start, start + interval).

    History, not a trade: bars travel on their own topic and never count as ticks in the
    aggregates. (symbol, interval, start) is the identity: fetching the same range again gives
    the same bars, and storing them again changes nothing. On the wire they travel a symbol's
    run at a time (encode_bars, decode_bars).
    """

    symbol: str
    interval: str
    start: int
    open: float
    high: float
    low: float
    close: float
    volume: int
    source: str

    @property
    def identity(self) -> tuple[str, str, int]:
        return (self.symbol, self.interval, self.start)

    @property
    def interval_ms(self) -> int:
        return BAR_INTERVALS[self.interval]

    @property
    def key(self) -> bytes:
        return message_key(self.symbol)

    def validated(self, now: int | None = None) -> Bar:
        validate_symbol(self.symbol)
        if not isinstance(self.interval, str) or self.interval not in BAR_INTERVALS:
            raise ContractError(
                f"interval must be one of {', '.join(BAR_INTERVALS)}, got {short(self.interval)}"
            )
        if isinstance(self.start, bool) or not isinstance(self.start, int):
            raise ContractError(f"start must be epoch milliseconds, got {short(self.start)}")
        if self.start < EARLIEST_BAR_MS:
            raise ContractError(f"start {self.start} is before 1970")
        limit = (now_ms() if now is None else now) + MAX_FUTURE_MS
        if self.start > limit:
            raise ContractError(f"start {short(self.start)} is more than a day in the future")
        step = BAR_INTERVALS[self.interval]
        if self.start % step:
            raise ContractError(
                f"start {self.start} is not a multiple of the {self.interval} interval "
                "(bars are aligned to the epoch; daily bars start at 00:00 UTC of their date)"
            )
        prices = _ohlc(self, BAR_PRICE_FIELDS)
        return Bar(
            symbol=self.symbol,
            interval=self.interval,
            start=self.start,
            volume=_count("volume", self.volume, MAX_AGGREGATE_VOLUME),
            source=_text("source", self.source),
            **prices,
        )


def encode_bars(bars: Sequence[Bar]) -> list[tuple[str, int, bytes]]:
    """Valid bars as bars-topic records, (symbol, how many bars, value): each one symbol's, one
    interval's and one source's, in the order given, at most MAX_MESSAGE_BYTES each (about 70
    minute bars).

    A backfill moves hundreds of thousands of bars: one Kafka record each would spend most of
    the CPU, in both the producer and storage, in the Kafka client rather than on the bars.
    """
    records: list[tuple[str, int, bytes]] = []
    groups: dict[tuple[str, str, str], list[Bar]] = {}
    for bar in bars:
        groups.setdefault((bar.symbol, bar.interval, bar.source), []).append(bar)
    for (symbol, interval, source), group in groups.items():
        head = (f'{{"symbol":{_json_string(symbol)},"interval":{_json_string(interval)},'
                f'"source":{_json_string(source)},"bars":[')  # fmt: skip
        rows: list[str] = []
        size = len(head) + 2
        for b in group:
            # repr of a finite float is its JSON; validated bars have only finite ones.
            row = f"[{b.start},{b.open!r},{b.high!r},{b.low!r},{b.close!r},{b.volume}]"
            if rows and size + len(row) + 1 > MAX_MESSAGE_BYTES:
                records.append((symbol, len(rows), (head + ",".join(rows) + "]}").encode()))
                rows, size = [], len(head) + 2
            rows.append(row)
            size += len(row) + 1
        if rows:
            records.append((symbol, len(rows), (head + ",".join(rows) + "]}").encode()))
    return records


def decode_bars(key: bytes | None, payload: bytes | None, now: int | None = None) -> list[Bar]:
    """The bars of a bars-topic record, every one valid, keyed by their symbol; a record with
    any bar that breaks the contract is refused whole (ContractError says which and why)."""
    with _refusing_anything():
        data = _load_object(payload)
        _require(data, BAR_RECORD_FIELDS)
        extra = [name for name in data if name not in BAR_RECORD_FIELDS]
        if extra:
            # A tick or an aggregate sent here by mistake is refused, not half-read.
            raise ContractError(f"unknown field(s) for a bars record: {short(extra)}")
        symbol, interval, source, rows = (data[name] for name in BAR_RECORD_FIELDS)
        validate_symbol(symbol)
        check_key(key, symbol)
        if not isinstance(rows, list) or not rows:
            raise ContractError("bars must be a non-empty list of [start, open, high, low, "
                                "close, volume]")  # fmt: skip
        bars = []
        for n, row in enumerate(rows):
            if not isinstance(row, list) or len(row) != len(BAR_ROW_FIELDS):
                raise ContractError(f"bar {n} is not [start, open, high, low, close, volume]")
            try:
                bars.append(Bar(symbol, interval, row[0], row[1], row[2], row[3], row[4],
                                row[5], source).validated(now))  # fmt: skip
            except ContractError as e:
                raise ContractError(f"bar {n} (start {short(row[0])}): {e}") from None
        return bars


# The whole shape in one place: what a tick must carry, an aggregate's fields in wire order.
TICK_FIELDS: tuple[str, ...] = Tick.__slots__
TICK_REQUIRED_FIELDS: tuple[str, ...] = ("symbol", "price", "volume", "ts", "source")
AGGREGATE_FIELDS: tuple[str, ...] = Aggregate.__slots__
PRICE_FIELDS = ("open", "high", "low", "close", "avg", "vwap")
BAR_FIELDS: tuple[str, ...] = Bar.__slots__
# A bars-topic record: one symbol's bars of one interval from one source, each bar a row.
BAR_RECORD_FIELDS = ("symbol", "interval", "source", "bars")
BAR_ROW_FIELDS = ("start", "open", "high", "low", "close", "volume")
BAR_PRICE_FIELDS = ("open", "high", "low", "close")


def message_key(symbol: str) -> bytes:
    """Every message is keyed by its symbol, so one symbol's messages share a partition."""
    return symbol.encode()


def check_key(key: bytes | None, symbol: str) -> None:
    if key != message_key(symbol):
        shown = "none" if key is None else short(key)
        raise ContractError(f"message key {shown} does not match symbol {symbol!r}")


@contextlib.contextmanager
def _refusing_anything() -> Iterator[None]:
    """Whatever goes wrong while decoding a message is a refusal with a reason, never a crash.

    A hostile payload can make the parser itself fail (nesting deep enough to exhaust the
    recursion limit, numbers too large to convert): each of those is the message's fault.
    """
    try:
        yield
    except ContractError:
        raise
    except Exception as e:  # noqa: BLE001 - any failure here is the message's, refused below
        raise ContractError(f"could not decode the message: {type(e).__name__}: {short(e)}") from e


_json_string = functools.lru_cache(maxsize=65_536)(json.dumps)


def _load_object(payload: bytes | str | None) -> dict[str, Any]:
    if payload is None:
        raise ContractError("no value (a tombstone): expected a JSON object")
    size = len(payload.encode() if isinstance(payload, str) else payload)
    if size > MAX_MESSAGE_BYTES:
        raise ContractError(f"message of {size} bytes is over the {MAX_MESSAGE_BYTES}-byte limit")
    try:
        data = json.loads(payload, object_pairs_hook=_unique_keys)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ContractError(f"not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise ContractError(f"expected a JSON object, got {type(data).__name__}")
    return data


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A field given twice means different things to different JSON parsers (first or last
    # wins); refusing it keeps every stage's reading the same.
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ContractError(f"field {twice!r} appears more than once")
    return data


def _require(data: dict[str, Any], names: tuple[str, ...]) -> None:
    missing = [n for n in names if n not in data]
    if missing:
        raise ContractError(f"missing field(s): {', '.join(missing)}")


# --- Dead letters -----------------------------------------------------------------------------
#
# A dead letter is what a stage writes to DEAD_LETTER_TOPIC for a record it refuses: which stage,
# why, where the record came from, and the record's key and value, clipped. It is built here and
# nowhere else, so that its size is bounded by construction whatever the refused record holds:
# a hostile record can be as large as the broker allows (about 1 MB), and a dead letter that
# quoted it whole, escaped as JSON text, would be ~6x that and refused by Kafka in turn.

STAGES = ("producer", "processor", "storage")
# Every dead letter has exactly these fields, in this order.
DEAD_LETTER_FIELDS = ("stage", "reason", "origin", "key", "payload", "refused_at")
# A clipped key or payload: the bytes kept (as UTF-8 text when they are, else base64), how long
# the original was, whether it was cut, and the original's SHA-256, to find it again or match
# copies of it.
CLIPPED_FIELDS = ("encoding", "data", "bytes", "clipped", "sha256")
# A tick is ~120 bytes and MAX_MESSAGE_BYTES is the most any stage accepts, so 4 KiB of a
# payload shows any record that was nearly a tick in full, and the start of any other.
DEAD_LETTER_PAYLOAD_BYTES = 4096
DEAD_LETTER_KEY_BYTES = 1024
DEAD_LETTER_REASON_CHARS = 1000
# Origins are a few names and numbers (topic, partition, offset; source, symbol); each text in
# one is clipped to this, and an origin holds at most this many of them.
DEAD_LETTER_ORIGIN_CHARS = 256
DEAD_LETTER_ORIGIN_FIELDS = 8
# The dead letter's own Kafka key: the refused record's key, clipped (a symbol is 15 bytes).
DEAD_LETTER_KAFKA_KEY_BYTES = 64
# What a metadata-only dead letter keeps of the reason: it is sent when the full one cannot be.
SLIM_REASON_CHARS = 200
# JSON writes one byte of UTF-8 text as at most 6 (a control character becomes \u00XX); base64
# writes 3 bytes as 4. So each field grows by at most this factor over what is kept of it.
JSON_GROWTH = 6
# Room for field names, digests, lengths, numbers and punctuation.
_FRAMING_BYTES = 1024
DEAD_LETTER_MAX_BYTES = (
    JSON_GROWTH
    * (
        DEAD_LETTER_PAYLOAD_BYTES
        + DEAD_LETTER_KEY_BYTES
        + DEAD_LETTER_REASON_CHARS
        + DEAD_LETTER_ORIGIN_FIELDS * 2 * DEAD_LETTER_ORIGIN_CHARS
    )
    + _FRAMING_BYTES
)  # 62,320 bytes: under 1/16 of Kafka's default max.request.size (1 MiB)


def clipped_bytes(raw: bytes | None, limit: int) -> dict[str, Any] | None:
    """The CLIPPED_FIELDS of `raw` keeping at most `limit` bytes of it; None for no bytes at all.

    Kept as text when the kept bytes are UTF-8 (cut at a character boundary), else as base64.
    """
    if raw is None:
        return None
    kept = raw[:limit]
    text = _utf8_prefix(kept, cut=len(kept) < len(raw))
    if text is not None:
        encoding, data = "utf-8", text
    else:
        encoding, data = "base64", base64.b64encode(kept).decode("ascii")
    return {
        "encoding": encoding,
        "data": data,
        "bytes": len(raw),
        "clipped": len(kept) < len(raw) or (text is not None and len(text.encode()) < len(kept)),
        "sha256": hashlib.sha256(raw).hexdigest(),
    }


def _utf8_prefix(kept: bytes, cut: bool) -> str | None:
    """`kept` as text if it is UTF-8; when it was cut from a longer record, a character split by
    the cut is dropped (up to 3 bytes) rather than making the whole of it base64."""
    try:
        return kept.decode("utf-8")
    except UnicodeDecodeError as e:
        split = cut and e.start >= len(kept) - 3 and e.reason == "unexpected end of data"
        if not split:
            return None
        end = e.start
    try:
        return kept[:end].decode("utf-8")
    except UnicodeDecodeError:
        return None


def dead_letter_key(key: bytes | None) -> bytes | None:
    """The Kafka key of a dead letter: the refused record's own, clipped (it groups the dead
    letters of one symbol in one partition, as the records were)."""
    return None if key is None else key[:DEAD_LETTER_KAFKA_KEY_BYTES]


def _origin(origin: dict[str, Any]) -> dict[str, Any]:
    bounded: dict[str, Any] = {}
    for name, value in list(origin.items())[:DEAD_LETTER_ORIGIN_FIELDS]:
        plain = (
            value is None
            or isinstance(value, (bool, float))
            or (isinstance(value, int) and abs(value) < 2**63)
        )
        shown = value if plain else clip(str(value), DEAD_LETTER_ORIGIN_CHARS)
        bounded[clip(str(name), DEAD_LETTER_ORIGIN_CHARS)] = shown
    return bounded


def dead_letter(
    stage: str,
    reason: str,
    origin: dict[str, Any],
    payload: bytes | None,
    key: bytes | None = None,
    *,
    slim: bool = False,
) -> bytes:
    """A dead-letter record (DEAD_LETTER_FIELDS as compact JSON), at most DEAD_LETTER_MAX_BYTES.

    `slim` gives the metadata-only form, sent when the full one cannot be delivered: the reason
    clipped shorter, the key and payload described (length, digest) but none of their bytes.
    Each stage that reads a record judges it on its own, so a record refused by two stages has
    two dead letters, told apart by `stage`.
    """
    if stage not in STAGES:
        raise ValueError(f"stage {stage!r} is not one of {STAGES}")
    kept = 0 if slim else 1
    record = {
        "stage": stage,
        "reason": clip(reason, SLIM_REASON_CHARS if slim else DEAD_LETTER_REASON_CHARS),
        "origin": _origin(origin),
        "key": clipped_bytes(key, kept * DEAD_LETTER_KEY_BYTES),
        "payload": clipped_bytes(payload, kept * DEAD_LETTER_PAYLOAD_BYTES),
        "refused_at": now_ms(),
    }
    # ensure_ascii=False: non-ASCII text stays as its UTF-8 bytes (at most JSON_GROWTH anyway).
    # A lone surrogate in a reason cannot be UTF-8: it is written as its \u escape instead.
    text = json.dumps(record, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8", "backslashreplace")


def read_dead_letter(value: bytes) -> dict[str, Any]:
    """A dead letter as read from DEAD_LETTER_TOPIC, checked against the shape above; raises
    ContractError when it is not one (a stage wrote another shape, or over the bound)."""
    if len(value) > DEAD_LETTER_MAX_BYTES:
        raise ContractError(f"dead letter of {len(value)} bytes is over {DEAD_LETTER_MAX_BYTES}")
    with _refusing_anything():
        record = json.loads(value, object_pairs_hook=_unique_keys)
        if not isinstance(record, dict) or tuple(record) != DEAD_LETTER_FIELDS:
            fields = list(record) if isinstance(record, dict) else type(record).__name__
            raise ContractError(f"dead letter fields {fields} are not {list(DEAD_LETTER_FIELDS)}")
        if record["stage"] not in STAGES:
            stage = short(record["stage"])
            raise ContractError(f"dead letter stage {stage} is not one of {STAGES}")
        if not isinstance(record["reason"], str) or not record["reason"]:
            raise ContractError("dead letter reason must be a non-empty string")
        if not isinstance(record["origin"], dict) or not record["origin"]:
            raise ContractError("dead letter origin must be a non-empty object")
        for name in ("key", "payload"):
            _check_clipped(name, record[name])
        _count("refused_at", record["refused_at"], 2**63 - 1)
        return record


def _check_clipped(name: str, value: object) -> None:
    if value is None:
        return
    if not isinstance(value, dict) or tuple(value) != CLIPPED_FIELDS:
        raise ContractError(f"dead letter {name} must be null or an object of {CLIPPED_FIELDS}")
    if value["encoding"] not in ("utf-8", "base64") or not isinstance(value["data"], str):
        raise ContractError(f"dead letter {name}: encoding must be utf-8 or base64, data text")
    if not isinstance(value["clipped"], bool) or not re.fullmatch(r"[0-9a-f]{64}", value["sha256"]):
        raise ContractError(f"dead letter {name}: clipped must be a bool, sha256 a hex digest")
    _count(f"{name} bytes", value["bytes"], 2**63 - 1)


def dead_letter_bytes(clipped: dict[str, Any] | None) -> bytes | None:
    """The bytes a dead letter kept of a key or payload (all of them when not clipped)."""
    if clipped is None:
        return None
    if clipped["encoding"] == "base64":
        return base64.b64decode(clipped["data"])
    return clipped["data"].encode()
