"""python -m storage [run | init-schema | query ...]: the storage stage's entry point."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from common.contract import now_ms
from common.logs import configure_logging
from common.settings import parse_settings
from storage.settings import StorageSettings, build_parser

# Named for the package: run with -m, this module's __name__ is "__main__".
logger = logging.getLogger("storage.main")


def main(argv: list[str] | None = None) -> int:
    settings, args = parse_settings(StorageSettings, build_parser(), argv)
    configure_logging(settings.log_level)
    command = args.command or "run"
    if command == "query":
        return _query(args, settings)
    if command == "init-schema":
        from cassandra.cluster import NoHostAvailable

        from storage.service import init_schema

        try:
            init_schema(settings)
        except NoHostAvailable:
            where = f"{','.join(settings.cassandra_hosts)}:{settings.cassandra_port}"
            print(f"error: Cassandra is not reachable at {where} (is it running?)", file=sys.stderr)
            return 1
        print(f"schema ready in keyspace {settings.keyspace}")
        return 0
    return _run(settings)


def _run(settings: StorageSettings) -> int:
    from storage.service import serve

    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        logger.info("signal=%s: finishing the batch in flight, then stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    serve(settings, stop)
    return 0


def _query(args: argparse.Namespace, settings: StorageSettings) -> int:
    from common.cql import connect
    from storage.query import QueryError, Reader, build_request, to_json, to_table

    try:
        request = build_request(
            args.target,
            now_ms=now_ms(),
            last_ms=args.last,
            start=args.start,
            end=args.end,
            window_ms=args.window,
            bars=args.bars,
            limit=args.limit,
        )
    except QueryError as e:
        print(f"python -m storage query: error: {e}", file=sys.stderr)
        return 2
    from cassandra import DriverException, InvalidRequest
    from cassandra.cluster import NoHostAvailable

    where = f"{','.join(settings.cassandra_hosts)}:{settings.cassandra_port}"
    try:
        cluster, session = connect(
            settings.cassandra_hosts, settings.cassandra_port, settings.consistency
        )
    except NoHostAvailable:
        print(f"error: Cassandra is not reachable at {where} (is it running?)", file=sys.stderr)
        return 1
    try:
        rows = Reader(session, settings.keyspace).prepare().run(request)
    except InvalidRequest as e:
        print(
            f"error: {e.message} (create the schema with `python -m storage init-schema`)",
            file=sys.stderr,
        )
        return 1
    except (NoHostAvailable, DriverException) as e:
        print(f"error: query failed on {where}: {e}", file=sys.stderr)
        return 1
    finally:
        cluster.shutdown()
    print(to_json(rows) if args.json else to_table(rows, request))
    return 0


if __name__ == "__main__":
    sys.exit(main())
