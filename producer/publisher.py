"""Publishing to Kafka: valid ticks to the ticks topic, everything else to the dead-letter topic.

Delivery guarantees: acks=all, idempotence (so retries neither duplicate nor reorder), unbounded
retries within the delivery timeout; key = symbol, so one symbol stays in one partition, in order.
Delivery failures are counted and logged from the client's callback (or from `send()` itself,
when the client refuses a record outright). `close()` flushes, so a tick handed to `publish()` is
either acknowledged or counted as failed before the process exits. Neither `publish()` nor
`dead_letter()` raises for anything a source handed over: the contract judges a tick, and a dead
letter's reason and raw bytes are clipped so that no hostile answer makes one too large to send.
"""

from __future__ import annotations

import collections
import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from common.contract import (
    Bar,
    ContractError,
    Tick,
    dead_letter,
    encode_bars,
    message_key,
    short,
    validate_symbol,
)
from common.topics import REFUSED_FOR_GOOD, ensure_topics
from producer.settings import ProducerSettings
from producer.stats import ProducerCounters

logger = logging.getLogger(__name__)
# The Kafka header naming the fleet member that published a tick.
MEMBER_HEADER = "producer-member"

# Logging every failed record of a dead broker would flood the log: the first few, then 1 in N.
_LOG_FIRST_FAILURES = 10
_LOG_EVERY_FAILURE = 10_000
STAGE = "producer"
# Abandoning is local (the sender fails its batches and runs their callbacks): this is plenty.
_ABANDON_S = 10.0


class PublishError(RuntimeError):
    """Kafka could not be reached or set up; the message says what to check."""


