"""The dead-letter sink: refused records go to a Kafka topic, confirmed before any commit.

A dead letter that Kafka can never take (too large for the topic, invalid) is not retried: the
metadata-only form (common.contract.dead_letter(slim=True)) is sent instead, alone, and if even
that is refused the loss is logged and counted. What a retry can cure (the broker away, a leader
moving) raises DeadLetterError with the letters still to send, so the batch is retried without
sending again the ones Kafka already acknowledged.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kafka.errors import KafkaError

from common.contract import dead_letter_key
from common.logs import Throttled
from common.topics import REFUSED_FOR_GOOD
from storage.decode import Refused

logger = logging.getLogger(__name__)


class DeadLetterError(RuntimeError):
    """Some dead letters could not be delivered for now; the batch must not be committed.

    `pending` are the ones still to send: retry those (the others were acknowledged)."""

    def __init__(self, message: str, pending: Sequence[Refused]):
        super().__init__(message)
        self.pending = list(pending)


@dataclass
class DeadLetterCounts:
    sent: int = 0
    # Sent in the metadata-only form, because Kafka refused the full one for good.
    slimmed: int = 0
    # Refused for good in both forms: only the log line and this count remain.
    lost: int = 0


class DeadLetterSink:
    def __init__(self, producer: Any, topic: str, timeout_s: float = 30.0):
        self._producer = producer
        self._topic = topic
        self._timeout_s = timeout_s
        self.counts = DeadLetterCounts()
        self._log = Throttled(logger)

    def send(self, refused: Sequence[Refused]) -> None:
        """Deliver every dead letter (acks=all), slimmed or given up when Kafka refuses one for
        good; raise DeadLetterError (with those still pending) when Kafka is away."""
        if not refused:
            return
        sent: list[tuple[Refused, Any]] = []
        refused_for_good: list[tuple[Refused, Exception]] = []
        deadline = time.monotonic() + self._timeout_s
        try:
            for r in refused:
                self._log.warning(
                    "dead letter topic=%s partition=%s offset=%s reason=%s",
                    r.origin["topic"], r.origin["partition"], r.origin["offset"], r.reason,
                )  # fmt: skip
                try:
                    sent.append((r, self._send(r.to_dead_letter(), r.key)))
                except REFUSED_FOR_GOOD as e:  # refused before it was sent (larger than a request)
                    refused_for_good.append((r, e))
        except KafkaError as e:
            raise DeadLetterError(
                f"dead letters not sent to {self._topic}: {type(e).__name__}: {e}",
                [r for r, f in sent if not f.succeeded()]
                + [r for r, _ in refused_for_good]
                + list(refused[len(sent) + len(refused_for_good) :]),
            ) from e
        with contextlib.suppress(KafkaError):
            # Judged letter by letter below: kafka-python's flush can return early ("Future not
            # done") when Kafka refused a batch as too large and it was split to send again.
            self._producer.flush(timeout=self._timeout_s)
        pending = []
        for r, future in sent:
            try:
                future.get(timeout=max(0.0, deadline - time.monotonic()))
            except REFUSED_FOR_GOOD as e:
                refused_for_good.append((r, e))
            except KafkaError as e:
                pending.append((r, e))
            else:
                self.counts.sent += 1
        for r, error in refused_for_good:
            self._one_by_one(r, error)
        if pending:
            raise DeadLetterError(
                f"{len(pending)} of {len(refused)} dead letters not delivered to "
                f"{self._topic}: {pending[0][1]!r}",
                [r for r, _ in pending],
            )

    def _one_by_one(self, r: Refused, error: Exception) -> None:
        """A dead letter Kafka refused for good: alone (a batch of several can be what was too
        large), then in its metadata-only form, then given up. Transient errors still raise."""
        for slim in (False, True):
            try:
                self._send(r.to_dead_letter(slim=slim), r.key).get(timeout=self._timeout_s)
            except REFUSED_FOR_GOOD as e:
                error = e
                continue
            except KafkaError as e:
                raise DeadLetterError(
                    f"dead letter not delivered to {self._topic}: {type(e).__name__}: {e}", [r]
                ) from e
            if slim:
                self.counts.slimmed += 1
                self._log.error(
                    "dead letter too large or invalid for topic=%s, sent without its bytes "
                    "origin=%s error=%s slimmed=%d",
                    self._topic, r.origin, type(error).__name__, self.counts.slimmed,
                )  # fmt: skip
            else:
                self.counts.sent += 1
            return
        self.counts.lost += 1
        self._log.error(
            "dead letter refused by Kafka in every form, not sent topic=%s origin=%s reason=%s "
            "error=%s lost=%d",
            self._topic, r.origin, r.reason, error, self.counts.lost,
        )  # fmt: skip

    def _send(self, value: bytes, key: bytes | None) -> Any:
        return self._producer.send(self._topic, key=dead_letter_key(key), value=value)

    def close(self) -> None:
        self._producer.close(timeout=self._timeout_s)
