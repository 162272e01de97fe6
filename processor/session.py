"""Building a SparkSession with the Kafka connector on its classpath."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

# C2 (HotSpot's optimizing compiler) takes a method after 5,000 calls by default. Spark plans
# every micro-batch again, and its planner's code, run a few thousand times a batch, kept C2
# compiling for minutes: about 600 compilations a batch at rest, most of the JVM's CPU. Ten
# times the thresholds leave that code to C1, while what runs per record reaches C2 within a
# batch. Measured side by side (README, Performance): 12% less CPU at 10 ticks/s, a quarter
# less live at 1,000 ticks/s and no slower on a backlog in make bench-processor; no difference
# the runs could show in the whole pipeline's first minute.
JIT_OPTIONS = (
    "-XX:Tier4InvocationThreshold=50000 -XX:Tier4MinInvocationThreshold=6000 "
    "-XX:Tier4CompileThreshold=150000 -XX:Tier4BackEdgeThreshold=400000"
)
# Even so, the planner's busiest code (tree transforms, the optimizer, the code generator, Janino,
# the closure cleaner's ASM) kept crossing those thresholds for as long as the query ran: at
# rest the JIT still compiled about 1,900 methods a minute nine minutes after the start. The
# directives file keeps those packages out of C2 (C1 compiles them): they plan a batch, and no
# record passes through them. Planning happens in the driver only, so executors (which may not
# have this file) are left as they are. Measured side by side (README, Performance): 13% less
# CPU at 10 ticks/s.
JIT_DIRECTIVES = Path(__file__).with_name("jit-directives.json")


def _quoted(path: Path) -> str:
    """A path as one word of spark.driver.extraJavaOptions (the launcher splits on spaces)."""
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


DRIVER_JIT_OPTIONS = (
    f"{JIT_OPTIONS} -XX:+UnlockDiagnosticVMOptions "
    f"-XX:CompilerDirectivesFile={_quoted(JIT_DIRECTIVES)}"
)


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
        # Use the Kafka source's V1 micro-batch reader (same options, offsets and checkpoints).
        # In 4.1.1 the V2 reader's progress metrics throw a NullPointerException when a batch cut
        # short by a crash is re-run after a restart (KafkaMicroBatchStream.metrics is handed
        # Some(null)), which fails the query on every recovery.
        .config(
            "spark.sql.streaming.disabledV2MicroBatchReaders",
            "org.apache.spark.sql.kafka010.KafkaSourceProvider",
        )
        .config("spark.ui.showConsoleProgress", "false")
        # Read when the JVM starts: pyspark launches the driver's after these are set.
        .config("spark.driver.extraJavaOptions", DRIVER_JIT_OPTIONS)
        .config("spark.executor.extraJavaOptions", JIT_OPTIONS)
        # Window and duplicate state in RocksDB (off the JVM heap, only changed keys written per
        # batch, with changelog checkpointing) rather than the default in-heap maps that are
        # snapshotted whole. Fixed by a query's first run: part of the checkpoint.
        .config(
            "spark.sql.streaming.stateStore.providerClass",
            "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider",
        )
        .config("spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled", "true")
        # Checkpoint files through Hadoop's FileSystem, not FileContext: without Hadoop's native
        # library FileContext's rename runs a `readlink` process per file (about 460 a minute at
        # rest, each forked from the JVM). Checkpoints are on a local disk, where rename is atomic.
        .config(
            "spark.sql.streaming.checkpointFileManagerClass",
            "org.apache.spark.sql.execution.streaming.checkpointing."
            "FileSystemBasedCheckpointFileManager",
        )
    )
    if master.startswith("local"):
        builder = (
            builder.config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            # Python workers run in this interpreter (the project's virtualenv), not whatever
            # `python3` is first on PATH, which may lack the packages or be another version.
            .config("spark.pyspark.python", sys.executable)
        )
    for key, value in (extra_conf or {}).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
