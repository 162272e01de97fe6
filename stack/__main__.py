"""python -m stack up | status | down | resolve | env | jars: the native stack by hand."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common.logs import configure_logging
from common.settings import (
    LOG_LEVEL,
    PRICE_SOURCES,
    WINDOWS,
    EnvArgumentParser,
    add_option,
    capped,
    positive_float,
    positive_int,
    window_list,
)
from stack import artifacts, cluster_view, lag
from stack.local import LocalPipeline, LocalSettings
from stack.native import NativeStack, StackError
from stack.services import SERVICES, parse_instance
from stack.settings import StackSettings, default_cache_dir

_PORTS = (
    "zookeeper_port",
    "zookeeper_peer_port",
    "zookeeper_election_port",
    "kafka_port",
    "cassandra_port",
    "cassandra_storage_port",
    "cassandra_jmx_port",
)
_HEAPS = ("zookeeper_heap", "kafka_heap", "cassandra_heap")


_nodes = capped(positive_int, 9, "{text} nodes is too many here: use 1 to 9 (127.0.0.1 to .9)")
_producers = capped(positive_int, 9, "{text} producers is too many here: use 1 to 9")


def _add_service_options(sub: argparse.ArgumentParser) -> None:
    d = StackSettings()
    sub.add_argument(
        "--nodes",
        type=_nodes,
        default=d.nodes,
        help="nodes of each service: 1, or a cluster whose node n listens on 127.0.0.n (3: a "
        "ZooKeeper ensemble, 3 Kafka brokers and a Cassandra ring, every topic and the "
        "keyspace at replication factor 3)",
    )
    for name in _PORTS:
        sub.add_argument(
            "--" + name.replace("_", "-"),
            type=positive_int,
            default=getattr(d, name),
            help=name.replace("_", " "),
        )
    for name in _HEAPS:
        sub.add_argument(
            "--" + name.replace("_", "-"),
            default=getattr(d, name),
            help=f"JVM {name.replace('_', ' ')}",
        )
    sub.add_argument(
        "--timeout",
        type=positive_int,
        default=int(d.start_timeout_s),
        help="seconds each service gets to become ready",
    )


# Options of the stack itself, which users also type after the subcommand.
_GLOBAL_OPTIONS = ("--run-dir", "--cache-dir", "--log-level")


def _service(text: str) -> str:
    try:
        parse_instance(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{e} (or one node of a cluster: kafka-2)") from e
    return text


def _symbols(text: str) -> str:
    from common.contract import ContractError, parse_symbols

    try:
        return ",".join(parse_symbols(text))
    except ContractError as e:
        raise argparse.ArgumentTypeError(str(e)) from e


def _windows(text: str) -> str:
    window_list(text)  # the stages' own check, so that a bad list stops here, not in a child
    return text


def hoist_global_options(argv: list[str]) -> list[str]:
    """`stack up --run-dir X` means `stack --run-dir X up`: move the stack's own options first."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        name = arg.split("=", 1)[0]
        if name in _GLOBAL_OPTIONS and rest:
            takes_value = "=" not in arg and i + 1 < len(argv)
            front.extend(argv[i : i + 1 + takes_value])
            i += 1 + takes_value
            continue
        rest.append(arg)
        i += 1
    return front + rest


def _stack_settings(args: argparse.Namespace) -> StackSettings:
    return StackSettings(
        run_dir=args.run_dir.resolve(),
        cache_dir=args.cache_dir.resolve(),
        start_timeout_s=float(args.timeout),
        nodes=args.nodes,
        **{name: getattr(args, name) for name in _PORTS + _HEAPS},
    )


def build_parser() -> EnvArgumentParser:
    parser = EnvArgumentParser(
        prog="python -m stack",
        description="Run real ZooKeeper, Kafka (ZooKeeper mode) and Cassandra as local JVM "
        "processes on loopback, from jars that Maven fetches once into a cache.",
    )
    parser.add_env_argument(
        "--run-dir",
        env="STACK_RUN_DIR",
        type=Path,
        default=default_cache_dir() / "run",
        help="configs, data, logs and pid files",
    )
    parser.add_env_argument(
        "--cache-dir",
        env="STACK_CACHE_DIR",
        type=Path,
        default=default_cache_dir(),
        help="where resolved jars are kept",
    )
    add_option(parser, LOG_LEVEL, "log_level")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start the services and wait until each answers")
    up.add_argument(
        "services",
        nargs="*",
        type=_service,
        metavar="SERVICE",
        help=f"only these services, of {', '.join(SERVICES)}; none given: all of them",
    )
    _add_service_options(up)

    stop = sub.add_parser("down", help="stop the services (SIGTERM, then SIGKILL)")
    stop.add_argument(
        "services",
        nargs="*",
        type=_service,
        metavar="SERVICE",
        help=f"only these services, of {', '.join(SERVICES)}; none given: all of them",
    )
    status = sub.add_parser("status", help="show each service's pid and whether it answers")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    sub.add_parser("env", help="print shell exports that point clients at the stack")
    topics = sub.add_parser("topics", help="list topics, their sizes and consumer-group lag")
    topics.add_argument("--bootstrap-servers", default=None, help="default: this stack's Kafka")
    _add_local(sub, parser)
    sub.add_parser("resolve", help="fetch every jar into the cache (Kafka, Cassandra, Spark)")
    sub.add_parser("jars", help="print the Spark Kafka connector jars, comma separated")
    return parser


