"""Building a SparkSession with the Kafka connector on its classpath."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def build_session(
    master: str,
    jars: Iterable[Path],
    app_name: str = "stock-system-processor",
    shuffle_partitions: int = 2,
    ui: bool = False,
    extra_conf: dict[str, str] | None = None,
):  # -> pyspark.sql.SparkSession (imported lazily: starting a JVM is the caller's choice)
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master(master)
        .appName(app_name)
        # Must be set before the JVM starts; explicit local jars avoid Ivy and the network.
        .config("spark.jars", ",".join(str(j) for j in jars))
        # The default of 200 shuffle partitions makes every micro-batch slow on a few cores.
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.default.parallelism", str(shuffle_partitions))
        .config("spark.ui.enabled", "true" if ui else "false")
        .config("spark.sql.session.timeZone", "UTC")
    )
    if master.startswith("local"):
        builder = builder.config("spark.driver.host", "127.0.0.1").config(
            "spark.driver.bindAddress", "127.0.0.1"
        )
    for key, value in (extra_conf or {}).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