class Publisher:
    def __init__(self, settings: ProducerSettings, counters: ProducerCounters, source_name: str):
        self._settings = settings
        self._counters = counters
        self._origin = {"source": source_name}
        self._producer: Any = None
        # Dead letters have a client of their own (see open()).
        self._dead_letters: Any = None
        # symbol -> (key bytes, partition, failure callback): the partition is the one the
        # default partitioner would pick from the key, worked out once per symbol instead of
        # hashing every record; the bound callback saves a partial() per record.
        self._routes: dict[str, tuple[bytes, int, Callable[[Exception], None]]] = {}
        self._partitions: list[int] = []
        # The same for the bars topic (history), filled by the first bar of each symbol.
        self._bar_routes: dict[str, tuple[bytes, int, Callable[[Exception], None]]] = {}
        self._bar_partitions: list[int] = []
        # Dead letters Kafka refused for good, to send again in their metadata-only form.
        self._slim_pending: collections.deque[tuple[str, bytes | None, object]] = (
            collections.deque()
        )
        # Each tick's Kafka headers: in a fleet, which member published it (see publish_as).
        self.headers: list[tuple[str, bytes]] | None = None

    def publish_as(self, member: str) -> None:
        """Name the fleet member on every tick from now on (a header: the wire contract's JSON
        stays as it is)."""
        self.headers = [(MEMBER_HEADER, member.encode())]

    def open(self) -> None:
        """Creates the topics when missing and connects; a second call does nothing."""
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        if self._producer is not None:
            return
        settings = self._settings
        try:
            ensure_topics(
                settings.bootstrap_servers,
                [settings.ticks_topic, settings.bars_topic, settings.dead_letter_topic],
                partitions=settings.topic_partitions,
                replication=settings.topic_replication,
            )
            client = functools.partial(
                KafkaProducer,
                bootstrap_servers=settings.bootstrap_servers,
                acks="all",
                linger_ms=settings.kafka_linger_ms,
                # Our own counters are what we report; the client's sensors cost per batch.
                metrics_enabled=False,
            )
            name = f"stock-system-producer-{self._origin['source']}"
            self._producer = client(
                client_id=name,
                enable_idempotence=True,
                batch_size=settings.kafka_batch_size,
                compression_type=settings.kafka_compression,
            )
            # kafka-python's idempotent producer turns any error Kafka will not retry (a record
            # too large for a topic) into a fatal state that fails every later send: a dead
            # letter refused for good would stop the ticks. So dead letters go through a client
            # of their own, not idempotent: a refusal fails that one letter, and a retry after a
            # lost acknowledgement can at worst write a dead letter twice.
            self._dead_letters = client(client_id=f"{name}-dead-letters", enable_idempotence=False)
            self._partitions = sorted(self._producer.partitions_for(settings.ticks_topic))
            self._bar_partitions = sorted(self._producer.partitions_for(settings.bars_topic))
        except KafkaError as e:
            raise PublishError(
                f"cannot set up Kafka at {settings.bootstrap_servers} ({type(e).__name__}: {e}); "
                "is it running? (make stack-up, then eval $(python -m stack env))"
            ) from e
        logger.info(
            "publishing topic=%s dead_letters=%s partitions=%d compression=%s linger_ms=%d",
            settings.ticks_topic, settings.dead_letter_topic, len(self._partitions),
            settings.kafka_compression, settings.kafka_linger_ms,
        )  # fmt: skip

    def publish(self, tick: Tick) -> bool:
        """Sends a tick that meets the contract; dead-letters one that does not. True if sent."""
        from kafka.errors import KafkaError

        try:
            valid = tick.validated()
        except ContractError as e:
            self.dead_letter(str(e), _raw(tick), tick.symbol)
            return False
        route = self._routes.get(valid.symbol)
        if route is None:
            route = self._routes[valid.symbol] = self._route(valid.symbol)
        try:
            future = self._producer.send(
                self._settings.ticks_topic,
                value=valid.to_json(),
                key=route[0],
                partition=route[1],
                headers=self.headers,
            )
        except KafkaError as e:
            # Refused before it was queued (no metadata within max_block_ms, buffer full):
            # counted as a failed delivery, like one the broker refused.
            route[2](e)
            return False
        future.add_errback(route[2])
        self._counters.published += 1
        return True

    def publish_bars(self, bars: Sequence[Bar]) -> int:
        """Sends the bars that meet the contract to the bars topic, a symbol's run per record
        (common.contract.encode_bars), keyed by the symbol, in the partition the default
        partitioner would pick; dead-letters each bar that does not. Returns the bars sent.
        May be called from another thread than publish(): the Kafka client is thread-safe."""
        from kafka.errors import KafkaError

        valid = []
        for bar in bars:
            try:
                valid.append(bar.validated())
            except ContractError as e:
                self.dead_letter(str(e), _raw(bar), bar.symbol)
        sent = 0
        for symbol, count, record in encode_bars(valid):
            route = self._bar_routes.get(symbol)
            if route is None:
                route = self._bar_routes[symbol] = self._route(symbol, self._bar_partitions)
            try:
                future = self._producer.send(
                    self._settings.bars_topic, value=record, key=route[0], partition=route[1]
                )
            except KafkaError as e:
                route[2](e)  # counted as a failed delivery, like one the broker refused
                continue
            future.add_errback(route[2])
            self._counters.bars += count
            sent += count
        return sent

    def dead_letter(self, reason: str, raw: bytes | None, symbol: object = None) -> None:
        """Sends input that is not a valid tick to the dead-letter topic, with why and whence
        (see dead_letter_record)."""
        named = _symbol_text(symbol)
        n = self._counters.rejected + 1
        if n <= _LOG_FIRST_FAILURES or n % _LOG_EVERY_FAILURE == 0:
            shown = short(reason, 500)
            logger.warning("dead-letter reason=%s symbol=%s rejected=%d", shown, named, n)
        self._counters.rejected += 1
        self._send_dead_letter((reason, raw, symbol), slim=False)

    def _send_dead_letter(self, letter: tuple[str, bytes | None, object], slim: bool) -> None:
        from kafka.errors import KafkaError

        self._resend_slim()
        key, value = dead_letter_record(self._origin["source"], *letter, slim=slim)
        try:
            future = self._dead_letters.send(self._settings.dead_letter_topic, value=value, key=key)
        except KafkaError as e:
            self._on_dead_letter_failure(letter, slim, e)
            return
        future.add_errback(functools.partial(self._on_dead_letter_failure, letter, slim))

    def _on_dead_letter_failure(
        self, letter: tuple[str, bytes | None, object], slim: bool, error: Exception
    ) -> None:
        # Runs on the Kafka client's sender thread, where sending again could block it: a dead
        # letter Kafka refuses for good is sent again, metadata only, by the next call instead.
        if not slim and isinstance(error, REFUSED_FOR_GOOD):
            self._slim_pending.append(letter)
            return
        self._on_failure(_symbol_text(letter[2]), error)

    def _resend_slim(self) -> None:
        while self._slim_pending:
            letter = self._slim_pending.popleft()
            self._counters.dead_letters_slimmed += 1
            logger.error(
                "dead letter refused by Kafka for good, sent again without its bytes "
                "symbol=%s slimmed=%d",
                _symbol_text(letter[2]), self._counters.dead_letters_slimmed,
            )  # fmt: skip
            self._send_dead_letter(letter, slim=True)

    def close(self, timeout_s: float | None = None) -> None:
        """Hands Kafka what was published and closes, within `timeout_s` in all (default: the
        stop timeout); what Kafka has not acknowledged by then is given up, each record counted
        as delivery_failed. Raises PublishError when a client could not account for what it held
        (its sender thread did not stop), so that the exit says something was lost."""
        if self._producer is None:
            return
        if timeout_s is None:
            timeout_s = self._settings.stop_timeout_ms / 1000
        deadline = time.monotonic() + timeout_s

        def left() -> float:
            return max(0.0, deadline - time.monotonic())

        flushes = [_flushing(self._producer), _flushing(self._dead_letters)]
        flushed = all([done.wait(left()) for done in flushes])
        if self._slim_pending and flushed:
            self._resend_slim()
            flushed = _flushing(self._dead_letters).wait(left())
        if not flushed:
            logger.error(
                "Kafka did not acknowledge every record within %.0fs: abandoning those it has "
                "not, each counted as delivery_failed", timeout_s,
            )  # fmt: skip
        stuck = [
            name
            for name, client in (("ticks", self._producer), ("dead letters", self._dead_letters))
            if not _close(client, flushed, left())
        ]
        self._producer = self._dead_letters = None
        if stuck:
            raise PublishError(
                f"the Kafka client for {' and '.join(stuck)} did not stop within "
                f"{_ABANDON_S:.0f}s of giving up: records it still held are neither acknowledged "
                "nor counted"
            )

    def _route(
        self, symbol: str, partitions: list[int] | None = None
    ) -> tuple[bytes, int, Callable[[Exception], None]]:
        from kafka.partitioner.default import murmur2

        key = message_key(symbol)
        partitions = self._partitions if partitions is None else partitions
        # Same arithmetic as the Java client's and kafka-python's default partitioner.
        partition = partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]
        return key, partition, functools.partial(self._on_failure, symbol)

    def _on_failure(self, symbol: str | None, error: Exception) -> None:
        # Runs on the Kafka client's sender thread.
        self._counters.delivery_failed += 1
        n = self._counters.delivery_failed
        if n <= _LOG_FIRST_FAILURES or n % _LOG_EVERY_FAILURE == 0:
            logger.error("delivery failed symbol=%s error=%r failures=%d", symbol, error, n)


