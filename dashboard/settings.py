"""The dashboard's settings: one frozen object built from flags and their env twins."""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from dataclasses import dataclass

from common.settings import (
    AGGREGATES_TOPIC_OPTION,
    BOOTSTRAP_SERVERS,
    CASSANDRA_CONSISTENCY,
    CASSANDRA_HOSTS,
    CASSANDRA_KEYSPACE,
    CASSANDRA_PORT,
    COORDINATOR,
    DEAD_LETTER_TOPIC_OPTION,
    FLEET_CHROOT,
    LOG_LEVEL,
    TICKS_TOPIC_OPTION,
    WINDOWS,
    EnvArgumentParser,
    add_options,
    option,
    text,
)
from common.settings import port as port_number

_HOST_PATTERN = re.compile(r"^[A-Za-z0-9._\-:\[\]]{1,253}$")
DEFAULT_PORT = 8050


def listen_host(value: str) -> str:
    value = value.strip()
    if not _HOST_PATTERN.match(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a host to listen on: use an address such as 127.0.0.1 or 0.0.0.0"
        )
    return value


@dataclass(frozen=True)
class DashboardSettings:
    host: str = option(
        "--host",
        "DASHBOARD_HOST",
        "127.0.0.1",
        "address to listen on (0.0.0.0 inside a container; keep 127.0.0.1 on a shared host)",
        listen_host,
    )
    port: int = option("--port", "DASHBOARD_PORT", str(DEFAULT_PORT), "HTTP port", port_number)
    bootstrap_servers: str = BOOTSTRAP_SERVERS.field()
    ticks_topic: str = TICKS_TOPIC_OPTION.field()
    aggregates_topic: str = AGGREGATES_TOPIC_OPTION.field()
    dead_letter_topic: str = DEAD_LETTER_TOPIC_OPTION.field()
    consumer_group: str = option(
        "--consumer-group",
        "DASHBOARD_CONSUMER_GROUP",
        "stock-dashboard",
        "the dashboard's own Kafka consumer group for the live feed (it reads from the end)",
        text,
    )
    cassandra_hosts: tuple[str, ...] = CASSANDRA_HOSTS.field()
    cassandra_port: int = CASSANDRA_PORT.field()
    consistency: str = CASSANDRA_CONSISTENCY.field()
    keyspace: str = CASSANDRA_KEYSPACE.field()
    windows_ms: tuple[int, ...] = WINDOWS.field()
    # The producers' fleet, shown in the health panel (none: no fleet panel).
    coordinator: str | None = COORDINATOR.field()
    fleet_chroot: str = FLEET_CHROOT.field()
    log_level: str = LOG_LEVEL.field()

    @property
    def default_window_ms(self) -> int:
        return 60_000 if 60_000 in self.windows_ms else self.windows_ms[0]

    @property
    def url(self) -> str:
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host  # noqa: S104
        return f"http://{shown}:{self.port}/"


def build_parser(environ: Mapping[str, str] | None = None) -> EnvArgumentParser:
    parser = EnvArgumentParser(
        prog="python -m dashboard",
        description="Serve the live dashboard: a page with every symbol's latest price, "
        "candlestick charts and pipeline health, and its JSON API (/api/latest, /api/bars, "
        "/api/ticks, /api/health, /api/live).",
        environ=environ,
    )
    add_options(parser, DashboardSettings)
    return parser
