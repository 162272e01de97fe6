"""The fault benchmark's tables: what each fault cost, and what replication costs."""

from __future__ import annotations

import os
from datetime import datetime

from bench.cpu import cpu_model
from bench.faults.phases import FaultResult, ReplicationResult
from bench.faults.settings import FaultBenchSettings
from bench.faults.timeline import IN_FLIGHT_MS, NORMAL_FACTOR, SETTLE_MS
from bench.pipeline.report import _cpu, _ms


def _s(value: float) -> str:
    return "never" if value == float("inf") else f"{value:.1f}"


def fault_table(results: list[FaultResult]) -> str:
    lines = [
        "| fault | killed | down s | published | stored | tick->row ms before: p50 / p99 | "
        "tick->row ms p99 while down | first tick after the kill stored, s | longest write "
        f"stall s | tick->row under {NORMAL_FACTOR:g}x again, s | rows/s before / down / after "
        "| producer's summary |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        t = r.timeline
        lines.append(
            f"| {r.fault} | {r.victim} | {r.down_s:.0f} | {r.published:,} | {r.stored:,} | "
            f"{_ms(t.baseline.p50)} / {_ms(t.baseline.p99)} | {_ms(t.during.p99)} | "
            f"{_s(t.first_stored_s)} | {_s(t.longest_stall_s)} | {_s(t.normal_s)} | "
            f"{' / '.join(f'{r:,.0f}' for r in t.rates)} | `{r.producer_summary}` |"
        )
    return "\n".join(lines)


def replication_table(results: list[ReplicationResult]) -> str:
    lines = [
        "| replication | offered/s | producer/s | processor/s | storage/s | tick->row ms p50 / "
        "p99 | CPU-s per 1,000 ticks: prod / proc / store | cluster (9 JVMs) | fell behind |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        p = r.phase
        stages = " / ".join(_cpu(p.cpu_per_1000(s)) for s in ("producer", "processor", "storage"))
        lines.append(
            f"| {r.replication} | {p.rate:,} | {p.produced_per_s:,.0f} | "
            f"{p.processed_per_s:,.0f} | {p.stored_per_s:,.0f} | {_ms(p.tick_to_row.p50)} / "
            f"{_ms(p.tick_to_row.p99)} | {stages} | {_cpu(r.cluster_cpu_per_1000())} | "
            f"{', '.join(p.behind()) or '- (kept up)'} |"
        )
    return "\n".join(lines)


def report(
    faults: list[FaultResult],
    replication: list[ReplicationResult],
    bench: FaultBenchSettings,
    started: datetime,
    warm_start_s: float,
) -> str:
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    parts = [
        f"# Fault benchmark, {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"A three-node cluster on one machine ({cpu_model()}): ZooKeeper "
        f"x3, Kafka x3 (replication 3, min.insync.replicas 2), Cassandra x3 (keyspace at 3, "
        f"LOCAL_QUORUM), up in {warm_start_s:.0f} s; {bench.rate:,} ticks/s over {bench.symbols} "
        f"symbols; load average at the end {load}.",
        "",
    ]
    if faults:
        parts += [
            "## Faults (producer and storage carrying the load; the processor is not on the "
            "tick->row path)",
            "",
            fault_table(faults),
            "",
            f"Each node is SIGKILLed {bench.before_s:.0f} s into the load and started again "
            f"after `down s`; the load goes on {bench.after_s:.0f} s after it serves again. "
            "Every figure comes from the rows: tick->row = WRITETIME(price) - ts of every tick; "
            f"`before` leaves the first {SETTLE_MS / 1000:.0f} s out, and the last "
            f"{IN_FLIGHT_MS / 1000:.0f} s before the kill (ticks then in flight to the victim); "
            "`while down` counts unwritten ticks as infinitely late; "
            f"`under {NORMAL_FACTOR:g}x again` is when the last second of ticks (after the kill) "
            f"whose median tick->row was over {NORMAL_FACTOR:g}x the median before was through; "
            "`longest write stall` is the longest time after the kill without a row written. "
            "published = the ticks topic's size; stored = rows read back (equal: none lost).",
            "",
        ]
    if replication:
        parts += [
            "## What replication costs (the whole pipeline, same cluster, side by side)",
            "",
            replication_table(replication),
            "",
            "Replication 1: topics of one replica (min.insync.replicas 1), keyspace "
            "SimpleStrategy 1, CL ONE. Replication 3: topics of three (min.insync.replicas 2), "
            "keyspace NetworkTopologyStrategy 3, LOCAL_QUORUM. Each offered "
            f"{bench.replication_s:.0f} s after a warm-up; CPU is each process's own over the "
            "load and the drain.",
        ]
    return "\n".join(parts)
