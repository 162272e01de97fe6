"""The health panel's fleet (issue #21): /api/health reports the producers' fleet as ZooKeeper
holds it, two real producers sharing four symbols: each member, who holds which symbol since
when, and the handovers just made."""

from __future__ import annotations

import sys
import uuid

import pytest

from common.polling import wait_until
from stack.settings import free_port
from stack.stage_env import REPO
from stack.supervisor import Supervisor
from tests.integration.dashboard.conftest import dashboard_env, start_dashboard

SYMBOLS = ["FA", "FB", "FC", "FD"]


@pytest.mark.slow
def test_the_health_api_shows_who_holds_which_symbol(services, topics, schema_keyspace,
                                                      tmp_path):  # fmt: skip
    env = dashboard_env(services, topics, schema_keyspace, free_port())
    env.update(ZOOKEEPER_HOSTS=services.zookeeper_connect,
               FLEET_CHROOT=f"/test-{uuid.uuid4().hex[:8]}")  # fmt: skip
    grace = {"dashboard": 15.0, "producer": 30.0, "producer-2": 30.0}
    stages = Supervisor(tmp_path / "logs", env, cwd=REPO, grace_s=grace)
    producer = [sys.executable, "-m", "producer", "--symbols", ",".join(SYMBOLS),
                "--ticks-topic", topics["ticks"],
                "--dead-letter-topic", topics["dead_letters"]]  # fmt: skip
    try:
        stages.start("producer", producer)
        stages.start("producer-2", producer)
        running = start_dashboard(stages, env)

        def shared() -> dict | None:
            fleet = running.get("/api/health").body.get("fleet") or {}
            members = fleet.get("members", [])
            held = [s["member"] for s in fleet.get("symbols", [])]
            ok = len(members) == 2 and len(held) == 4 and None not in held
            return fleet if ok and sorted(len(m["holds"]) for m in members) == [2, 2] else None

        fleet = wait_until(shared, 120, "the fleet in /api/health", every_s=0.5,
                           check=stages.check, describe=stages.tails)  # fmt: skip
    finally:
        codes = stages.stop_all()
    assert fleet["ok"] and fleet["list_error"] is None
    assert [s["symbol"] for s in fleet["symbols"]] == SYMBOLS
    by_member = {m["name"]: set(m["holds"]) for m in fleet["members"]}
    for entry in fleet["symbols"]:
        assert entry["symbol"] in by_member[entry["member"]]
        assert entry["since_ms"] > 0
    # The locks were all taken within the last minutes: each shows as a handover.
    assert {h["symbol"] for h in fleet["handovers"]} == set(SYMBOLS)
    assert codes.get("dashboard") == 0, stages.tails()