def dead_letter_record(
    source: str, reason: str, raw: bytes | None, symbol: object, slim: bool = False
) -> tuple[bytes | None, bytes]:
    """The Kafka key and value of the producer's dead letter for input from `source` that is not
    a valid tick: its origin names the source and, when known, the symbol; it is keyed by the
    symbol when that is a valid one. The contract clips the reason and the raw bytes."""
    named = _symbol_text(symbol)
    origin = {"source": source, "symbol": named} if named else {"source": source}
    key = message_key(named) if named and _is_symbol(named) else None
    return key, dead_letter(STAGE, reason, origin, raw, slim=slim)


def _symbol_text(value: object) -> str | None:
    """The symbol as a dead letter can name it: text, clipped, encodable; else None."""
    if not isinstance(value, str) or not value:
        return None
    text = value[:64].encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _is_symbol(text: str) -> bool:
    try:
        validate_symbol(text)
    except ContractError:
        return False
    return True


def _raw(item: Tick | Bar) -> bytes:
    """The tick or bar as the source gave it; whatever odd values a parser produced, as their
    repr."""
    fields = {}
    for name in type(item).__slots__:
        value = getattr(item, name)
        plain = isinstance(value, (float, str)) or (
            isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**200
        )
        fields[name] = value if plain and len(str(value)) <= 200 else short(value, 200)
    try:
        return json.dumps(fields).encode("utf-8", "backslashreplace")
    except (ValueError, TypeError):
        return repr(fields).encode("utf-8", "backslashreplace")


def _flushing(client: Any) -> threading.Event:
    """Starts flushing the client; the event is set once every record it held was acknowledged
    or failed. kafka-python's own flush(timeout) applies the timeout to each batch it waits on,
    so a flush of many slow batches could outlast it many times over: the caller bounds its wait
    on the event as a whole instead (the flush goes on in a thread of its own, which ends once
    the batches are abandoned)."""
    from kafka.errors import KafkaError

    done = threading.Event()

    def flush() -> None:
        try:
            client.flush()
        except KafkaError as e:  # a batch ended in an error: counted by its callback
            logger.debug("flush: %r", e)
        finally:
            done.set()

    threading.Thread(target=flush, name="kafka-flush", daemon=True).start()
    return done


def _close(client: Any, flushed: bool, timeout_s: float) -> bool:
    """Close a client; one that could not deliver what it holds in time (every broker that could
    take it down, or too few in sync for acks=all) is closed at once instead: the batches it
    abandons fail, and their callbacks count each record as delivery_failed (exit 1), rather
    than a timeout escaping as a crash with nothing counted. False when its sender thread did
    not stop, so that what it held is not accounted for."""
    from kafka.errors import KafkaError

    if flushed:
        try:
            client.close(timeout=timeout_s)
            return True
        except KafkaError as e:
            logger.error("the Kafka client did not close within %.0fs: %s", timeout_s, e)
    # kafka-python's close() flushes first, with no public way to skip that: stop its sender
    # thread forcibly, which fails every batch it still holds (their callbacks run).
    sender = getattr(client, "_sender", None)
    if sender is not None:
        sender.force_close()
        sender.join(_ABANDON_S)
    try:
        client.close(timeout=0)
    except KafkaError as e:
        logger.error("the Kafka client did not close: %s", e)
    return sender is None or not sender.is_alive()
