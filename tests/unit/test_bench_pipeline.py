"""The pipeline benchmark's pure parts: settings, percentiles, rates and checkpoint positions."""

from __future__ import annotations

import importlib
import json
import math
import re
from pathlib import Path

import pytest

from bench.pipeline.measure import Percentiles, Sample, rate_between
from bench.pipeline.positions import processed_in
from bench.pipeline.settings import parse
from bench.pipeline.stages import Stages, Target, producer_env
from producer.settings import parse_settings as producer_settings


def test_settings_parse_rates_durations_and_services() -> None:
    s = parse(
        ["--rates", "5000,500,5000", "--duration", "15s", "--bootstrap-servers", "h:1"],
        environ={"CASSANDRA_HOSTS": "a,b", "BENCH_SYMBOLS": "50"},
    )
    assert s.rates == (500, 5000)
    assert s.duration_s == 15.0
    assert s.symbols == 50
    assert s.attached
    env = s.services_environ({"KAFKA_BOOTSTRAP_SERVERS": "other:2", "PATH": "/bin"})
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "h:1"  # the flag beats its env twin
    assert env["CASSANDRA_HOSTS"] == "a,b"
    assert env["PATH"] == "/bin"


def test_without_services_the_environ_names_none() -> None:
    s = parse([], environ={})
    assert not s.attached
    env = s.services_environ({"CASSANDRA_PORT": "1", "HOME": "/h"})
    assert "CASSANDRA_PORT" not in env and env["HOME"] == "/h"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"BENCH_RATES": "0,-5"}, "BENCH_RATES"),
        ({"BENCH_DURATION": "soon"}, "BENCH_DURATION"),
        ({"KAFKA_BOOTSTRAP_SERVERS": "h:1"}, "set both KAFKA_BOOTSTRAP_SERVERS and CASSANDRA"),
        ({"BENCH_SYMBOLS": "5"}, "--latency-symbols 25 is more than --symbols 5"),
    ],
)
def test_bad_settings_are_one_line_errors(environ, expected, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse([], environ=environ)
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert expected in last


def test_percentiles_count_unwritten_rows_as_infinitely_late() -> None:
    p = Percentiles.of([float(v) for v in range(1, 99)], missing=2)
    assert (p.count, p.missing) == (98, 2)
    assert p.p50 == 50.0
    assert p.p95 == 95.0
    assert math.isinf(p.p99)
    assert math.isnan(Percentiles.of([]).p50)


def test_rate_between_measures_from_move_to_move() -> None:
    # A stage that advances 1,000 ticks every 2 s, sampled each second, moves at 500/s.
    samples = [Sample(t, 0, 1000 * (t // 2), 0) for t in range(11)]
    assert rate_between(samples, "processed", 0, 10) == pytest.approx(500.0)
    assert rate_between(samples, "stored", 0, 10) == 0.0


def _batch(query: Path, batch: int, offsets: dict, committed: bool) -> None:
    (query / "offsets").mkdir(parents=True, exist_ok=True)
    (query / "commits").mkdir(parents=True, exist_ok=True)
    meta = json.dumps({"batchWatermarkMs": 0})
    (query / "offsets" / str(batch)).write_text(f"v1\n{meta}\n{json.dumps(offsets)}\n")
    if committed:
        (query / "commits" / str(batch)).write_text('v1\n{"nextBatchWatermarkMs":0}\n')


def test_processed_is_the_slowest_querys_last_committed_batch(tmp_path: Path) -> None:
    _batch(tmp_path / "fast", 0, {"ticks": {"0": 10, "1": 20}}, committed=True)
    _batch(tmp_path / "fast", 1, {"ticks": {"0": 99, "1": 99}}, committed=False)
    _batch(tmp_path / "other-topic", 0, {"elsewhere": {"0": 5}}, committed=True)
    (tmp_path / "processor-layout.json").write_text("{}")
    # Batch 1 is logged but not committed; a query of another topic does not count.
    assert processed_in(tmp_path, "ticks") == 30
    _batch(tmp_path / "slow", 0, {"ticks": {"0": 4, "1": 3}}, committed=True)
    assert processed_in(tmp_path, "ticks") == 7
    _batch(tmp_path / "starting", 0, {"ticks": {"0": 1}}, committed=False)
    assert processed_in(tmp_path, "ticks") == 0  # a query with no committed batch yet
    assert processed_in(tmp_path / "missing", "ticks") == 0


# Values no benchmark option should take (each option must refuse at least one of them).
_BAD = ("   ", "-5", "maybe", "not a value!", "0", "x" * 5000, "::")
_PARSERS = {"pipeline": "bench.pipeline.settings", "storage": "bench.storage"}


def _env_names(module: str) -> list[str]:
    text = " ".join(importlib.import_module(module).build_parser({}).format_help().split())
    return sorted(set(re.findall(r"\[env: ([A-Z0-9_]+)\]", text)))


_CASES = [(bench, name) for bench, module in _PARSERS.items() for name in _env_names(module)]


@pytest.mark.parametrize(("bench", "name"), _CASES, ids=[f"{b}:{n}" for b, n in _CASES])
def test_every_bench_option_refuses_a_bad_env_value_in_one_line(bench, name, capsys) -> None:
    build = importlib.import_module(_PARSERS[bench]).build_parser
    errors = []
    for value in _BAD:
        try:
            build({name: value}).parse_args([])
        except SystemExit as e:
            assert e.code == 2
            errors.append(capsys.readouterr().err)
    assert errors, f"{name} accepts every one of {_BAD!r}: it has no check"
    for err in errors:
        assert err.count("\n") == 1 and f"environment variable {name}=" in err, err


def test_cpu_per_thousand_ticks_is_each_stages_cpu_over_the_phases_ticks() -> None:
    from bench.pipeline.measure import PhaseResult
    from bench.pipeline.report import table
    from bench.pipeline.settings import parse

    result = PhaseResult(rate=1000, ticks=45_000)
    result.cpu_s = {"producer": 4.5, "processor": 90.0, "storage": 13.5}
    assert result.cpu_per_1000("processor") == 2.0
    assert math.isnan(PhaseResult(rate=10, ticks=100).cpu_per_1000("storage"))
    row = table([result], parse([], {})).splitlines()[-1]
    assert "| 0.10 / 2.00 / 0.30 |" in row


def test_the_benchmarks_producer_publishes_ticks_and_no_history() -> None:
    env = producer_env(["AAPL", "MSFT"], 1000, 60_000)
    settings = producer_settings([], env)
    assert settings.symbols == ("AAPL", "MSFT")
    assert settings.sim_rate == 1000 and settings.max_ticks == 60_000
    # A backfill would put each symbol's history through the pipeline beside the ticks.
    assert settings.backfill_range_ms == 0 and settings.backfill_daily_range_ms == 0


def test_ticks_left_under_a_batchs_minimum_wait_by_design_not_behind() -> None:
    from bench.pipeline.measure import PhaseResult
    from bench.pipeline.report import table

    # 86 ticks were left when the load stopped, under the 500 a batch waits for: the processor
    # was caught up 1.5 s later, and their batch ran when MAX_TRIGGER_DELAY (15 s) had passed.
    waited = PhaseResult(rate=1000, ticks=60_000, seconds=60.0, produced_per_s=1000.0,
                         processor_drain_s=16.2, storage_drain_s=0.5, processor_batch_min=500,
                         processor_caught_up_s=1.5)  # fmt: skip
    assert waited.behind() == []
    assert "| 1.5 (last: 16.2) / 0.5 |" in table([waited], parse([], {}))
    # Never within a batch's minimum in time: behind, whatever the minimum.
    behind = PhaseResult(rate=1000, ticks=60_000, seconds=60.0, produced_per_s=1000.0,
                         processor_drain_s=None, storage_drain_s=0.5, processor_batch_min=500,
                         processor_caught_up_s=None)  # fmt: skip
    assert behind.behind() == ["processor"]
    slow = PhaseResult(rate=1000, ticks=60_000, seconds=60.0, produced_per_s=1000.0,
                       processor_drain_s=20.0, storage_drain_s=0.5, processor_batch_min=500,
                       processor_caught_up_s=19.0)  # fmt: skip
    assert slow.behind() == ["processor"]


def test_the_batch_minimum_is_the_one_the_benchmarks_processor_parses(tmp_path, monkeypatch):
    monkeypatch.delenv("MIN_OFFSETS_PER_TRIGGER", raising=False)
    jar = tmp_path / "connector.jar"
    jar.write_bytes(b"")
    target = Target("127.0.0.1:9092", ("127.0.0.1",), 9042, "0123abcd", tmp_path / "checkpoints",
                    tmp_path / "logs")  # fmt: skip
    bench = parse([], {})
    assert Stages(target, bench, ["AAPL"], [jar]).processor_batch_min() == 500
    for given in (2000, 0):
        stages = Stages(target, bench, ["AAPL"], [jar], MIN_OFFSETS_PER_TRIGGER=given)
        assert stages.processor_batch_min() == given
