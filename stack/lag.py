"""`make topics`: the topics on a broker, their sizes, and each consumer group's lag."""

from __future__ import annotations


def report(bootstrap_servers: str) -> str:
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=10_000)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers)
    try:
        topics = sorted(t for t in admin.list_topics() if not t.startswith("__"))
        partitions = [
            TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t))
        ]
        ends = consumer.end_offsets(partitions)
        starts = consumer.beginning_offsets(partitions)
        lines = [f"{'topic':<32} {'partitions':>10} {'messages':>12}"]
        for topic in topics:
            tps = [tp for tp in partitions if tp.topic == topic]
            count = sum(ends[tp] - starts[tp] for tp in tps)
            lines.append(f"{topic:<32} {len(tps):>10} {count:>12}")
        groups = sorted(g["group_id"] for g in admin.list_groups())
        lines.append("")
        lines.append(f"{'consumer group':<24} {'topic':<24} {'committed':>12} {'lag':>10}")
        for group in groups:
            offsets = admin.list_group_offsets(group).get(group, {})
            by_topic: dict[str, tuple[int, int]] = {}
            for tp, meta in offsets.items():
                if tp not in ends or meta.offset < 0:
                    continue
                committed, lag = by_topic.get(tp.topic, (0, 0))
                by_topic[tp.topic] = (committed + meta.offset, lag + ends[tp] - meta.offset)
            for topic, (committed, lag) in sorted(by_topic.items()):
                lines.append(f"{group:<24} {topic:<24} {committed:>12} {lag:>10}")
        if not groups:
            lines.append("(no consumer groups yet)")
        return "\n".join(lines)
    finally:
        consumer.close()
        admin.close()
