"""Producers as a fleet on real ZooKeeper and Kafka (issue #21): three `python -m producer
--coordinator` processes share twelve symbols, each held by exactly one member; a change to the
list takes effect while they run; a killed member's symbols are taken over; a malformed list is
refused with the last good one kept. Who published each tick is read from its Kafka header."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

import pytest

from common.contract import Tick
from common.fleet import OWNERS, SYMBOLS, SymbolStore, connect
from common.polling import poll_paced, wait_until
from producer.publisher import MEMBER_HEADER

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
SYMBOLS_12 = [f"F{i:02d}" for i in range(12)]
SESSION_S = 4


class Fleet:
    """Producers started on one chroot and topic, and a kazoo client to look at them."""

    def __init__(self, services, topic: str, tmp_path: Path):
        self.zk = services.zookeeper_connect
        self.bootstrap = services.bootstrap_servers
        self.topic = topic
        self.chroot = f"/test-{uuid.uuid4().hex[:8]}"
        self.tmp = tmp_path
        self.procs: list[subprocess.Popen] = []
        self.client = connect(self.zk, self.chroot)
        self.store = SymbolStore(self.client)

    def start(self, symbols: list[str] | None = None) -> subprocess.Popen:
        log = (self.tmp / f"producer-{len(self.procs)}.log").open("ab")
        argv = [sys.executable, "-m", "producer", "--coordinator", self.zk, "--fleet-chroot",
                self.chroot, "--session-timeout", f"{SESSION_S}s", "--ticks-topic", self.topic,
                "--dead-letter-topic", f"{self.topic}_dl", "--sim-rate", "60"]  # fmt: skip
        if symbols:
            argv += ["--symbols", ",".join(symbols)]
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                env=dict(os.environ, LOG_LEVEL="INFO",
                                         KAFKA_BOOTSTRAP_SERVERS=self.bootstrap))  # fmt: skip
        self.procs.append(proc)
        return proc

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        """python -m producer symbols ... on this fleet."""
        return subprocess.run(
            [sys.executable, "-m", "producer", "symbols", *args, "--coordinator", self.zk,
             "--fleet-chroot", self.chroot],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip

    def log(self, i: int) -> str:
        return (self.tmp / f"producer-{i}.log").read_text(errors="replace")

    def owners(self) -> dict[str, str]:
        return self.store.owners()

    def members(self) -> list[str]:
        return list(self.store.members())

    def settled(self, symbols: list[str], members: int) -> bool:
        """Every listed symbol held, nothing else held, by `members` members evenly."""
        owners = self.owners()
        per = defaultdict(int)
        for owner in owners.values():
            per[owner] += 1
        return (sorted(owners) == sorted(symbols) and len(self.members()) == members
                and max(per.values(), default=0) <= -(-len(symbols) // members))  # fmt: skip

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.client.stop()
        self.client.close()


class Ticks:
    """The topic read as it fills: (symbol, member, append time ms) per tick."""

    def __init__(self, bootstrap: str, topic: str):
        from kafka import KafkaConsumer

        self._consumer = KafkaConsumer(
            topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
            enable_auto_commit=False,
        )  # fmt: skip
        self.seen: list[tuple[str, str, int]] = []

    def read(self) -> list[tuple[str, str, int]]:
        for batch in poll_paced(self._consumer, 300).values():
            for r in batch:
                member = dict(r.headers or []).get(MEMBER_HEADER, b"?").decode()
                self.seen.append((Tick.from_json(r.value).symbol, member, r.timestamp))
        return self.seen

    def since(self, ms: int) -> list[tuple[str, str, int]]:
        return [t for t in self.read() if t[2] >= ms]

    def close(self) -> None:
        self._consumer.close()


@pytest.fixture
def fleet(services, make_topic, tmp_path):
    running = Fleet(services, make_topic(partitions=3), tmp_path)
    yield running
    running.close()


@pytest.fixture
def ticks(fleet):
    reader = Ticks(fleet.bootstrap, fleet.topic)
    yield reader
    reader.close()


def _one_member_each(ticks: list[tuple[str, str, int]]) -> dict[str, set[str]]:
    by_symbol = defaultdict(set)
    for symbol, member, _ in ticks:
        by_symbol[symbol].add(member)
    return by_symbol


def test_three_members_hold_twelve_symbols_each_one_once_and_every_one_is_fetched(fleet, ticks):
    fleet.start(SYMBOLS_12)
    wait_until(lambda: fleet.store.read() is not None, 120, "the list written")
    fleet.start()
    fleet.start()
    wait_until(lambda: fleet.settled(SYMBOLS_12, 3), 120, "12 symbols on 3 members",
               describe=lambda: str(fleet.owners()))  # fmt: skip
    per = defaultdict(list)
    for symbol, owner in fleet.owners().items():
        per[owner].append(symbol)
    assert sorted(len(v) for v in per.values()) == [4, 4, 4], per
    settled_ms = int(time.time() * 1000) + 500
    wait_until(lambda: {s for s, _, _ in ticks.since(settled_ms)} >= set(SYMBOLS_12), 60,
               "ticks for every symbol")  # fmt: skip
    owners = fleet.owners()
    for symbol, members in _one_member_each(ticks.since(settled_ms)).items():
        assert members == {owners[symbol]}, (
            symbol,
            members,
            owners[symbol],
            [(m, ts - settled_ms) for s, m, ts in ticks.since(settled_ms) if s == symbol][:40],
        )

    def listed() -> str | None:
        out = fleet.cli("list").stdout
        rows = re.findall(r"^(\S+)\s+(member-\d+)\s+\d{4}-\d\d-\d\d ", out, re.M)
        return out if len(rows) == len(SYMBOLS_12) else None

    # Each member writes its newest tick per symbol into its znode every few seconds.
    out = wait_until(listed, 60, "every symbol listed with its owner and newest tick")
    for symbol, owner in owners.items():
        assert re.search(rf"^{symbol}\s+{owner}\s", out, re.M), out


def test_a_symbol_added_is_fetched_and_one_removed_is_not(fleet, ticks):
    fleet.start(SYMBOLS_12[:4])
    fleet.start()
    wait_until(lambda: fleet.settled(SYMBOLS_12[:4], 2), 120, "4 symbols on 2 members")
    added_at = time.monotonic()
    fleet.cli("add", "NEWSYM")
    added_ms = int(time.time() * 1000)
    wait_until(lambda: any(s == "NEWSYM" for s, _, _ in ticks.since(added_ms)), 30,
               "ticks for the symbol added")  # fmt: skip
    print(f"FLEET symbol added -> first tick in Kafka: {time.monotonic() - added_at:.2f} s")
    fleet.cli("remove", SYMBOLS_12[0])
    removed_ms = int(time.time() * 1000)
    wait_until(lambda: SYMBOLS_12[0] not in fleet.owners(), 30, "the removed symbol let go")
    # One interval (here: a second) after the removal, none of its ticks any more.
    after = removed_ms + 1000
    wait_until(lambda: ticks.since(after + 2000), 30, "ticks two seconds on")
    assert not [t for t in ticks.since(after) if t[0] == SYMBOLS_12[0]]


def test_a_killed_members_symbols_are_taken_over_within_the_session_timeout(fleet, ticks):
    victim = fleet.start(SYMBOLS_12)
    wait_until(lambda: fleet.store.read() is not None, 120, "the list written")
    fleet.start()
    fleet.start()
    wait_until(lambda: fleet.settled(SYMBOLS_12, 3), 120, "12 symbols on 3 members")
    pid_of = {name: m.pid for name, m in fleet.store.members().items()}
    victim_name = next(n for n, pid in pid_of.items() if pid == victim.pid)
    lost = sorted(s for s, o in fleet.owners().items() if o == victim_name)
    victim.kill()
    killed_at, killed_ms = time.monotonic(), int(time.time() * 1000)
    wait_until(lambda: fleet.settled(SYMBOLS_12, 2), 60, "the 12 symbols on the 2 left",
               every_s=0.1)  # fmt: skip
    taken_s = time.monotonic() - killed_at

    def fetched_again() -> bool:
        return set(lost) <= {s for s, m, _ in ticks.since(killed_ms) if m != victim_name}

    wait_until(fetched_again, 60, "the dead member's symbols fetched again", every_s=0.1)
    print(
        f"FLEET handover after SIGKILL: locks {taken_s:.2f} s, ticks "
        f"{time.monotonic() - killed_at:.2f} s (session {SESSION_S} s)"
    )
    # The session ends SESSION_S after the member's last word; one interval on, its symbols flow.
    assert time.monotonic() - killed_at < 2 * (SESSION_S + 1)


def test_a_malformed_list_is_refused_and_the_last_good_one_kept(fleet):
    first = fleet.start(SYMBOLS_12[:4])
    wait_until(lambda: fleet.settled(SYMBOLS_12[:4], 1), 120, "4 symbols on 1 member")
    fleet.client.set(SYMBOLS, b'{"symbols": ["ok", 12]}')  # lower case, and not a string
    wait_until(lambda: "symbols znode is malformed" in fleet.log(0), 30, "the error logged")
    assert first.poll() is None
    assert sorted(fleet.owners()) == SYMBOLS_12[:4]
    fleet.client.set(SYMBOLS, json.dumps({"symbols": SYMBOLS_12[4:6]}).encode())
    wait_until(lambda: fleet.settled(SYMBOLS_12[4:6], 1), 30, "the good list taken")
    assert not fleet.client.get_children(OWNERS) == []


def test_a_member_paused_past_its_session_publishes_nothing_it_no_longer_holds(fleet, ticks):
    fleet.start(SYMBOLS_12)
    wait_until(lambda: fleet.store.read() is not None, 120, "the list written")
    paused = fleet.start()
    fleet.start()
    wait_until(lambda: fleet.settled(SYMBOLS_12, 3), 120, "12 symbols on 3 members")
    pid_of = {name: m.pid for name, m in fleet.store.members().items()}
    old_name = next(n for n, pid in pid_of.items() if pid == paused.pid)
    held = sorted(s for s, o in fleet.owners().items() if o == old_name)
    paused.send_signal(signal.SIGSTOP)
    try:
        # Its session expires; the two others take its symbols.
        wait_until(lambda: fleet.settled(SYMBOLS_12, 2), 60, "the 12 symbols on the 2 others")
    finally:
        paused.send_signal(signal.SIGCONT)
    resumed_ms = int(time.time() * 1000)
    # It joins again under a new name and gets its share back, from the others.
    wait_until(lambda: fleet.settled(SYMBOLS_12, 3), 60, "3 members again")
    wait_until(lambda: ticks.since(resumed_ms + 3000), 30, "ticks three seconds on")
    stale = [(s, ts - resumed_ms) for s, m, ts in ticks.since(resumed_ms) if m == old_name]
    print(f"FLEET paused member: {len(stale)} ticks under its old name after it resumed")
    assert stale == [], stale[:20]
    assert paused.poll() is None
    assert old_name not in fleet.members()
    assert held  # it held symbols before the pause: the check above could have failed


def test_the_fleet_carries_on_across_a_zookeeper_restart(services, fleet, ticks):
    stack = services.stack
    if stack is None:
        pytest.skip("needs a stack the harness controls (run with the service env vars unset)")
    fleet.start(SYMBOLS_12[:6])
    wait_until(lambda: fleet.store.read() is not None, 120, "the list written")
    fleet.start()
    wait_until(lambda: fleet.settled(SYMBOLS_12[:6], 2), 120, "6 symbols on 2 members")
    stack.stop("zookeeper")
    stack.start("zookeeper")
    back_ms = int(time.time() * 1000)
    wait_until(lambda: _settled_quietly(fleet, SYMBOLS_12[:6], 2), 120, "the fleet settled again")
    wait_until(lambda: {s for s, _, _ in ticks.since(back_ms)} >= set(SYMBOLS_12[:6]), 60,
               "every symbol fetched after the restart")  # fmt: skip
    assert all(p.poll() is None for p in fleet.procs)


def _settled_quietly(fleet: Fleet, symbols: list[str], members: int) -> bool:
    from kazoo.exceptions import KazooException

    try:
        return fleet.settled(symbols, members)
    except KazooException:
        return False  # the test's own client reconnecting
