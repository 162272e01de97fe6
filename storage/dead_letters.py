"""The dead-letter sink: refused records go to a Kafka topic, confirmed before any commit."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from kafka.errors import KafkaError

from storage.decode import Refused

logger = logging.getLogger(__name__)


class DeadLetterError(RuntimeError):
    """Dead letters could not be delivered; the batch must not be committed."""


class DeadLetterSink:
    def __init__(self, producer: Any, topic: str, timeout_s: float = 30.0):
        self._producer = producer
        self._topic = topic
        self._timeout_s = timeout_s

    def send(self, refused: Sequence[Refused]) -> None:
        """Deliver every dead letter (acks=all), or raise DeadLetterError."""
        if not refused:
            return
        futures = []
        try:
            for r in refused:
                logger.warning(
                    "dead letter topic=%s partition=%s offset=%s reason=%s",
                    r.origin["topic"], r.origin["partition"], r.origin["offset"], r.reason,
                )  # fmt: skip
                futures.append(
                    self._producer.send(self._topic, key=r.key, value=r.to_dead_letter())
                )
            self._producer.flush(timeout=self._timeout_s)
        except KafkaError as e:
            raise DeadLetterError(f"dead letters not flushed to {self._topic}: {e!r}") from e
        failed = [f.exception or "not acknowledged" for f in futures if not f.succeeded()]
        if failed:
            raise DeadLetterError(
                f"{len(failed)} of {len(futures)} dead letters not delivered to "
                f"{self._topic}: {failed[0]!r}"
            )

    def close(self) -> None:
        self._producer.close(timeout=self._timeout_s)
