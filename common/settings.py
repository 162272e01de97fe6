"""Flags and environment variables as one thing.

Every option has an environment twin that ``--help`` shows, so one CLI serves a terminal,
``make local`` and compose. The environment is read once, when the parser is built by an entry
point; nothing below the entry points reads ``os.environ``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from common.contract import (
    AGGREGATES_TOPIC,
    BARS_TOPIC,
    DEAD_LETTER_TOPIC,
    MAX_WINDOW_MS,
    TICKS_TOPIC,
)
from common.cql import CONSISTENCY_LEVELS, DEFAULT_CONSISTENCY


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except where there is none to show (None, or a boolean switch)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or isinstance(action.default, bool):
            return action.help
        return super()._get_help_string(action)


class EnvArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose options fall back to environment variables."""

    def __init__(self, *args: Any, environ: Mapping[str, str] | None = None, **kwargs: Any):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)
        self._environ = os.environ if environ is None else environ

    def add_env_argument(
        self,
        *flags: str,
        env: str,
        default: Any = None,
        type: Callable[[str], Any] | None = None,  # noqa: A002 - mirrors argparse
        help: str = "",  # noqa: A002
        **kwargs: Any,
    ) -> argparse.Action:
        value = self._environ.get(env)
        if value is not None and value != "":
            # Checked now, with the flag's own check, so that the error names the variable
            # the user has to fix rather than a flag they never typed.
            self._check_env(env, value, type, kwargs.get("choices"))
            default = value
        return self.add_argument(
            *flags, default=default, type=type, help=f"{help} [env: {env}]", **kwargs
        )

    def _check_env(
        self, env: str, value: str, check: Callable[[str], Any] | None, choices: Any
    ) -> None:
        try:
            parsed = check(value) if check else value
        except (argparse.ArgumentTypeError, ValueError, TypeError) as e:
            detail = str(e) if isinstance(e, argparse.ArgumentTypeError) else "not a valid value"
            self.env_error(env, value, detail)
        if choices is not None and parsed not in choices:
            self.env_error(env, value, f"use one of {', '.join(map(str, choices))}")

    def env_error(self, env: str, value: str, detail: str) -> NoReturn:
        """One line naming the variable, exit 2 (as argparse does for a bad flag)."""
        self.exit(2, f"{self.prog}: error: environment variable {env}={value!r}: {detail}\n")

    def add_env_flag(self, *flags: str, env: str, help: str = "") -> argparse.Action:  # noqa: A002
        value = self._environ.get(env, "").strip().lower()
        if value not in ("", "0", "1", "true", "false", "yes", "no", "on", "off"):
            self.env_error(env, value, "not a boolean (use true or false)")
        default = value in ("1", "true", "yes", "on")
        return self.add_argument(
            *flags,
            action=argparse.BooleanOptionalAction,
            default=default,
            help=f"{help} [env: {env}]",
        )


def positive_int(text: str) -> int:
    value = _whole(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a whole number above 0, got {text}")
    return value


def port(text: str) -> int:
    value = _whole(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 1 to 65535, got {text}")
    return value


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None


def non_negative_int(text: str) -> int:
    value = _whole(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number of 0 or more, got {text}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number above 0, got {text}")
    return value


def duration_ms(text: str) -> int:
    """'500ms', '10s', '1m', '2h', '1d' or a bare number of seconds, as milliseconds."""
    units = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
    text = text.strip().lower()
    for suffix in ("ms", "s", "m", "h", "d"):
        if text.endswith(suffix) and text[: -len(suffix)].replace(".", "", 1).isdigit():
            value = float(text[: -len(suffix)]) * units[suffix]
            break
    else:
        if not text.replace(".", "", 1).isdigit():
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a duration: use e.g. 500ms, 10s, 1m, 2h or 1d"
            )
        value = float(text) * 1000
    if value <= 0:
        raise argparse.ArgumentTypeError(f"duration must be above 0, got {text!r}")
    return int(value)


def format_duration(ms: int) -> str:
    for suffix, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{suffix}"
    return f"{ms}ms"


def host_list(text: str) -> list[str]:
    hosts = [h.strip() for h in text.split(",") if h.strip()]
    if not hosts:
        raise argparse.ArgumentTypeError("give at least one host")
    return hosts


def servers(text: str) -> str:
    """host:port[,host:port]: Kafka's bootstrap list, checked before any client sees it."""
    for item in text.split(","):
        host, sep, port_text = item.strip().rpartition(":")
        if not sep or not host or not re.fullmatch(r"[A-Za-z0-9._\-\[\]:]+", host):
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a server list: use host:port[,host:port] (e.g. 127.0.0.1:9092)"
            )
        port(port_text)
    return text.strip()


def path_value(text: str) -> Path:
    """A file or folder path: not blank, no NUL byte, of a length file systems take."""
    if not text.strip() or "\0" in text or len(text) > 4096:
        raise argparse.ArgumentTypeError(f"{text[:60]!r} is not a usable path")
    return Path(text)


def topic_name(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9._\-]{1,249}", text) or text in (".", ".."):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a Kafka topic name: use 1 to 249 letters, digits, '.', '_' or '-'"
        )
    return text


