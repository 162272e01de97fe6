"""A corpus of hostile Kafka records for the ticks and aggregates topics, made from a seed.

Every record here breaks the contract in one way or another, so every stage that reads it must
refuse it with a reason and go on. Each comes with its key, as an attacker (or a broken producer)
would write it straight into the topic.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from common.contract import (
    MAX_MESSAGE_BYTES,
    MAX_PRICE,
    MAX_SEQ,
    MAX_VOLUME,
    Aggregate,
    ContractError,
    Tick,
    message_key,
)


@dataclass(frozen=True)
class Hostile:
    kind: str
    key: bytes | None
    value: bytes | None


def _tick_fields(rng: random.Random, now_ms: int) -> dict:
    return {
        "symbol": rng.choice(["AAPL", "MSFT", "GOOG"]),
        "price": round(rng.uniform(1, 500), 2),
        "volume": rng.randrange(0, 1000),
        "ts": now_ms - rng.randrange(0, 60_000),
        "source": "hostile",
        "seq": rng.randrange(0, 3),
    }


def _aggregate_fields(rng: random.Random, now_ms: int) -> dict:
    size = 60_000
    start = (now_ms - rng.randrange(0, 3_600_000)) // size * size
    low = round(rng.uniform(1, 100), 2)
    high = low + 5
    return {
        "symbol": rng.choice(["AAPL", "MSFT", "GOOG"]),
        "window_ms": size, "window_start": start, "window_end": start + size,
        "open": low + 1, "high": high, "low": low, "close": low + 2, "avg": low + 2.5,
        "vwap": low + 2.4, "volume": rng.randrange(1, 10_000), "count": rng.randrange(1, 100),
    }  # fmt: skip


def _keyed(fields: dict) -> bytes | None:
    symbol = fields.get("symbol")
    return message_key(symbol) if isinstance(symbol, str) and symbol.isascii() else b"x"


_BAD_NUMBERS = [
    10**20, 10**30, 2**63, 2**63 - 1, 2**64, -(2**63) - 1, 10**400, -1, -0.0, 0,
    MAX_VOLUME + 1, MAX_SEQ + 1, MAX_PRICE * 10, 1e-300,
]  # fmt: skip
_BAD_VALUES = [None, True, False, "12", "", [], {}, [1, 2], {"a": 1}, "NaN", 1.5]
_LITERALS = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1" + "0" * 400]


def _field_attacks(fields: dict, rng: random.Random) -> Iterator[tuple[str, dict | bytes]]:
    name = rng.choice(sorted(fields))
    changed = dict(fields)
    changed[name] = rng.choice(_BAD_NUMBERS + _BAD_VALUES)
    yield f"bad-{name}", changed
    missing = dict(fields)
    del missing[name]
    yield f"missing-{name}", missing
    # A number the JSON encoder will not write: spliced into the text.
    text = json.dumps({**fields, name: "@@"}).encode()
    yield f"literal-{name}", text.replace(b'"@@"', rng.choice(_LITERALS).encode())


def _structural(fields: dict, rng: random.Random) -> Iterator[tuple[str, dict | bytes]]:
    text = json.dumps(fields).encode()
    yield "truncated", text[: rng.randrange(1, len(text))]
    yield "not-json", b"{" + bytes(rng.randrange(32, 127) for _ in range(20))
    yield "invalid-utf8", text.replace(b'"source"', b'"\xff\xfesource"')
    yield "lone-surrogate", text.replace(b'"hostile"', b'"\\ud800"')
    yield "deep-nesting", b'{"symbol":' + b"[" * 1500 + b"]" * 1500 + b"}"
    yield "oversized", json.dumps({**fields, "pad": "x" * MAX_MESSAGE_BYTES}).encode()
    yield "array", json.dumps([fields]).encode()
    yield "scalar", rng.choice([b"42", b'"AAPL"', b"null", b"true", b""])
    name = rng.choice(sorted(fields))
    dup = text[:-1] + b", " + json.dumps(name).encode() + b": " + json.dumps(fields[name]).encode()
    yield "duplicate-key", dup + b"}"
    yield "bad-symbol", {**fields, "symbol": rng.choice(["aapl", "A;DROP", "X" * 16, "ÄPFEL", ""])}


def _key_attacks(fields: dict, rng: random.Random) -> Iterator[tuple[str, bytes | None, bytes]]:
    value = json.dumps(fields).encode()
    yield "wrong-key", b"NOT" + _keyed(fields), value
    yield "no-key", None, value
    yield "binary-key", bytes(rng.randrange(256) for _ in range(8)), value


def corpus(
    n: int, kind: str, now_ms: int, seed: int = 0, fields: Callable | None = None
) -> list[Hostile]:
    """n hostile records for the 'ticks' or 'aggregates' topic, cycling through every attack."""
    rng = random.Random(seed)
    make = fields or (_tick_fields if kind == "ticks" else _aggregate_fields)
    out: list[Hostile] = []
    while len(out) < n:
        base = make(rng, now_ms)
        made: list[Hostile] = [Hostile("tombstone", _keyed(base), None)]
        for name, body in (*_field_attacks(base, rng), *_structural(base, rng)):
            value = body if isinstance(body, bytes) else json.dumps(body).encode()
            key = _keyed(body) if isinstance(body, dict) else _keyed(base)
            made.append(Hostile(name, key, value))
        made.extend(Hostile(name, key, value) for name, key, value in _key_attacks(base, rng))
        if kind == "aggregates":
            made.extend(_aggregate_attacks(base, rng))
        # Some random changes happen to stay valid (a volume of 0, a symbol "12"): only what
        # the contract refuses is hostile.
        out.extend(h for h in made if refused_by_contract(kind, h))
    return out[:n]


def refused_by_contract(kind: str, record: Hostile) -> bool:
    parse = Tick.from_record if kind == "ticks" else Aggregate.from_record
    try:
        parse(record.key, record.value)
    except ContractError:
        return True
    return False


def _aggregate_attacks(fields: dict, rng: random.Random) -> Iterator[Hostile]:
    key = _keyed(fields)
    for name, change in (
        ("low-above-high", {"low": fields["high"] + 1}),
        ("window-mismatch", {"window_end": fields["window_end"] + 1}),
        ("window-unaligned", {"window_start": fields["window_start"] + 7,
                              "window_end": fields["window_end"] + 7}),
        ("window-huge", {"window_ms": 10**12, "window_end": fields["window_start"] + 10**12}),
        ("count-zero", {"count": 0}),
        ("open-outside", {"open": fields["high"] * 2}),
        ("volume-overflow", {"volume": 2**63 + rng.randrange(1000)}),
    ):  # fmt: skip
        yield Hostile(name, key, json.dumps({**fields, **change}).encode())


def overflow_in_sum_ticks(symbol: str, ts_ms: int, n: int) -> list[Hostile]:
    """Ticks whose volumes would overflow a window's 64-bit sum if the contract let them in."""
    return [
        Hostile(
            "overflow-in-sum",
            message_key(symbol),
            json.dumps(
                {
                    "symbol": symbol,
                    "price": MAX_PRICE,
                    "volume": 2**62 + i,
                    "ts": ts_ms + i,
                    "source": "hostile",
                }
            ).encode(),  # fmt: skip
        )
        for i in range(n)
    ]


