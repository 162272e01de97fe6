"""The results: a table per rate, the verdict (highest sustained rate, who fell behind)."""

from __future__ import annotations

import math
import os
import platform
from datetime import datetime

from bench.cpu import cpu_model
from bench.pipeline.measure import DRAIN_SHARE, KEPT_UP, MIN_DRAIN_S, PhaseResult
from bench.pipeline.settings import BenchSettings
from common.settings import format_duration


def _ms(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "unwritten"
    return f"{value:,.0f}"


def _drain(value: float | None, timeout_s: float) -> str:
    return f">{timeout_s:.0f}" if value is None else f"{value:.1f}"


def _processor_drain(r: PhaseResult, timeout_s: float) -> str:
    """Until it was within a batch's minimum of the end, then (when later) until the last tick."""
    caught_up = _drain(r.processor_caught_up_s, timeout_s)
    if r.processor_caught_up_s is None or r.processor_drain_s == r.processor_caught_up_s:
        return caught_up
    return f"{caught_up} (last: {_drain(r.processor_drain_s, timeout_s)})"


def _cpu(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}"


def table(results: list[PhaseResult], bench: BenchSettings) -> str:
    head = (
        "| offered/s | producer/s | processor/s | storage/s | lag at end: proc / store | "
        "drain s: proc / store | tick->row ms p50 / p95 / p99 (n) | "
        "window close->row ms p50 / p95 / p99 (n) | CPU-s per 1,000 ticks: prod / proc / store "
        "| fell behind |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    )
    lines = [head]
    for r in results:
        t, w = r.tick_to_row, r.window_to_row
        cpu = " / ".join(_cpu(r.cpu_per_1000(s)) for s in ("producer", "processor", "storage"))
        lines.append(
            f"| {r.rate:,} | {r.produced_per_s:,.0f} | {r.processed_per_s:,.0f} | "
            f"{r.stored_per_s:,.0f} | {r.processor_lag_end:,} / {r.storage_lag_end:,} | "
            f"{_processor_drain(r, bench.drain_timeout_s)} / "
            f"{_drain(r.storage_drain_s, bench.drain_timeout_s)} | "
            f"{_ms(t.p50)} / {_ms(t.p95)} / {_ms(t.p99)} ({t.count:,}) | "
            f"{_ms(w.p50)} / {_ms(w.p95)} / {_ms(w.p99)} ({w.count:,}) | "
            f"{cpu} | "
            f"{', '.join(r.behind()) or '- (kept up)'} |"
        )
    return "\n".join(lines)


SUSTAINED = (
    f"the producer at >= {KEPT_UP:.0%} of the rate, storage's backlog gone and the processor's "
    f"under a batch's minimum within {DRAIN_SHARE:.0%} of the load's duration (at least "
    f"{MIN_DRAIN_S:.0f} s) after it stopped, and tick->row p99 under 1 s"
)


def verdict(results: list[PhaseResult]) -> str:
    sustained = [r for r in results if r.limiting_stage() is None and r.tick_to_row.p99 < 1000]
    best = max((r.rate for r in sustained), default=None)
    first_bad = next((r for r in results if r not in sustained), None)
    if best is None:
        parts = [f"No offered rate was sustained ({SUSTAINED})."]
    else:
        parts = [f"Highest sustained rate: {best:,} ticks/s ({SUSTAINED})."]
    if first_bad is not None:
        rates = first_bad.rates()
        behind = ", ".join(f"{s} ({rates[s]:,.0f}/s while the load was on)"
                           for s in first_bad.behind())  # fmt: skip
        if behind:
            parts.append(f"At {first_bad.rate:,} ticks/s these fell behind, slowest first: "
                         f"{behind}. Tick->row latency does not wait for the processor; window "
                         "close->row does.")  # fmt: skip
        else:
            parts.append(f"At {first_bad.rate:,} ticks/s every stage kept up, but tick->row p99 "
                         f"was {_ms(first_bad.tick_to_row.p99)} ms.")  # fmt: skip
    return " ".join(parts)


def report(results: list[PhaseResult], bench: BenchSettings, started: datetime) -> str:
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    windows = ",".join(format_duration(w) for w in bench.windows_ms)
    return "\n".join(
        [
            f"# Pipeline benchmark, {started:%Y-%m-%d %H:%M} UTC",
            "",
            f"{bench.symbols} symbols, each rate offered for {bench.duration_s:.0f} s, windows "
            f"{windows}, Spark {bench.spark_master}; {os.cpu_count()} cores shared by "
            f"ZooKeeper, Kafka, Cassandra, Spark and the three stages "
            f"({'attached services' if bench.attached else 'its own stack'}); "
            f"load average at the end {load}; {platform.python_implementation()} "
            f"{platform.python_version()}; {cpu_model()}.",
            "",
            table(results, bench),
            "",
            verdict(results),
            "",
            "Rates are per stage while the load was on (first seconds left out): producer = ticks "
            "appended to the ticks topic, processor = ticks through the processor's committed "
            "micro-batches, storage = ticks committed after writing. tick->row = "
            "WRITETIME(price) - ts over every tick of "
            f"{bench.latency_symbols} symbols (ticks never written count as infinitely late). "
            "window close->row = written_at - window_end of the final row of every window that "
            "closed during the load (n/a when a stage did not drain). Both use the event time the "
            f"simulated producer stamps, which follows the wall clock. Drain timeout "
            f"{format_duration(int(bench.drain_timeout_s * 1000))}. The processor's drain runs "
            "until fewer ticks were left than a batch waits for (MIN_OFFSETS_PER_TRIGGER); "
            "those wait up to MAX_TRIGGER_DELAY by design, and (last: ...) is when they were "
            "processed.",
        ]
    )
