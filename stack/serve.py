"""`python -m stack.serve run|probe|create-topics`: one service per container (the compose images).

`run` writes the same configs and builds the same java command lines as the native stack
(stack/services.py), with container settings: listen on every interface, advertise the name other
containers know the service by, keep data under one volume. Then it becomes the JVM (exec), so the
container's stop signal reaches the service itself. The jars are the ones the image build resolved
into STACK_CACHE_DIR; without them it fails rather than fetch anything at start.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from common.logs import configure_logging
from common.settings import (
    LOG_LEVEL,
    EnvArgumentParser,
    add_option,
    host_list,
    port,
    positive_int,
)
from stack import artifacts, readiness, services
from stack.native import BUILDERS, PROBES, StackError
from stack.services import SERVICES
from stack.settings import StackSettings, default_cache_dir

logger = logging.getLogger(__name__)


def build_parser(environ: Mapping[str, str] | None = None) -> EnvArgumentParser:
    parser = EnvArgumentParser(
        prog="python -m stack.serve",
        description="Run one of the stack's services in a container, configured by the same "
        "code as the native stack (python -m stack); check it; create the topics.",
        environ=environ,
    )
    parser.add_env_argument(
        "--run-dir", env="STACK_RUN_DIR", type=Path, default=Path("/data"), help="configs and data"
    )
    parser.add_env_argument(
        "--cache-dir",
        env="STACK_CACHE_DIR",
        type=Path,
        default=default_cache_dir(),
        help="where the image build put the resolved jars",
    )
    parser.add_env_argument(
        "--nodes",
        env="STACK_NODES",
        type=positive_int,
        default=1,
        help="nodes of this service: 1, or a cluster (make up NODES=3)",
    )
    parser.add_env_argument(
        "--node", env="STACK_NODE", type=positive_int, default=1, help="this container's node"
    )
    add_option(parser, LOG_LEVEL, "log_level")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_run(sub, parser._environ)
    _add_probe(sub)
    _add_create_topics(sub)
    return parser


def _add_run(sub: argparse._SubParsersAction, environ: Mapping[str, str]) -> None:
    d = StackSettings()
    serve = sub.add_parser(
        "run",
        help="write one service's config and run it in the foreground (a container's command)",
        environ=environ,
    )
    serve.add_argument("service", choices=SERVICES)
    serve.add_argument(
        "--config-only", action="store_true", help="write the config and print the command"
    )
    add = serve.add_env_argument
    add("--bind-host", env="STACK_BIND_HOST", default="0.0.0.0", help="address to listen on")  # noqa: S104
    add(
        "--advertised-host",
        env="STACK_ADVERTISED_HOST",
        default=None,
        help="name or address other hosts reach this service by (default: this host's address)",
    )
    add(
        "--zookeeper-host",
        env="ZOOKEEPER_HOST",
        default="zookeeper",
        help="ZooKeeper's host, or an ensemble's hosts comma separated",
    )
    add(
        "--node-hosts",
        env="STACK_NODE_HOSTS",
        type=host_list,
        default=(),
        help="with --nodes above 1: every node of this service by name, node 1 first",
    )
    add("--zookeeper-port", env="ZOOKEEPER_PORT", type=port, default=d.zookeeper_port, help="")
    add("--kafka-port", env="KAFKA_PORT", type=port, default=d.kafka_port, help="internal port")
    add(
        "--kafka-external-port",
        env="KAFKA_EXTERNAL_PORT",
        type=port,
        default=None,
        help="a second listener for clients outside the container network",
    )
    add(
        "--kafka-external-advertised",
        env="KAFKA_EXTERNAL_ADVERTISED",
        default=None,
        help="host:port that clients of the external listener are told to use",
    )
    add("--cassandra-port", env="CASSANDRA_PORT", type=port, default=d.cassandra_port, help="")
    add(
        "--cassandra-storage-port",
        env="CASSANDRA_STORAGE_PORT",
        type=port,
        default=d.cassandra_storage_port,
        help="",
    )
    add("--zookeeper-heap", env="ZOOKEEPER_HEAP", default=d.zookeeper_heap, help="JVM heap")
    add("--kafka-heap", env="KAFKA_HEAP", default=d.kafka_heap, help="JVM heap")
    add("--cassandra-heap", env="CASSANDRA_HEAP", default=d.cassandra_heap, help="JVM heap")


# The compose services that answer HTTP, probed with the port they listen on (no default: these
# ports are the stages' settings, which the kafka and cassandra images do not carry).
DASHBOARD, SPARK_MASTER, SPARK_WORKER = "dashboard", "spark-master", "spark-worker"
_HTTP_PROBES = (DASHBOARD, SPARK_MASTER, SPARK_WORKER)


def _add_probe(sub: argparse._SubParsersAction) -> None:
    probe = sub.add_parser(
        "probe",
        help="exit 0 when the service answers its own protocol (a healthcheck)",
        description="spark-worker asks the master at --host:--port whether this host's worker "
        "is alive there; dashboard and the Spark ones need --port.",
    )
    probe.add_argument("service", choices=(*SERVICES, *_HTTP_PROBES))
    probe.add_argument("--host", default="127.0.0.1")
    probe.add_argument("--port", type=port, default=None, help="default: the service's default")


def _add_create_topics(sub: argparse._SubParsersAction) -> None:
    topics = sub.add_parser(
        "create-topics", help="create the pipeline's topics when missing (safe to repeat)"
    )
    topics.add_argument("topics", nargs="+")
    topics.add_argument("--bootstrap-servers", required=True)
    topics.add_argument("--partitions", type=positive_int, default=3)
    topics.add_argument("--timeout", type=positive_int, default=120, help="seconds to keep trying")


def serve_settings(args: argparse.Namespace) -> StackSettings:
    advertised = args.advertised_host or socket.gethostbyname(socket.gethostname())
    hosts = tuple(args.node_hosts)
    if args.nodes > 1 and len(hosts) != args.nodes:
        raise StackError(
            f"--nodes {args.nodes} needs --node-hosts (STACK_NODE_HOSTS) naming {args.nodes} "
            f"hosts, node 1 first; got {len(hosts)}"
        )
    if not 1 <= args.node <= args.nodes:
        raise StackError(f"--node {args.node} is not one of 1..{args.nodes}")
    return StackSettings(
        nodes=args.nodes,
        node=args.node,
        node_hosts=hosts if args.nodes > 1 else (),
        run_dir=args.run_dir.resolve(),
        cache_dir=args.cache_dir.resolve(),
        bind_host=args.bind_host,
        advertised_host=advertised,
        zookeeper_host=args.zookeeper_host,
        zookeeper_port=args.zookeeper_port,
        kafka_port=args.kafka_port,
        kafka_external_port=args.kafka_external_port,
        kafka_external_advertised=args.kafka_external_advertised,
        cassandra_port=args.cassandra_port,
        cassandra_storage_port=args.cassandra_storage_port,
        zookeeper_heap=args.zookeeper_heap,
        kafka_heap=args.kafka_heap,
        cassandra_heap=args.cassandra_heap,
        # The compose volumes hold users' data: keep Cassandra's system tables durable.
        cassandra_unsafe_system=False,
    )


def serve(args: argparse.Namespace) -> int:
    settings = serve_settings(args)
    bundle, build = BUILDERS[args.service]
    if not artifacts.is_resolved(settings.cache_dir, bundle):
        raise StackError(
            f"the {bundle.name} jars are not in {settings.cache_dir} (the image build puts them "
            "there); nothing is fetched at start"
        )
    spec = build(settings, artifacts.resolve(settings.cache_dir, bundle))
    if args.config_only:
        print(" ".join(spec.argv))
        return 0
    logger.info("starting %s: config under %s", args.service, services.service_dir(settings, ""))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp(spec.argv[0], spec.argv)  # noqa: S606 - argv built by stack.services


def probe(args: argparse.Namespace) -> int:
    if args.service in _HTTP_PROBES:
        return 0 if _http_probe(args.service, args.host, args.port) else 1
    # In a cluster a node is ready once it is part of it (a ZooKeeper server with a mode, a
    # broker its cluster lists); each probe asks this container's own address.
    settings = StackSettings(
        host=args.host, nodes=args.nodes, node=args.node, node_hosts=(args.host,) * args.nodes
    )
    if args.port is not None:
        settings = replace(settings, **{f"{args.service}_port": args.port})
    return 0 if PROBES[args.service](settings) else 1


def _http_probe(service: str, host: str, http_port: int | None) -> bool:
    if http_port is None:
        raise StackError(f"probe {service} needs --port (the port its HTTP server listens on)")
    if service == DASHBOARD:
        return readiness.dashboard_ready(host, http_port)
    if service == SPARK_MASTER:
        return readiness.spark_master_ready(host, http_port)
    # A worker registers with the address it was started with (`--host $(hostname -i)`).
    me = socket.gethostbyname(socket.gethostname())
    return readiness.spark_worker_registered(host, http_port, me)


def create_topics(args: argparse.Namespace) -> int:
    import time

    from common.topics import ensure_topics

    deadline = time.monotonic() + args.timeout
    while True:
        try:
            created = ensure_topics(args.bootstrap_servers, args.topics, args.partitions)
            print(f"topics ready: {', '.join(args.topics)} (created: {', '.join(created) or '-'})")
            return 0
        except Exception as e:  # noqa: BLE001 - the broker may still be electing; retry until the deadline
            if time.monotonic() > deadline:
                print(f"stack create-topics: {e}", file=sys.stderr)
                return 1
            logger.warning("topics not created yet (%s); retrying", e)
            time.sleep(2)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        if args.command == "run":
            return serve(args)
        if args.command == "probe":
            return probe(args)
        return create_topics(args)
    except (StackError, artifacts.ResolveError) as e:
        print(f"stack.serve: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