# --- Large records: what a misrouted file or an attacker writes, up to the broker's limit --------

# The broker's default message.max.bytes (1 MiB + 12): the largest record batch it takes.
BROKER_MAX_MESSAGE_BYTES = 1_048_588
# A record batch's header (61 bytes) and one record's framing, with room to spare.
BATCH_OVERHEAD = 200
CONTENTS = ("ascii", "binary", "invalid-utf8", "control", "escapes")


def sizes(broker_max: int = BROKER_MAX_MESSAGE_BYTES) -> dict[str, int]:
    """The value sizes to try: 4 KiB to just under what the broker takes in one record."""
    return {
        "4k": 4 * 1024,
        "64k": 64 * 1024,
        "512k": 512 * 1024,
        "900k": 900 * 1000,
        "max": broker_max - BATCH_OVERHEAD,
    }


def filler(content: str, size: int, seed: int = 0) -> bytes:
    """`size` bytes of one kind of content (CONTENTS)."""
    rng = random.Random(f"{seed}:{content}:{size}")
    if content == "ascii":
        return bytes(rng.choices(range(32, 127), k=size))
    if content == "binary":
        return rng.randbytes(size)
    if content == "invalid-utf8":
        # Mostly text, with bytes no UTF-8 text holds (0xff, a lone continuation byte).
        return bytes(rng.choice((0xFF, 0x80, 0x41, 0x61, 0x20)) for _ in range(size))
    if content == "control":
        # Every one of these is written \u00XX in JSON text: 6 bytes for 1.
        return bytes(rng.choices(range(0, 32), k=size))
    if content == "escapes":
        # Almost only characters JSON must escape: quotes, backslashes, control characters.
        return bytes(rng.choices(b'"\\\x00\x01\n\t\x1f', k=size))
    raise ValueError(f"no content {content!r}")


def large_records(broker_max: int = BROKER_MAX_MESSAGE_BYTES, seed: int = 0) -> list[Hostile]:
    """Every size of sizes() in every kind of CONTENTS, keyed by a symbol; then keys of up to
    100 KB (as large as a key may be with a value beside it)."""
    out = [
        Hostile(f"{content}-{name}", b"AAPL", filler(content, size, seed))
        for name, size in sizes(broker_max).items()
        for content in CONTENTS
    ]
    for content in CONTENTS:
        out.append(Hostile(f"key-{content}-100k", filler(content, 100_000, seed + 1), b"{}"))
    out.append(
        Hostile("key-and-value", filler("escapes", 100_000, seed), filler("control", 900_000))
    )
    return out


def clipped_from(clipped: dict | None, raw: bytes | None) -> bool:
    """True when a dead letter's key or payload (common.contract.clipped_bytes) was made from
    `raw`: its length and digest, and what it kept is the start of it (all of it unless cut)."""
    from common.contract import dead_letter_bytes

    if raw is None or clipped is None:
        return raw is None and clipped is None
    kept = dead_letter_bytes(clipped)
    return (
        clipped["bytes"] == len(raw)
        and clipped["sha256"] == hashlib.sha256(raw).hexdigest()
        and raw.startswith(kept)
        and clipped["clipped"] == (kept != raw)
    )
