"""Entry point of the processor: `python -m processor` or `spark-submit processor/job.py`.

Parses the settings, starts Spark and the query, logs its progress, and on SIGTERM or
SIGINT stops them between micro-batches; the checkpoints hold everything needed to resume.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
import time
import zipfile
from collections import deque
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # spark-submit runs this file as a script: make the repository's packages importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import logging  # noqa: E402

from common.contract import short  # noqa: E402
from common.logs import configure_logging  # noqa: E402
from common.ready import ready  # noqa: E402
from common.settings import fail  # noqa: E402
from common.topics import TopicTooSmall, check_dead_letters_fit, ensure_topics  # noqa: E402
from processor.progress import ProgressTracker  # noqa: E402
from processor.settings import JARS_HINT, ProcessorSettings, parse_settings  # noqa: E402

logger = logging.getLogger("processor.job")

_REPO = Path(__file__).resolve().parent.parent
_POLL_S = 1.0
# A query that keeps failing is not restarted forever: the process exits and says why.
_MAX_RESTARTS = 3
_RESTART_WINDOW_S = 600.0
# Kafka's answers that the same batch will get again however often it is re-run: the query is
# not restarted on them (it would fail on the same records again), the process exits and says
# what to change. Nothing a record holds can cause them (dead letters are bounded: see
# common.contract.DEAD_LETTER_MAX_BYTES); settings can (a topic's max.message.bytes, its ACLs).
PERMANENT_KAFKA_ERRORS = (
    "RecordTooLargeException",
    "RecordBatchTooLargeException",
    "InvalidRecordException",
    "InvalidTopicException",
    "PolicyViolationException",
    "TopicAuthorizationException",
)


class QueryFailed(RuntimeError):
    """A query failed again and again; restarting the process is the next step."""


class PermanentFailure(RuntimeError):
    """The query failed in a way a restart on the same input cannot cure; says what to change."""


class JarsMissing(RuntimeError):
    """The Spark Kafka connector jars were not given, or cannot be read."""


class Processor:
    """The running job: construct with a session and settings, then run() until stopped."""

    def __init__(self, spark, settings: ProcessorSettings):
        self.spark = spark
        self.settings = settings
        self.tracker = ProgressTracker()
        self._stop = threading.Event()
        self._query: Any = None  # the running query, replaced by each restart

    def request_stop(self, *_: object) -> None:
        self._stop.set()

    def run(self) -> None:
        settings = self.settings
        topics = [settings.ticks_topic, settings.aggregates_topic, settings.dead_letter_topic]
        ensure_topics(settings.bootstrap_servers, topics)
        check_dead_letters_fit(settings.bootstrap_servers, settings.dead_letter_topic)
        self._query = self._start()
        try:
            with ready(settings.ready_file):
                self._supervise()
        finally:
            query = self._query
            if query.isActive:
                query.stop()
            self.tracker.poll([query])
            for name, totals in self.tracker.totals.items():
                logger.info(
                    "query=%s stopped batches=%d input_rows=%d late_dropped=%d dead_letters=%d",
                    name,
                    totals.batches,
                    totals.input_rows,
                    totals.late_dropped,
                    totals.dead_letters,
                )

    def _supervise(self) -> None:
        """Watch the query until a stop is asked for, restarting it (self._query) on a failure
        a restart can cure; raise on one it cannot."""
        failures: deque[float] = deque()
        while not self._stop.wait(_POLL_S):
            query = self._query
            self.tracker.poll([query])
            if query.isActive:
                continue
            error = query.exception()
            permanent = _permanent_cause(error)
            if permanent:
                raise PermanentFailure(
                    f"query {query.name} failed with {permanent}, which a restart on the same "
                    f"records would meet again; not restarting. Check the topics' settings "
                    f"(max.message.bytes, ACLs); the checkpoint resumes once they are fixed: "
                    f"{short(str(error).splitlines()[0] if error else '', 600)}"
                )
            now = time.monotonic()
            while failures and now - failures[0] > _RESTART_WINDOW_S:
                failures.popleft()
            if len(failures) >= _MAX_RESTARTS:
                raise QueryFailed(
                    f"query {query.name} failed {len(failures) + 1} times within "
                    f"{_RESTART_WINDOW_S:.0f}s, last with: {error}"
                )
            failures.append(now)
            # Restarting from the checkpoint loses nothing: the failed batch is re-run from
            # the offsets it logged, against the state it started from. (What the topic holds
            # cannot fail a batch: every record is a tick or a dead letter.)
            logger.error(
                "query=%s failed; restarting it from its checkpoint "
                "(restart %d of at most %d in %.0fs): %s",
                query.name,
                len(failures),
                _MAX_RESTARTS,
                _RESTART_WINDOW_S,
                str(error).splitlines()[0] if error else "stopped without an error",
            )
            self._query = self._start()

    def _start(self):
        from processor import queries

        return queries.start(
            self.spark, self.settings, queries.Trigger(self.settings.trigger_interval_ms)
        )


def _permanent_cause(error: object) -> str | None:
    """The name of a permanent Kafka error in a query's failure, if it holds one."""
    text = str(error) if error is not None else ""
    return next((name for name in PERMANENT_KAFKA_ERRORS if name in text), None)


