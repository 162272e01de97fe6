"""Every benchmark keeps its table: one --results-dir option, declared once, and a file a run."""

from __future__ import annotations

import importlib
from dataclasses import is_dataclass

import pytest

from bench.results import RESULTS_DIR, publish, stamp
from common.settings import options_of

# The modules that declare a benchmark's settings (a frozen dataclass of options).
BENCHES = (
    "bench.dashboard",
    "bench.faults.settings",
    "bench.fleet",
    "bench.history",
    "bench.idle",
    "bench.pipeline.settings",
    "bench.processor",
    "bench.producer",
    "bench.storage",
)


def _settings_classes(module):
    """The options of each dataclass the module itself defines."""
    for value in vars(module).values():
        if is_dataclass(value) and isinstance(value, type) and value.__module__ == module.__name__:
            yield value, dict(options_of(value))


@pytest.mark.parametrize("name", BENCHES)
def test_each_benchmark_writes_its_table_where_results_dir_says(name):
    module = importlib.import_module(name)
    found = [opts for _, opts in _settings_classes(module) if "results_dir" in opts]
    assert found, f"{name} has no --results-dir"
    assert all(opts["results_dir"] is RESULTS_DIR for opts in found)


def test_publish_prints_the_table_and_keeps_it(tmp_path, capsys):
    out = publish("| a | b |", tmp_path / "results", f"demo-{stamp()}")
    assert out.read_text() == "| a | b |\n"
    assert out.parent == tmp_path / "results"
    printed = capsys.readouterr().out
    assert "| a | b |" in printed and str(out) in printed
