"""How far each stage has got: ticks produced, processed and stored (Kafka, the checkpoint)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from bench.pipeline.stages import Target

logger = logging.getLogger(__name__)


class Positions:
    def __init__(self, target: Target):
        self.target = target
        self._consumer = KafkaConsumer(
            bootstrap_servers=target.bootstrap_servers, enable_auto_commit=False
        )
        self._admin = KafkaAdminClient(bootstrap_servers=target.bootstrap_servers)
        self._partitions: list[TopicPartition] = []

    def close(self) -> None:
        self._consumer.close()
        self._admin.close()

    def _tps(self) -> list[TopicPartition]:
        if not self._partitions:
            found = self._consumer.partitions_for_topic(self.target.ticks_topic) or ()
            self._partitions = [TopicPartition(self.target.ticks_topic, p) for p in found]
        return self._partitions

    def produced(self) -> int:
        return sum(self._consumer.end_offsets(self._tps()).values())

    def stored(self) -> int:
        """Offsets the storage group committed, which it does only after writing."""
        offsets = self._admin.list_group_offsets({self.target.group: None})
        return sum(
            meta.offset
            for tp, meta in offsets.get(self.target.group, {}).items()
            if tp.topic == self.target.ticks_topic and meta.offset > 0
        )

    def processed(self) -> int:
        """Ticks through the processor's last committed micro-batch (its slowest query's, if it
        runs several).

        Spark logs a batch's offsets before running it (offsets/<id>) and marks it done after
        its output is written (commits/<id>): the newest batch with both is how far a query has
        really got. Every query under the checkpoint directory that reads the ticks topic
        counts, so the bench needs no knowledge of how the processor names or splits them.
        """
        return processed_in(self.target.checkpoint_dir, self.target.ticks_topic)

    def caught_up(self) -> bool:
        """Every tick produced so far has been processed and stored."""
        produced = self.produced()
        return self.processed() >= produced and self.stored() >= produced


def processed_in(checkpoint_dir: Path, topic: str) -> int:
    """The smallest of the committed end offsets of the queries that read `topic`."""
    found = [
        offsets
        for query in _queries(checkpoint_dir)
        if (offsets := _committed(query, topic)) is not None
    ]
    return min(found, default=0)


def _queries(checkpoint_dir: Path) -> list[Path]:
    try:
        return [p for p in checkpoint_dir.iterdir() if (p / "offsets").is_dir()]
    except FileNotFoundError:
        return []


def _committed(query: Path, topic: str) -> int | None:
    """The topic's end offsets in the query's newest committed batch: 0 before the first one,
    None if the query does not read the topic."""
    try:
        done = [int(p.name) for p in (query / "commits").iterdir() if p.name.isdigit()]
    except FileNotFoundError:
        done = []
    if not done:
        return 0
    lines = (query / "offsets" / str(max(done))).read_text().splitlines()
    offsets = json.loads(lines[-1]).get(topic)
    return None if offsets is None else sum(int(v) for v in offsets.values())


def delete_topics(target: Target) -> None:
    """Remove the run's topics from services someone else runs (a refusal is only logged)."""
    admin = KafkaAdminClient(bootstrap_servers=target.bootstrap_servers)
    try:
        admin.delete_topics(target.topics)
    except KafkaError as e:
        logger.warning("could not delete the bench topics: %s", e)
    finally:
        admin.close()
