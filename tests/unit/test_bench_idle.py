"""bench.idle's settings and table: rates including 0 (at rest), totals and CPU per 1,000 ticks
worked out from the measured cores."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bench.idle import IdleSettings, build_parser, rates, report
from common.settings import parse_settings


def test_rates_take_zero_sort_and_drop_repeats():
    assert rates("100,0,10,10") == (0, 10, 100)
    for bad in ("", "-1", "ten"):
        with pytest.raises(argparse.ArgumentTypeError):
            rates(bad)


def test_defaults_measure_rest_and_three_rates():
    idle, _ = parse_settings(IdleSettings, build_parser({}), [])
    assert idle.rates == (0, 10, 100, 1000)
    assert (idle.warm_up_s, idle.measure_s, idle.symbols) == (60.0, 60.0, 3)


def test_the_table_totals_each_rate_and_gives_cpu_per_thousand_ticks():
    idle, _ = parse_settings(IdleSettings, build_parser({}), [])
    results = {
        (0, 0): {"processor": 0.5, "storage": 0.01, "kafka": 0.09},
        (100, 0): {"processor": 0.75, "storage": 0.05, "producer": 0.02, "kafka": 0.1},
    }
    text = report(results, idle, datetime(2026, 12, 5, tzinfo=timezone.utc))
    lines = text.splitlines()
    assert "| processor | 0.500 | 0.750 |" in lines
    assert "| producer | - | 0.020 |" in lines
    assert "| **all** | **0.600** | **0.920** |" in lines
    # 0.92 cores at 100 ticks/s: 9.2 CPU-seconds per 1,000 ticks; none at rest.
    assert "| CPU-s per 1,000 ticks | - | 9.2 |" in lines
    assert "cores" in lines[2]  # the CPU model and core count are part of every table


def test_rounds_are_columns_named_by_when_they_were_measured():
    idle, _ = parse_settings(IdleSettings, build_parser({"IDLE_ROUNDS": "2"}),
                             ["--rates", "10", "--warm-up", "30s", "--measure", "2m"])  # fmt: skip
    results = {(10, 0): {"processor": 0.2}, (10, 1): {"processor": 0.1}}
    lines = report(results, idle, datetime(2026, 12, 7, tzinfo=timezone.utc)).splitlines()
    assert "| process | 10/s, 30-150 s | 10/s, 150-270 s |" in lines
    assert "| processor | 0.200 | 0.100 |" in lines
    # Each round is its own window at the same rate: CPU per 1,000 ticks for each.
    assert "| CPU-s per 1,000 ticks | 20.0 | 10.0 |" in lines
    assert "2 windows back to back" in lines[2]


def test_under_compose_is_named_in_the_table_with_its_spark():
    for argv, spark in (([], "local[*] in the processor"), (["--compose-spark", "cluster"],
                                                             "master and worker")):  # fmt: skip
        idle, _ = parse_settings(IdleSettings, build_parser({}), ["--under", "compose", *argv])
        text = report(
            {(0, 0): {"processor": 0.3}}, idle, datetime(2026, 12, 6, tzinfo=timezone.utc)
        )
        assert "Under compose (make up)" in text and spark in text


def test_where_it_runs_is_checked_like_every_option(capsys):
    idle, _ = parse_settings(IdleSettings, build_parser({"IDLE_UNDER": "Compose"}), [])
    assert idle.under == "compose"
    for argv, environ in ((["--under", "kubernetes"], {}), ([], {"IDLE_COMPOSE_SPARK": "yarn"})):
        with pytest.raises(SystemExit) as exit_:
            parse_settings(IdleSettings, build_parser(environ), argv)
        assert exit_.value.code == 2
    assert "is not one of" in capsys.readouterr().err


def test_the_compose_bench_runs_the_files_make_up_runs():
    from bench.compose_pipeline import ROOT, ComposeError, compose_files

    assert compose_files("local") == ["-f", str(ROOT / "docker-compose.yml")]
    cluster = compose_files("cluster")
    assert cluster[-1] == str(ROOT / "docker-compose.spark-cluster.yml")
    assert all(Path(a).is_file() for a in cluster if a != "-f")
    with pytest.raises(ComposeError, match="SPARK=local"):
        compose_files("bogus")
