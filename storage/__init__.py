"""The storage stage: ticks and aggregates from Kafka into Cassandra, and queries on them."""
