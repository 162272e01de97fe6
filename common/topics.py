"""Creating the pipeline's Kafka topics when they are missing (every stage may start first)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

logger = logging.getLogger(__name__)


def ensure_topics(
    bootstrap_servers: str,
    topics: Iterable[str],
    partitions: int = 3,
    replication: int = 1,
    timeout_ms: int = 30_000,
) -> list[str]:
    """Create each topic that does not exist yet; returns the ones created. Safe to repeat."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=timeout_ms)
    try:
        existing = set(admin.list_topics())
        missing = [t for t in dict.fromkeys(topics) if t not in existing]
        created = []
        for topic in missing:
            try:
                admin.create_topics([NewTopic(topic, partitions, replication)])
                created.append(topic)
                logger.info(
                    "created topic=%s partitions=%d replication=%d", topic, partitions, replication
                )
            except TopicAlreadyExistsError:
                pass  # another stage created it in the meantime
        return created
    finally:
        admin.close()
