"""The environment a stage is started with, built in one place for every launcher (`make local`,
the benchmarks, the end-to-end tests).

Each variable must be one that a stage's settings class declares (common.settings.options_of),
and each value is checked as that stage will check it: a misspelt name or a bad value fails here,
in the launcher, rather than as a child process that exits (or silently uses a default) later.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path

from common.settings import Option, options_of
from dashboard.settings import DashboardSettings
from processor.settings import ProcessorSettings
from producer.settings import ProducerSettings
from storage.settings import StorageSettings

REPO = Path(__file__).resolve().parents[1]
Value = str | int | float | Path | Iterable[str | Path] | None


class StageSettingError(ValueError):
    """A variable no stage reads, or a value its stage would refuse."""


@cache
def stage_options() -> dict[str, Option]:
    """Every environment variable a stage reads, with its option."""
    found: dict[str, Option] = {}
    for settings in (ProducerSettings, ProcessorSettings, StorageSettings, DashboardSettings):
        for _, opt in options_of(settings):
            found.setdefault(opt.env, opt)
    return found


def _text(value: str | int | float | Path | Iterable[str | Path]) -> str:
    if isinstance(value, (str, int, float, Path)):
        return str(value)
    return ",".join(str(v) for v in value)


def stage_env(base: Mapping[str, str], **values: Value) -> dict[str, str]:
    """`base` (usually os.environ) with the stages' code importable and each given setting set,
    by its environment name (CASSANDRA_KEYSPACE="..."). None leaves the variable as `base` has
    it, so an unset one falls back to the stage's own default."""
    options = stage_options()
    env = {**base, "PYTHONPATH": str(REPO)}
    for name, value in values.items():
        opt = options.get(name)
        if opt is None:
            raise StageSettingError(f"{name}: no stage reads such a variable")
        if value is None:
            continue
        text = _text(value)
        if not opt.boolean:
            try:
                opt.check(text)
            except (argparse.ArgumentTypeError, ValueError) as e:
                raise StageSettingError(f"{name}={text!r}: {e}") from e
        env[name] = text
    return env
