"""The driver's JIT directives: a file HotSpot can read, passed as one word of the options."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from processor.session import DRIVER_JIT_OPTIONS, JIT_DIRECTIVES, JIT_OPTIONS, _quoted

# HotSpot's method patterns: a class (slashes, a leading or trailing * at most), '.', a method.
_PATTERN = re.compile(r"[A-Za-z0-9_/$]+\*?\.\*")


def _matches(pattern: str, class_name: str) -> bool:
    """Whether a pattern of the file takes in every method of the class."""
    klass = pattern.removesuffix(".*")
    if klass.endswith("*"):
        return class_name.startswith(klass[:-1])
    return class_name == klass


def test_the_directives_exclude_planner_packages_from_c2_only():
    directives = json.loads(JIT_DIRECTIVES.read_text())
    assert len(directives) == 1
    (directive,) = directives
    assert directive["c2"] == {"Exclude": True}
    assert "c1" not in directive  # C1 still compiles them
    assert directive["match"] and all(_PATTERN.fullmatch(m) for m in directive["match"])
    # Never the code every record runs through: rows and their writers stay with C2.
    for per_record in (
        "org/apache/spark/sql/catalyst/expressions/UnsafeRow",
        "org/apache/spark/sql/catalyst/expressions/codegen/UnsafeRowWriter",
        "org/apache/spark/sql/catalyst/expressions/codegen/BufferHolder",
    ):
        assert not any(_matches(m, per_record) for m in directive["match"]), per_record


def test_the_driver_gets_the_thresholds_and_the_directives_file():
    words = shlex.split(DRIVER_JIT_OPTIONS)
    assert words[: len(JIT_OPTIONS.split())] == JIT_OPTIONS.split()
    assert f"-XX:CompilerDirectivesFile={JIT_DIRECTIVES}" in words
    assert "-XX:+UnlockDiagnosticVMOptions" in words


def test_a_path_with_spaces_or_quotes_stays_one_word():
    odd = Path('/opt/my "stock" system/processor/jit-directives.json')
    assert shlex.split(f"-XX:A={_quoted(odd)} -XX:B") == [f"-XX:A={odd}", "-XX:B"]
