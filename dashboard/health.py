"""Pipeline health for the page: consumer lag per stage, dead letters of the last hour, and how
long ago each topic was last written.

Kafka's admin calls block: the probe runs on a thread of its own, its answer kept a while
(dashboard.probe).
The processor (Spark) keeps its offsets in its checkpoint, not in a consumer group, so its
progress shows as the age of the newest aggregate instead of a lag.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from common.contract import now_ms
from common.polling import poll_paced
from dashboard.probe import CachedProbe

logger = logging.getLogger(__name__)

HOUR_MS = 3_600_000
_TIMEOUT_MS = 5000


class HealthProbe(CachedProbe):
    service = "Kafka"

    def __init__(
        self,
        bootstrap_servers: str,
        ticks_topic: str,
        aggregates_topic: str,
        dead_letter_topic: str,
        own_group: str,
    ):
        super().__init__()
        self._bootstrap = bootstrap_servers
        self._topics = {
            "ticks": ticks_topic,
            "aggregates": aggregates_topic,
            "dead_letters": dead_letter_topic,
        }
        self._own_group = own_group
        self._admin: Any = None
        self._consumer: Any = None

    def _drop_clients(self) -> None:
        for client in (self._consumer, self._admin):
            if client is not None:
                try:
                    client.close()
                except Exception:  # noqa: BLE001, S110 - closing a broken client
                    pass
        self._admin = self._consumer = None

    def _measure(self) -> dict[str, Any]:
        consumer = self._clients()
        now = now_ms()
        partitions = self._partitions(consumer)
        every = [tp for tps in partitions.values() for tp in tps]
        ends = consumer.end_offsets(every) if every else {}
        topics = {}
        for role in ("ticks", "aggregates", "dead_letters"):
            newest = self._newest_timestamp(partitions[role], ends)
            topics[role] = {
                "topic": self._topics[role],
                "messages_end": sum(ends.get(tp, 0) for tp in partitions[role]),
                "newest_age_s": None if newest is None else max(0.0, (now - newest) / 1000),
            }
        return {
            "checked_at": now,
            "lag": self._lags(ends),
            "dead_letters_last_hour": self._since(partitions["dead_letters"], ends, now - HOUR_MS),
            "topics": topics,
        }

    def _clients(self) -> Any:
        """The admin client and the consumer, made on first use; the consumer."""
        from kafka import KafkaAdminClient, KafkaConsumer

        if self._admin is None:
            self._admin = KafkaAdminClient(
                bootstrap_servers=self._bootstrap, request_timeout_ms=_TIMEOUT_MS
            )
            self._consumer = KafkaConsumer(
                bootstrap_servers=self._bootstrap,
                enable_auto_commit=False,
                request_timeout_ms=_TIMEOUT_MS + 1000,
            )
        return self._consumer

    def _partitions(self, consumer: Any) -> dict[str, list]:
        """Each watched topic's partitions, by role (none for a topic that does not exist)."""
        from kafka import TopicPartition

        partitions = {}
        for role, topic in self._topics.items():
            found = consumer.partitions_for_topic(topic) or set()
            partitions[role] = [TopicPartition(topic, p) for p in sorted(found)]
        return partitions

    def _since(self, tps: list, ends: dict, since_ms: int) -> int:
        """Records written to these partitions since `since_ms`."""
        if not tps:
            return 0
        first = self._consumer.offsets_for_times({tp: since_ms for tp in tps})
        return sum(ends[tp] - first[tp].offset for tp in tps if first.get(tp) is not None)

    def _lags(self, ends: dict) -> list[dict[str, Any]]:
        """Every consumer group's lag on each watched topic it has committed offsets for."""
        watched = {tp.topic for tp in ends}
        lags = []
        for group in sorted(g["group_id"] for g in self._admin.list_groups()):
            offsets = self._admin.list_group_offsets(group).get(group, {})
            per_topic: dict[str, int] = {}
            for tp, meta in offsets.items():
                if tp.topic in watched and tp in ends and meta.offset >= 0:
                    per_topic[tp.topic] = per_topic.get(tp.topic, 0) + ends[tp] - meta.offset
            lags += [
                {"group": group, "stage": _stage(group, self._own_group), "topic": topic,
                 "lag": max(0, lag)}
                for topic, lag in sorted(per_topic.items())
            ]  # fmt: skip
        return lags

    def _newest_timestamp(self, tps: list, ends: dict) -> int | None:
        """The timestamp of the newest record across the partitions (reads one record each)."""
        wanted = [tp for tp in tps if ends.get(tp, 0) > 0]
        if not wanted:
            return None
        consumer = self._consumer
        consumer.assign(wanted)
        for tp in wanted:
            consumer.seek(tp, ends[tp] - 1)
        newest: int | None = None
        pending = set(wanted)
        deadline = time.monotonic() + 2.0
        while pending and time.monotonic() < deadline:
            for tp, records in poll_paced(consumer, 200).items():
                for r in records:
                    newest = r.timestamp if newest is None else max(newest, r.timestamp)
                pending.discard(tp)
        consumer.unsubscribe()
        return newest


def _stage(group: str, own: str) -> str:
    if group == own:
        return "dashboard"
    if "storage" in group:
        return "storage"
    return group