def resolve_jars(settings: ProcessorSettings, under_submit: bool) -> list[Path]:
    """The connector jars to put on the classpath; JarsMissing says what to do when absent."""
    if settings.spark_jars is None:
        if under_submit:
            return []  # spark-submit --jars (or --packages) already put the connector on the path
        raise JarsMissing(f"--spark-jars (SPARK_JARS) is not set: {JARS_HINT}")
    unreadable = [
        str(j) for j in settings.spark_jars if not os.access(j, os.R_OK) or not j.is_file()
    ]
    if unreadable:
        raise JarsMissing(
            f"--spark-jars (SPARK_JARS) names jars that are missing or unreadable: "
            f"{', '.join(unreadable)}; {JARS_HINT}"
        )
    return list(settings.spark_jars)


def ship_code(spark, workdir: Path) -> None:
    """Send common/ and processor/ to the executors: on a cluster they have no copy of ours."""
    archive = workdir / "stock_system_code.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for package in ("common", "processor"):
            for path in sorted((_REPO / package).rglob("*.py")):
                zf.write(path, path.relative_to(_REPO))
    spark.sparkContext.addPyFile(str(archive))


def main(argv: list[str] | None = None) -> int:
    settings = parse_settings(argv)
    configure_logging(settings.log_level)
    # spark-submit starts the JVM first and tells Python where it is through this variable.
    under_submit = "PYSPARK_GATEWAY_PORT" in os.environ
    from pyspark.errors import StreamingQueryException

    from processor.queries import CheckpointMismatch
    from processor.session import build_session

    try:
        jars = resolve_jars(settings, under_submit)
    except JarsMissing as e:
        fail("python -m processor", str(e), code=2)
    spark = build_session(
        settings.spark_master,
        jars,
        shuffle_partitions=settings.shuffle_partitions,
        extra_conf={
            "spark.sql.streaming.stopTimeout": "60s",
            # In update mode a batch without new records emits nothing: it would only evict
            # state past the watermark, which the next batch with records does with the same
            # watermark. Each one costs a whole batch (as much CPU as 50 ticks at rest). The
            # tests' available-now runs keep them: their batches model the watermark per call.
            "spark.sql.streaming.noDataMicroBatches.enabled": "false",
        },
    )
    spark.sparkContext.setLogLevel("WARN")
    # Spark warns "Current batch is falling behind" whenever a batch outlasts TRIGGER_INTERVAL,
    # which at rest is every batch (each waits for records, then costs about a second): a
    # warning every few seconds that says nothing. Each batch's progress line has its duration.
    log4j = spark._jvm.org.apache.logging.log4j
    log4j.core.config.Configurator.setLevel(
        "org.apache.spark.sql.execution.streaming.runtime.ProcessingTimeExecutor",
        log4j.Level.ERROR,
    )
    processor = Processor(spark, settings)
    signal.signal(signal.SIGTERM, processor.request_stop)
    signal.signal(signal.SIGINT, processor.request_stop)
    try:
        with tempfile.TemporaryDirectory(prefix="processor-code-") as workdir:
            if not settings.spark_master.startswith("local"):
                ship_code(spark, Path(workdir))
            processor.run()
    except (CheckpointMismatch, TopicTooSmall, PermanentFailure) as e:
        logger.error("%s", e)
        return 2
    except (QueryFailed, StreamingQueryException) as e:
        logger.error("stopping: %s; a restart resumes from the checkpoints", e)
        return 1
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
