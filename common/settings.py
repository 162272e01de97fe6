"""Flags and environment variables as one thing.

Every option has an environment twin that ``--help`` shows, so one CLI serves a terminal,
``make local`` and compose. The environment is read once, when the parser is built by an entry
point; nothing below the entry points reads ``os.environ``.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from common.contract import AGGREGATES_TOPIC, DEAD_LETTER_TOPIC, TICKS_TOPIC


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
        # argparse converts a string default with `type`, so a bad environment value fails
        # exactly like a bad flag, naming the option.
        value = self._environ.get(env)
        if value is not None and value != "":
            default = value
        return self.add_argument(
            *flags, default=default, type=type, help=f"{help} [env: {env}]", **kwargs
        )

    def add_env_flag(self, *flags: str, env: str, help: str = "") -> argparse.Action:  # noqa: A002
        value = self._environ.get(env, "").strip().lower()
        if value not in ("", "0", "1", "true", "false", "yes", "no", "on", "off"):
            self.error(f"{env}={value!r} is not a boolean (use true or false)")
        default = value in ("1", "true", "yes", "on")
        return self.add_argument(
            *flags,
            action=argparse.BooleanOptionalAction,
            default=default,
            help=f"{help} [env: {env}]",
        )


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a whole number above 0, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number of 0 or more, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
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


# The pipeline's topics: flag stem, environment twin, default name, what flows there.
_TOPICS = {
    "ticks": ("TICKS_TOPIC", TICKS_TOPIC, "raw ticks, keyed by symbol"),
    "aggregates": ("AGGREGATES_TOPIC", AGGREGATES_TOPIC, "windowed aggregates, keyed by symbol"),
    "dead-letter": ("DEAD_LETTER_TOPIC", DEAD_LETTER_TOPIC, "refused input, with the reason"),
}


def add_kafka_options(parser: EnvArgumentParser, *topics: str) -> None:
    """--bootstrap-servers and the --<name>-topic options a stage uses, the same in every stage."""
    parser.add_env_argument(
        "--bootstrap-servers",
        env="KAFKA_BOOTSTRAP_SERVERS",
        default="127.0.0.1:9092",
        help="Kafka brokers, host:port[,host:port]",
    )
    for name in topics:
        env, default, what = _TOPICS[name]
        parser.add_env_argument(
            f"--{name}-topic", env=env, type=topic_name, default=default, help=f"topic of {what}"
        )


def add_log_level(parser: EnvArgumentParser) -> None:
    parser.add_env_argument(
        "--log-level", env="LOG_LEVEL", type=log_level, default="INFO", help="logging level"
    )
