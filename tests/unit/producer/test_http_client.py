from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from producer.http_client import HttpClient, parse_retry_after
from producer.sources.base import SourceError
from tests.unit.producer.servers import Answer


def test_retries_are_bounded(source_server):
    source_server.script("/x", Answer(500, b"down"))
    client = HttpClient(threading.Event(), retries=3, backoff_s=0.01)
    with pytest.raises(SourceError, match="HTTP 500 .* after 4 attempts"):
        client.get(source_server.url + "/x")
    assert len(source_server.requests_to("/x")) == 4


def test_4xx_other_than_429_is_returned_for_the_parser(source_server):
    source_server.script("/x", Answer(404, b"nope"))
    response = HttpClient(threading.Event(), backoff_s=0.01).get(source_server.url + "/x")
    assert (response.status, response.body) == (404, b"nope")
    assert len(source_server.requests_to("/x")) == 1


def test_backoff_waits_stay_within_the_jittered_exponential_bound(source_server):
    source_server.script("/x", Answer(503, b""))
    client = HttpClient(threading.Event(), retries=3, backoff_s=0.2)
    started = time.monotonic()
    with pytest.raises(SourceError):
        client.get(source_server.url + "/x")
    # Full jitter keeps each wait in [0, 0.2 * 2**n]; the total is bounded by the sum.
    assert time.monotonic() - started < 0.2 + 0.4 + 0.8 + 1.0


def test_stop_interrupts_a_retry_wait(source_server):
    source_server.script("/x", Answer(429, b"", {"Retry-After": "20"}))
    stop = threading.Event()
    client = HttpClient(stop, retries=3, backoff_s=0.01, max_backoff_s=30)
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    with pytest.raises(SourceError, match="stopped"):
        client.get(source_server.url + "/x")
    assert time.monotonic() - started < 5


def test_connection_refused_error_hides_the_query():
    client = HttpClient(threading.Event(), retries=0, timeout_s=1)
    with pytest.raises(SourceError) as e:
        client.get("http://127.0.0.1:9/api?token=secret123")
    assert "secret123" not in str(e.value)
    assert "connection failed" in str(e.value)


def test_parse_retry_after_seconds_and_http_date():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(later, now=now.timestamp()) == pytest.approx(30)
