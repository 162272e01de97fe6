"""CPU time of a process and its descendants, from /proc: the work a benchmark's subject did,
whatever else the machine ran meanwhile (a figure a busy machine inflates less than wall time)."""

from __future__ import annotations

import os
from pathlib import Path

_PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (which may hold spaces), or None for
    a process that is gone."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, its reaped children and its live descendants (a Spark
    JVM's Python workers, for one)."""
    children: dict[int, list[int]] = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        fields = _stat_fields(current)
        if fields is None:
            continue
        # utime, stime, cutime, cstime: fields 14-17 of proc(5), counted here from field 3 on.
        total += sum(int(v) for v in fields[11:15]) / tick
        todo.extend(children.get(current, []))
    return total


def cpu_model() -> str:
    """The CPU's model name and the number of cores this process may use: printed with every
    figure, so that figures from different hosts are never compared as if from one."""
    name = "unknown CPU"
    try:
        for line in (_PROC / "cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {len(os.sched_getaffinity(0))} cores"