def _add_local(sub: argparse._SubParsersAction, parser: EnvArgumentParser) -> None:
    local = sub.add_parser(
        "local",
        help="run the whole pipeline natively (the stack, then storage, processor, producer)",
        formatter_class=parser.formatter_class,
    )
    env = parser._environ
    local._environ = env
    # No defaults here: a stage given nothing uses its own (the producer's symbols, source and
    # interval; common.settings.WINDOWS), the same as under `make up`.
    local.add_env_argument(
        "--symbols",
        env="SYMBOLS",
        type=_symbols,
        help="symbols to follow (default: the producer's)",
    )
    local.add_env_argument(
        "--source",
        env="PRICE_SOURCE",
        choices=PRICE_SOURCES,
        help="price source (default: the producer's, simulated)",
    )
    local.add_env_argument(
        "--interval",
        env="FETCH_INTERVAL",
        type=positive_float,
        help="seconds between fetches of a polled source (default: the producer's)",
    )
    local.add_env_argument(
        "--producers",
        env="PRODUCERS",
        type=_producers,
        default=1,
        help="producers in the fleet, sharing the symbols through ZooKeeper (1 to 9)",
    )
    local.add_env_argument(
        "--windows",
        env="WINDOWS",
        type=_windows,
        help=f"aggregate window sizes (default: {WINDOWS.default})",
    )
    _add_service_options(local)


def main(argv: list[str] | None = None) -> int:
    argv = hoist_global_options(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        if args.command == "up":
            took = NativeStack(_stack_settings(args)).up(args.services or SERVICES)
            print(f"stack up in {took:.1f}s; point clients at it with: eval $(python -m stack env)")
            return 0
        if args.command == "resolve":
            for name, jars in artifacts.resolve_all(args.cache_dir.resolve()).items():
                print(f"{name}: {len(jars)} jars")
            return 0
        if args.command == "jars":
            print(",".join(str(j) for j in artifacts.spark_kafka_jars(args.cache_dir.resolve())))
            return 0
        if args.command == "local":
            return _run_local(args)
        stack = NativeStack.from_run_dir(args.run_dir.resolve())
        if args.command == "topics":
            print(lag.report(args.bootstrap_servers or stack.settings.bootstrap_servers))
            return 0
        if args.command == "down":
            stack.down(args.services or SERVICES)
            return 0
        if args.command == "env":
            for key, value in stack.env().items():
                print(f"export {key}={value}")
            return 0
        return _status(stack, args.json)
    except (StackError, artifacts.ResolveError) as e:
        print(f"stack: {e}", file=sys.stderr)
        return 1


def _status(stack: NativeStack, as_json: bool) -> int:
    """Each instance, and on a cluster what its own tools say (stack.cluster_view). Exit 0 only
    when every instance answers."""
    status = stack.status()
    healthy = all(st["ready"] for st in status.values())
    view = cluster_view.look(stack.settings) if stack.settings.nodes > 1 else None
    if as_json:
        print(json.dumps({"instances": status, "cluster": view and view.as_dict()}, indent=2))
        return 0 if healthy else 1
    for name, st in status.items():
        state = "healthy" if st["ready"] else ("starting/unhealthy" if st["running"] else "stopped")
        print(
            f"{name:<12} {state:<18} {st['address']}:{st['port']} pid={st['pid'] or '-'}  "
            f"log={st['log']}"
        )
    if view is not None:
        print(cluster_view.render(view))
    return 0 if healthy else 1


def _run_local(args) -> int:
    settings = LocalSettings(
        stack=_stack_settings(args),
        symbols=args.symbols,
        source=args.source,
        interval=args.interval,
        windows=args.windows,
        producers=args.producers,
    )
    return LocalPipeline(settings).run()


if __name__ == "__main__":
    sys.exit(main())
