"""The dashboard's settings: flags with environment twins, checked at start."""

from __future__ import annotations

import pytest

from common.settings import parse_settings
from dashboard.settings import DashboardSettings, build_parser
from processor.settings import parse_settings as processor_settings


def settings(argv: list[str], environ: dict[str, str] | None = None) -> DashboardSettings:
    return parse_settings(DashboardSettings, build_parser(environ or {}), argv)[0]


def test_defaults_listen_on_loopback_port_8050_with_the_processors_windows():
    s = settings([])
    assert (s.host, s.port, s.url) == ("127.0.0.1", 8050, "http://127.0.0.1:8050/")
    assert s.windows_ms == (10_000, 60_000) == processor_settings([]).windows_ms
    assert s.default_window_ms == 60_000
    assert s.default_window_ms == 60_000
    assert s.consumer_group == "stock-dashboard"
    assert settings([], {"WINDOWS": "5m,10s,1m"}).windows_ms == (10_000, 60_000, 300_000)


def test_environment_twins_and_flags():
    s = settings(
        ["--port", "9000"],
        {"DASHBOARD_HOST": "0.0.0.0", "WINDOWS": "5m,10s", "CASSANDRA_KEYSPACE": "ks1",
         "DASHBOARD_CONSUMER_GROUP": "dash-2", "DASHBOARD_PORT": "8100"},
    )  # fmt: skip
    assert (s.host, s.port, s.keyspace, s.consumer_group) == ("0.0.0.0", 9000, "ks1", "dash-2")
    # Sorted, and without 1m the smallest size is the default view.
    assert s.windows_ms == (10_000, 300_000)
    assert s.default_window_ms == 10_000
    assert s.url == "http://127.0.0.1:9000/"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "0"], "port number"),
        (["--windows", "1m,1m"], "window size twice"),
        (["--windows", "2d"], "at most a day"),
        (["--cassandra-keyspace", "Bad-Name"], "keyspace"),
        (["--host", "a b"], "not a host"),
    ],
)
def test_bad_values_stop_at_start(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        settings(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_help_shows_every_env_twin():
    text = " ".join(build_parser({}).format_help().split())
    names = ["DASHBOARD_HOST", "DASHBOARD_PORT", "KAFKA_BOOTSTRAP_SERVERS", "CASSANDRA_HOSTS",
             "CASSANDRA_KEYSPACE", "WINDOWS", "DASHBOARD_CONSUMER_GROUP", "LOG_LEVEL"]  # fmt: skip
    for env in names:
        assert f"[env: {env}]" in text