def log_level(text: str) -> str:
    level = text.strip().upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a log level: use DEBUG, INFO or WARNING")
    return level


class Secret:
    """A value that never shows itself in logs, reprs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def one_of(names: tuple[str, ...]):
    def check(text: str) -> str:
        value = text.strip().lower()
        if value not in names:
            raise argparse.ArgumentTypeError(f"{text!r} is not one of: {', '.join(names)}")
        return value

    check.__name__ = "choice"
    return check


def capped(check: Callable[[str], int], limit: int, message: str) -> Callable[[str], int]:
    """`check`, then a bound: a value over `limit` is refused with `message` (a format string
    of `text`, the value as given)."""

    def bounded(text: str) -> int:
        value = check(text)
        if value > limit:
            raise argparse.ArgumentTypeError(message.format(text=text))
        return value

    bounded.__name__ = getattr(check, "__name__", "bounded")
    return bounded


# --- Settings declared once --------------------------------------------------------------------
# A stage's settings are a frozen dataclass whose fields are declared with `option()`: the flag,
# its environment twin, the default (as text, checked like a flag value), the help and the check
# live together, and the parser and the object are both made from that one declaration.


@dataclasses.dataclass(frozen=True)
class Option:
    flag: str
    env: str
    default: str | None
    help: str
    check: Callable[[str], Any] = str
    choices: tuple[str, ...] | None = None
    boolean: bool = False

    def parsed_default(self) -> Any:
        if self.boolean:
            return False
        return None if self.default is None else self.check(self.default)

    def field(self) -> Any:
        """A dataclass field with this option's default, as the flag would give it."""
        return dataclasses.field(default=self.parsed_default(), metadata={"option": self})


def option(
    flag: str,
    env: str,
    default: str | None,
    help: str,  # noqa: A002 - mirrors argparse
    check: Callable[[str], Any] = str,
    choices: tuple[str, ...] | None = None,
) -> Any:
    return Option(flag, env, default, help, check, choices).field()


def switch(flag: str, env: str, help: str) -> Any:  # noqa: A002
    """An on/off option: --flag / --no-flag, off by default, env true/false."""
    return Option(flag, env, None, help, boolean=True).field()


def options_of(cls: type) -> list[tuple[str, Option]]:
    return [
        (f.name, f.metadata["option"]) for f in dataclasses.fields(cls) if "option" in f.metadata
    ]


def add_options(parser: EnvArgumentParser, cls: type) -> None:
    """Every option a settings class declares, in declaration order."""
    for name, opt in options_of(cls):
        add_option(parser, opt, name)


def add_option(parser: EnvArgumentParser, opt: Option, dest: str) -> None:
    """One declared option on a parser, for a tool that has no settings class (stack)."""
    if opt.boolean:
        parser.add_env_flag(opt.flag, env=opt.env, help=opt.help).dest = dest
        return
    parser.add_env_argument(
        opt.flag,
        env=opt.env,
        default=opt.default,
        type=opt.check,
        choices=opt.choices,
        help=opt.help,
        dest=dest,
        metavar=opt.flag.lstrip("-").upper().replace("-", "_"),
    )


S = TypeVar("S")


def settings_from(cls: type[S], args: argparse.Namespace, **extra: Any) -> S:
    """The settings object from parsed arguments: one value per declared option."""
    values = {name: getattr(args, name) for name, _ in options_of(cls)}
    return cls(**values, **extra)


def parse_settings(
    cls: type[S], parser: EnvArgumentParser, argv: list[str] | None = None
) -> tuple[S, argparse.Namespace]:
    args = parser.parse_args(argv)
    try:
        return settings_from(cls, args), args
    except ValueError as e:
        # A combination of options that cannot work together: say so like argparse would.
        parser.error(str(e))


def text(value: str) -> str:
    value = value.strip()
    if not value:
        raise argparse.ArgumentTypeError("must not be empty")
    return value


def tuple_of(check: Callable[[str], Any]) -> Callable[[str], tuple]:
    """A comma-separated list, each item checked; a tuple so that settings stay frozen."""

    def parse(value: str) -> tuple:
        return tuple(check(v) for v in host_list(value))

    return parse


def coordinator(text: str) -> str | None:
    """ZooKeeper's host:port list, or none (also empty): run alone."""
    if text.strip().lower() in ("", "none"):
        return None
    return servers(text)


def zk_path(text: str) -> str:
    if not re.fullmatch(r"(/[A-Za-z0-9._-]+)+", text.strip()):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a ZooKeeper path: use /name[/name...] (letters, digits, . _ -)"
        )
    return text.strip()


