"""The processor stage: Spark Structured Streaming aggregates of ticks per symbol and window."""
