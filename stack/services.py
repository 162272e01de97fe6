"""How each native service is configured and started: config files and java command lines.

The configs are our own minimal ones for a single loopback node; the JVM flags follow what the
upstream start scripts pass (kafka-run-class.sh, Cassandra's jvm17-server.options).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stack.settings import StackSettings

ZOOKEEPER = "zookeeper"
KAFKA = "kafka"
CASSANDRA = "cassandra"
SERVICES = (ZOOKEEPER, KAFKA, CASSANDRA)


@dataclass(frozen=True)
class LaunchSpec:
    name: str
    argv: list[str]
    port: int
    log_file: Path


def service_dir(settings: StackSettings, name: str) -> Path:
    return settings.run_dir / name


def _classpath(jars: list[Path], extra: list[Path] | None = None) -> str:
    return ":".join(str(p) for p in (extra or []) + jars)


_LOG4J = """\
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
"""

_KAFKA_JVM = [
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:MaxInlineLevel=15",
    "-Djava.awt.headless=true",
]


def zookeeper(settings: StackSettings, jars: list[Path]) -> LaunchSpec:
    home = service_dir(settings, ZOOKEEPER)
    (home / "data").mkdir(parents=True, exist_ok=True)
    conf = home / "zookeeper.properties"
    conf.write_text(
        f"dataDir={home / 'data'}\n"
        f"clientPort={settings.zookeeper_port}\n"
        f"clientPortAddress={settings.listen_host}\n"
        "tickTime=2000\n"
        "maxClientCnxns=0\n"
        "admin.enableServer=false\n"
        "4lw.commands.whitelist=ruok,srvr,dump\n"
    )
    log4j = home / "log4j.properties"
    log4j.write_text(_LOG4J)
    argv = [
        settings.java,
        f"-Xmx{settings.zookeeper_heap}",
        f"-Xms{settings.zookeeper_heap}",
        *_KAFKA_JVM,
        f"-Dlog4j.configuration=file:{log4j}",
        "-cp",
        _classpath(jars),
        "org.apache.zookeeper.server.quorum.QuorumPeerMain",
        str(conf),
    ]
    return LaunchSpec(ZOOKEEPER, argv, settings.zookeeper_port, home / "zookeeper.log")


def _kafka_listeners(settings: StackSettings) -> str:
    port = settings.kafka_port
    if settings.kafka_external_port is None:
        return (
            f"listeners=PLAINTEXT://{settings.listen_host}:{port}\n"
            f"advertised.listeners=PLAINTEXT://{settings.public_host}:{port}\n"
        )
    # Containers and the host reach the broker by different names, so each gets a listener
    # that advertises the name it can resolve; brokers talk over the internal one.
    bind, external = settings.listen_host, settings.kafka_external_port
    advertised = settings.kafka_external_advertised or f"{settings.host}:{external}"
    return (
        f"listeners=INTERNAL://{bind}:{port},EXTERNAL://{bind}:{external}\n"
        f"advertised.listeners=INTERNAL://{settings.public_host}:{port},"
        f"EXTERNAL://{advertised}\n"
        "listener.security.protocol.map=INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT\n"
        "inter.broker.listener.name=INTERNAL\n"
    )


def kafka(settings: StackSettings, jars: list[Path]) -> LaunchSpec:
    home = service_dir(settings, KAFKA)
    (home / "data").mkdir(parents=True, exist_ok=True)
    conf = home / "server.properties"
    # process.roles stays unset: that is what puts a 3.9 broker in ZooKeeper mode.
    conf.write_text(
        "broker.id=0\n"
        + _kafka_listeners(settings)
        + f"zookeeper.connect={settings.zookeeper_connect}\n"
        "zookeeper.connection.timeout.ms=18000\n"
        f"log.dirs={home / 'data'}\n"
        "num.partitions=1\n"
        "default.replication.factor=1\n"
        "offsets.topic.replication.factor=1\n"
        "offsets.topic.num.partitions=4\n"
        "transaction.state.log.replication.factor=1\n"
        "transaction.state.log.min.isr=1\n"
        "group.initial.rebalance.delay.ms=0\n"
        "auto.create.topics.enable=true\n"
        "delete.topic.enable=true\n"
        # One node: a controlled shutdown has nobody to hand leadership to, so skip it.
        "controlled.shutdown.enable=false\n"
        "log.retention.hours=24\n"
    )
    log4j = home / "log4j.properties"
    log4j.write_text(_LOG4J)
    argv = [
        settings.java,
        f"-Xmx{settings.kafka_heap}",
        f"-Xms{settings.kafka_heap}",
        *_KAFKA_JVM,
        f"-Dkafka.logs.dir={home}",
        f"-Dlog4j.configuration=file:{log4j}",
        "-cp",
        _classpath(jars),
        "kafka.Kafka",
        str(conf),
    ]
    return LaunchSpec(KAFKA, argv, settings.kafka_port, home / "kafka.log")


# Cassandra 5.0 on Java 17 needs these module openings (conf/jvm17-server.options).
_CASSANDRA_JVM17 = [
    "-XX:+UseG1GC",
    "-XX:+ParallelRefProcEnabled",
    "-XX:MaxTenuringThreshold=1",
    "-XX:G1HeapRegionSize=16m",
    "-XX:G1RSetUpdatingPauseTimePercent=5",
    "-XX:MaxGCPauseMillis=300",
    "-XX:InitiatingHeapOccupancyPercent=70",
    "-Djdk.attach.allowAttachSelf=true",
    "--add-exports", "java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports", "java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED",
    "--add-exports", "java.management/com.sun.jmx.remote.security=ALL-UNNAMED",
    "--add-exports", "java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports", "java.rmi/sun.rmi.server=ALL-UNNAMED",
    "--add-exports", "java.sql/java.sql=ALL-UNNAMED",
    "--add-exports", "java.base/java.lang.ref=ALL-UNNAMED",
    "--add-exports", "jdk.unsupported/sun.misc=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang.module=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.loader=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.reflect=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.math=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.module=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.util.jar=ALL-UNNAMED",
    "--add-opens", "jdk.management/com.sun.management.internal=ALL-UNNAMED",
    "--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens", "java.base/java.io=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang=ALL-UNNAMED",
    "--add-opens", "java.base/java.util=ALL-UNNAMED",
    "--add-opens", "java.base/java.nio=ALL-UNNAMED",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dio.netty.allocator.useCacheForAllThreads=true",
    "-Dio.netty.allocator.maxOrder=11",
]  # fmt: skip

_CASSANDRA_SERVER = [
    "-ea",
    "-da:net.openhft...",
    "-XX:+UseThreadPriorities",
    "-Xss256k",
    "-XX:+UseTLAB",
    "-XX:+ResizeTLAB",
    "-XX:+PerfDisableSharedMem",
    "-Djava.net.preferIPv4Stack=true",
    "-Dchronicle.analytics.disable=true",
]

_LOGBACK = """\
<configuration>
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="STDOUT"/></root>
</configuration>
"""


def cassandra(settings: StackSettings, jars: list[Path]) -> LaunchSpec:
    home = service_dir(settings, CASSANDRA)
    conf_dir = home / "conf"
    conf_dir.mkdir(parents=True, exist_ok=True)
    (home / "tmp").mkdir(exist_ok=True)
    # listen_address must be one real address (the seed too); rpc_address may be 0.0.0.0 in a
    # container, and then Cassandra needs the address it tells clients about.
    host = settings.public_host
    rpc = settings.listen_host
    broadcast_rpc = f"broadcast_rpc_address: {host}\n" if rpc == "0.0.0.0" else ""  # noqa: S104
    (conf_dir / "cassandra.yaml").write_text(
        "cluster_name: stock-system\n"
        "num_tokens: 1\n"
        "initial_token: 0\n"
        "partitioner: org.apache.cassandra.dht.Murmur3Partitioner\n"
        "endpoint_snitch: SimpleSnitch\n"
        "seed_provider:\n"
        "  - class_name: org.apache.cassandra.locator.SimpleSeedProvider\n"
        "    parameters:\n"
        f'      - seeds: "{host}:{settings.cassandra_storage_port}"\n'
        f"listen_address: {host}\n"
        f"rpc_address: {rpc}\n"
        f"{broadcast_rpc}"
        f"storage_port: {settings.cassandra_storage_port}\n"
        f"native_transport_port: {settings.cassandra_port}\n"
        "start_native_transport: true\n"
        "commitlog_sync: periodic\n"
        "commitlog_sync_period: 10000ms\n"
        "auto_snapshot: false\n"
        "concurrent_reads: 8\n"
        "concurrent_writes: 16\n"
        "concurrent_counter_writes: 8\n"
        # Dropping a test keyspace need not snapshot or wait.
        "snapshot_before_compaction: false\n"
    )
    (conf_dir / "logback.xml").write_text(_LOGBACK)
    jamm = next((j for j in jars if j.name.startswith("jamm-")), None)
    argv = [
        settings.java,
        *_CASSANDRA_SERVER,
        *_CASSANDRA_JVM17,
        f"-Xms{settings.cassandra_heap}",
        f"-Xmx{settings.cassandra_heap}",
        *([f"-javaagent:{jamm}"] if jamm else []),
        f"-Dcassandra.config=file://{conf_dir / 'cassandra.yaml'}",
        f"-Dcassandra.storagedir={home / 'data'}",
        f"-Dcassandra.logdir={home}",
        f"-Dlogback.configurationFile={conf_dir / 'logback.xml'}",
        f"-Djava.io.tmpdir={home / 'tmp'}",
        f"-Djna.tmpdir={home / 'tmp'}",
        "-Dcassandra-foreground=yes",
        "-Dcassandra.skip_wait_for_gossip_to_settle=0",
        "-Dcassandra.superuser_setup_delay_ms=0",
        *(["-Dcassandra.unsafesystem=true"] if settings.cassandra_unsafe_system else []),
        "-cp",
        _classpath(jars, [conf_dir]),
        "org.apache.cassandra.service.CassandraDaemon",
    ]
    return LaunchSpec(CASSANDRA, argv, settings.cassandra_port, home / "cassandra.log")