# The options every stage shares, declared once.
BOOTSTRAP_SERVERS = Option(
    "--bootstrap-servers",
    "KAFKA_BOOTSTRAP_SERVERS",
    "127.0.0.1:9092",
    "Kafka brokers, host:port[,host:port]",
    servers,
)
TICKS_TOPIC_OPTION = Option(
    "--ticks-topic", "TICKS_TOPIC", TICKS_TOPIC, "topic of raw ticks, keyed by symbol", topic_name
)
AGGREGATES_TOPIC_OPTION = Option(
    "--aggregates-topic",
    "AGGREGATES_TOPIC",
    AGGREGATES_TOPIC,
    "topic of windowed aggregates, keyed by symbol",
    topic_name,
)
BARS_TOPIC_OPTION = Option(
    "--bars-topic",
    "BARS_TOPIC",
    BARS_TOPIC,
    "topic of the sources' history bars (backfill), keyed by symbol",
    topic_name,
)
DEAD_LETTER_TOPIC_OPTION = Option(
    "--dead-letter-topic",
    "DEAD_LETTER_TOPIC",
    DEAD_LETTER_TOPIC,
    "topic of refused input, with the reason",
    topic_name,
)
LOG_LEVEL = Option("--log-level", "LOG_LEVEL", "INFO", "logging level", log_level)
COORDINATOR = Option(
    "--coordinator",
    "ZOOKEEPER_HOSTS",
    "none",
    "ZooKeeper (host:port[,host:port]) of the fleet of producers that share the symbols out, "
    "each fetched by one member; none: a producer runs alone with every symbol",
    coordinator,
)
FLEET_CHROOT = Option(
    "--fleet-chroot", "FLEET_CHROOT", "/stock-system", "the fleet's ZooKeeper path", zk_path
)
READY_FILE = Option(
    "--ready-file",
    "READY_FILE",
    None,
    "a file the stage creates once it is running (consuming; its queries started) and removes "
    "when it stops: what a supervisor waits on (common.ready)",
    path_value,
)


def window_list(text: str) -> tuple[int, ...]:
    """'10s,1m,5m' as ascending milliseconds; duplicates are refused rather than merged."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise argparse.ArgumentTypeError("give at least one window size, e.g. 1m or 10s,1m,5m")
    sizes = [duration_ms(p) for p in parts]
    too_long = [p for p, size in zip(parts, sizes, strict=True) if size > MAX_WINDOW_MS]
    if too_long:
        raise argparse.ArgumentTypeError(
            f"{', '.join(too_long)}: a window is at most a day (an aggregate's window_ms is)"
        )
    if len(set(sizes)) != len(sizes):
        raise argparse.ArgumentTypeError(f"{text!r} lists a window size twice")
    return tuple(sorted(sizes))


# The price sources the producer has (producer/sources builds each): named here so that what
# starts the producer (stack local) checks a source name without importing the producer.
PRICE_SOURCES = ("simulated", "yahoo", "stooq", "finnhub", "replay")


# The window sizes the processor computes and the dashboard offers: declared once, here, so that
# the two agree and every way of starting them (make local, make up) gets the same default.
WINDOWS = Option(
    "--windows",
    "WINDOWS",
    "10s,1m",
    "tumbling window sizes, comma separated, each at most a day (e.g. 10s,1m,5m)",
    window_list,
)

# Keyspace names cannot be bind markers: this check is what makes formatting them into CQL safe.
KEYSPACE_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


def keyspace_name(value: str) -> str:
    if not KEYSPACE_PATTERN.match(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a usable keyspace name: use a lower-case letter followed by up to "
            "47 lower-case letters, digits or _ (e.g. stocks)"
        )
    return value


CASSANDRA_HOSTS = Option(
    "--cassandra-hosts",
    "CASSANDRA_HOSTS",
    "127.0.0.1",
    "Cassandra contact points, comma separated",
    tuple_of(text),
)
CASSANDRA_PORT = Option(
    "--cassandra-port", "CASSANDRA_PORT", "9042", "Cassandra native-protocol port", port
)
CASSANDRA_CONSISTENCY = Option(
    "--cassandra-consistency",
    "CASSANDRA_CONSISTENCY",
    DEFAULT_CONSISTENCY,
    "consistency level of every write and read (local_quorum: the one replica at replication "
    "factor 1, 2 of 3 at factor 3, so a node may be down)",
    one_of(CONSISTENCY_LEVELS),
)
CASSANDRA_KEYSPACE = Option(
    "--cassandra-keyspace",
    "CASSANDRA_KEYSPACE",
    "stocks",
    "keyspace holding ticks, aggregates and latest_prices",
    keyspace_name,
)


def fail(prog: str, message: str, code: int = 1) -> NoReturn:
    """A one-line error for the user and an exit code: no traceback for an expected failure."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    raise SystemExit(code)
