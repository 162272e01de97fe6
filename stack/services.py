"""How each native service is configured and started: config files and java command lines.

The configs are our own minimal ones, for one loopback node or for a cluster whose node n listens
on 127.0.0.n (StackSettings.nodes); the JVM flags follow what the upstream start scripts pass
(kafka-run-class.sh, Cassandra's jvm17-server.options). Each builder takes the settings as one
node sees them (StackSettings.for_node).
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


def instance_name(settings: StackSettings, service: str) -> str:
    """`kafka` on a one-node stack, `kafka-2` for node 2 of a cluster (its directory, pid, log)."""
    return service if settings.nodes == 1 else f"{service}-{settings.node}"


def parse_instance(name: str) -> tuple[str, int]:
    """(service, node) of an instance name; ValueError when it names none."""
    service, _, node = name.partition("-")
    if service not in SERVICES or (node and not node.isdigit()):
        raise ValueError(f"{name!r} is not a service: use one of {', '.join(SERVICES)}")
    return service, int(node or 1)


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


def _zookeeper_ensemble(settings: StackSettings, data: Path) -> str:
    """An ensemble's part of the config: every server, and this one's id (data/myid)."""
    if settings.nodes == 1:
        return ""
    (data / "myid").write_text(f"{settings.node}\n")
    peers, election = settings.zookeeper_peer_port, settings.zookeeper_election_port
    servers = "".join(
        f"server.{n}={settings.node_host(n)}:{peers}:{election}\n" for n in settings.node_ids
    )
    # In a container the own entry's name may resolve before Docker's DNS knows the others;
    # bind the quorum ports everywhere rather than on whatever that name resolved to.
    everywhere = "quorumListenOnAllIPs=true\n" if settings.bind_host else ""
    return "initLimit=10\nsyncLimit=5\n" + everywhere + servers


def zookeeper(settings: StackSettings, jars: list[Path]) -> LaunchSpec:
    name = instance_name(settings, ZOOKEEPER)
    home = service_dir(settings, name)
    (home / "data").mkdir(parents=True, exist_ok=True)
    conf = home / "zookeeper.properties"
    conf.write_text(
        f"dataDir={home / 'data'}\n"
        f"clientPort={settings.zookeeper_port}\n"
        f"clientPortAddress={settings.listen_host}\n"
        "tickTime=2000\n"
        "maxClientCnxns=0\n"
        "admin.enableServer=false\n"
        "4lw.commands.whitelist=ruok,srvr,dump\n" + _zookeeper_ensemble(settings, home / "data")
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
    return LaunchSpec(name, argv, settings.zookeeper_port, home / f"{name}.log")


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


def _kafka_cluster_config(settings: StackSettings) -> str:
    if settings.nodes == 1:
        return (
            "default.replication.factor=1\n"
            "offsets.topic.replication.factor=1\n"
            "transaction.state.log.replication.factor=1\n"
            "transaction.state.log.min.isr=1\n"
            # One node: a controlled shutdown has nobody to hand leadership to, so skip it.
            "controlled.shutdown.enable=false\n"
        )
    # Every topic, the internal ones too, on every broker (at most 3); a write with acks=all
    # needs 2 in sync, so one broker may die with nothing lost; a replica that was out of sync
    # never becomes leader (it could lack acknowledged records).
    replicas = min(settings.nodes, 3)
    in_sync = 2 if replicas == 3 else 1
    return (
        f"default.replication.factor={replicas}\n"
        f"offsets.topic.replication.factor={replicas}\n"
        f"transaction.state.log.replication.factor={replicas}\n"
        f"min.insync.replicas={in_sync}\n"
        f"transaction.state.log.min.isr={in_sync}\n"
        "unclean.leader.election.enable=false\n"
        "controlled.shutdown.enable=true\n"
        # A broker that dies is noticed when its ZooKeeper session expires; only then does the
        # controller move its partitions' leadership, so its partitions take no tick that long
        # (Kafka's default is 18 s). With 6 s, the ensemble's tickTime (2 s) times 3 and well
        # above a GC pause of these heaps, they took none for 7 s (the cluster fault test).
        "zookeeper.session.timeout.ms=6000\n"
    )


def kafka(settings: StackSettings, jars: list[Path]) -> LaunchSpec:
    name = instance_name(settings, KAFKA)
    home = service_dir(settings, name)
    (home / "data").mkdir(parents=True, exist_ok=True)
    conf = home / "server.properties"
    # process.roles stays unset: that is what puts a 3.9 broker in ZooKeeper mode.
    conf.write_text(
        f"broker.id={settings.node - 1}\n"
        + _kafka_listeners(settings)
        + f"zookeeper.connect={settings.zookeeper_connect}\n"
        "zookeeper.connection.timeout.ms=18000\n"
        f"log.dirs={home / 'data'}\n"
        "num.partitions=1\n"
        "offsets.topic.num.partitions=4\n"
        + _kafka_cluster_config(settings)
        + "group.initial.rebalance.delay.ms=0\n"
        "auto.create.topics.enable=true\n"
        "delete.topic.enable=true\n"
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
    return LaunchSpec(name, argv, settings.kafka_port, home / f"{name}.log")


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
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dio.netty.allocator.useCacheForAllThreads=true",
    "-Dio.netty.allocator.maxOrder=11",
]  # fmt: skip

# What Cassandra's classes need opened on Java 17, the server and its tools (nodetool) alike.
CASSANDRA_MODULE_OPENINGS = [
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


def _cassandra_ring(settings: StackSettings) -> str:
    """Where this node sits in the ring. One token each, spread evenly over Murmur3's range, and
    no bootstrap streaming: a new cluster has no data to stream, so all nodes start at once."""
    if settings.nodes == 1:
        return "initial_token: 0\n"
    span = 2**64 // settings.nodes
    token = -(2**63) + (settings.node - 1) * span
    return f"initial_token: {token}\nauto_bootstrap: false\n"


def _cassandra_jmx(settings: StackSettings) -> list[str]:
    # nodetool's way in (a cluster's `stack status`): on loopback only, one port per node.
    if settings.nodes == 1:
        return []
    return [f"-Dcassandra.jmx.local.port={settings.node_jmx_port}"]


def _unsafe_system(settings: StackSettings) -> bool:
    return settings.cassandra_unsafe_system and settings.nodes == 1


def _cassandra_yaml(settings: StackSettings) -> str:
    # listen_address must be one real address (the seed too); rpc_address may be 0.0.0.0 in a
    # container, and then Cassandra needs the address it tells clients about.
    host = settings.public_host
    rpc = settings.listen_host
    broadcast_rpc = f"broadcast_rpc_address: {host}\n" if rpc == "0.0.0.0" else ""  # noqa: S104
    # Node 1 is every node's seed: gossip starts there.
    seed = settings.public_host if settings.nodes == 1 else settings.node_host(1)
    return (
        "cluster_name: stock-system\n"
        "num_tokens: 1\n"
        + _cassandra_ring(settings)
        + "partitioner: org.apache.cassandra.dht.Murmur3Partitioner\n"
        "endpoint_snitch: SimpleSnitch\n"
        "seed_provider:\n"
        "  - class_name: org.apache.cassandra.locator.SimpleSeedProvider\n"
        "    parameters:\n"
        f'      - seeds: "{seed}:{settings.cassandra_storage_port}"\n'
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


def cassandra(settings: StackSettings, jars: list[Path]) -> LaunchSpec:
    name = instance_name(settings, CASSANDRA)
    home = service_dir(settings, name)
    conf_dir = home / "conf"
    conf_dir.mkdir(parents=True, exist_ok=True)
    (home / "tmp").mkdir(exist_ok=True)
    (conf_dir / "cassandra.yaml").write_text(_cassandra_yaml(settings))
    (conf_dir / "logback.xml").write_text(_LOGBACK)
    jamm = next((j for j in jars if j.name.startswith("jamm-")), None)
    argv = [
        settings.java,
        *_CASSANDRA_SERVER,
        *_CASSANDRA_JVM17,
        *CASSANDRA_MODULE_OPENINGS,
        f"-Xms{settings.cassandra_heap}",
        f"-Xmx{settings.cassandra_heap}",
        *([f"-javaagent:{jamm}"] if jamm else []),
        *_cassandra_jmx(settings),
        f"-Dcassandra.config=file://{conf_dir / 'cassandra.yaml'}",
        f"-Dcassandra.storagedir={home / 'data'}",
        f"-Dcassandra.logdir={home}",
        f"-Dlogback.configurationFile={conf_dir / 'logback.xml'}",
        f"-Djava.io.tmpdir={home / 'tmp'}",
        f"-Djna.tmpdir={home / 'tmp'}",
        "-Dcassandra-foreground=yes",
        "-Dcassandra.skip_wait_for_gossip_to_settle=0",
        "-Dcassandra.superuser_setup_delay_ms=0",
        *(["-Dcassandra.unsafesystem=true"] if _unsafe_system(settings) else []),
        "-cp",
        _classpath(jars, [conf_dir]),
        "org.apache.cassandra.service.CassandraDaemon",
    ]
    return LaunchSpec(name, argv, settings.cassandra_port, home / f"{name}.log")
