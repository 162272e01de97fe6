"""Every option of every stage, given a bad value through its environment twin, stops the stage
at start with one line that names the variable (exit 2), never a traceback.

The options are read from each parser's own --help ("[env: NAME]"), so an option added later is
covered without touching this test.
"""

from __future__ import annotations

import argparse
import importlib
import re

import pytest

# Each stage's parser builder, by the module that owns it.
PARSERS = {
    "producer": "producer.settings",
    "processor": "processor.settings",
    "storage": "storage.settings",
    "dashboard": "dashboard.settings",
}
# Values no option should take: blank, negative, not a number, not a name, absurdly long.
CANDIDATES = ("   ", "-5", "maybe", "not a value!", "0", "x" * 5000, "1e999", "::")


def build(module: str, environ: dict[str, str]) -> argparse.ArgumentParser:
    return importlib.import_module(module).build_parser(environ)


def env_names(module: str) -> list[str]:
    text = " ".join(build(module, {}).format_help().split())
    return sorted(set(re.findall(r"\[env: ([A-Z0-9_]+)\]", text)))


def refusal(module: str, name: str, value: str, capsys) -> str | None:
    """The error printed when NAME=value, or None if the value is accepted."""
    try:
        build(module, {name: value}).parse_args([])
    except SystemExit as e:
        assert e.code == 2, (name, value, e.code)
        return capsys.readouterr().err
    capsys.readouterr()
    return None


CASES = [(stage, name) for stage, module in PARSERS.items() for name in env_names(module)]


@pytest.mark.parametrize(("stage", "name"), CASES, ids=[f"{s}:{n}" for s, n in CASES])
def test_a_bad_env_value_is_one_line_naming_the_variable(stage, name, capsys):
    errors = [e for e in (refusal(PARSERS[stage], name, v, capsys) for v in CANDIDATES) if e]
    assert errors, f"{name} accepts every one of {CANDIDATES!r}: it has no check"
    for err in errors:
        assert err.count("\n") == 1, err
        assert f"environment variable {name}=" in err, err


def test_every_stage_has_its_options_covered():
    assert {stage for stage, _ in CASES} == set(PARSERS)
    assert len(CASES) >= 40
