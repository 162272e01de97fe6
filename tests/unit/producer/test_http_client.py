from __future__ import annotations

import gzip
import threading
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from producer.http_client import MAX_RETRY_AFTER_S, HttpClient, SourceError, parse_retry_after
from tests.unit.producer.servers import Answer


class Waits:
    """Stands in for the pause between retries: records each one instead of sleeping."""

    def __init__(self, stop: threading.Event | None = None):
        self.delays: list[float] = []
        self._stop = stop

    def __call__(self, delay: float) -> bool:
        self.delays.append(delay)
        return self._stop is not None and self._stop.is_set()


def client(stop: threading.Event | None = None, **kwargs) -> HttpClient:
    stop = stop or threading.Event()
    kwargs.setdefault("wait", Waits(stop))
    return HttpClient(stop, **kwargs)


def test_retries_are_bounded(source_server):
    source_server.script("/x", Answer(500, b"down"))
    with pytest.raises(SourceError, match="HTTP 500 .* after 4 attempts"):
        client(retries=3).get(source_server.url + "/x")
    assert len(source_server.requests_to("/x")) == 4


def test_4xx_other_than_429_is_returned_for_the_parser(source_server):
    source_server.script("/x", Answer(404, b"nope"))
    response = client().get(source_server.url + "/x")
    assert (response.status, response.body) == (404, b"nope")
    assert len(source_server.requests_to("/x")) == 1


def test_backoff_waits_stay_within_the_jittered_exponential_bound(source_server):
    source_server.script("/x", Answer(503, b""))
    waits = Waits()
    with pytest.raises(SourceError):
        client(retries=3, backoff_s=0.2, wait=waits).get(source_server.url + "/x")
    # Full jitter: the n-th wait is anywhere in [0, 0.2 * 2**n].
    assert len(waits.delays) == 3
    assert all(0 <= d <= 0.2 * 2**n for n, d in enumerate(waits.delays)), waits.delays


def test_retry_after_is_honoured_when_short(source_server):
    source_server.script("/x", Answer(429, b"", {"Retry-After": "3"}), Answer(body=b"ok"))
    waits = Waits()
    response = client(backoff_s=0.01, wait=waits).get(source_server.url + "/x")
    assert response.body == b"ok"
    assert waits.delays == [3.0]


def test_stop_during_a_retry_wait_ends_the_request(source_server):
    source_server.script("/x", Answer(429, b"", {"Retry-After": "20"}))
    stop = threading.Event()
    stop.set()  # the wait below reports that the stop flag was set while it waited
    with pytest.raises(SourceError, match="stopped"):
        client(stop, retries=3, max_backoff_s=30).get(source_server.url + "/x")


def test_connection_refused_error_hides_the_query():
    with pytest.raises(SourceError) as e:
        client(retries=0, timeout_s=1).get("http://127.0.0.1:9/api?token=secret123")
    assert "secret123" not in str(e.value)
    assert "connection failed" in str(e.value)


def test_a_trickling_body_is_abandoned_at_the_deadline(source_server):
    # 2,000 bytes at one per 20 ms would take 40 s; the deadline is 0.5 s.
    source_server.script("/slow", Answer(body=b"x" * 2000, trickle_s=0.02))
    with pytest.raises(SourceError, match="incomplete answer within the 0.5s deadline"):
        client(retries=3, timeout_s=0.5).get(source_server.url + "/slow")
    [request] = source_server.requests_to("/slow")  # used its whole time once: not retried
    assert request.client_left.wait(10)
    assert 0 < request.sent < 2000


def test_a_trickling_status_line_and_headers_are_abandoned_at_the_deadline(source_server):
    source_server.script("/slow", Answer(body=b"{}", trickle_s=0.05, trickle_head=True))
    with pytest.raises(SourceError, match="within the 0.5s deadline"):
        client(retries=0, timeout_s=0.5).get(source_server.url + "/slow")
    [request] = source_server.requests_to("/slow")
    assert request.client_left.wait(10)
    assert request.sent < len("HTTP/1.1 200 Scripted\r\nContent-Length: 2\r\n\r\n")


def test_stop_ends_a_request_in_the_middle_of_an_answer(source_server):
    source_server.script("/slow", Answer(endless=True, trickle_s=0.01))
    stop = threading.Event()
    http = client(stop, retries=3, timeout_s=600)
    outcome: list[BaseException] = []

    def fetch() -> None:
        try:
            http.get(source_server.url + "/slow")
        except SourceError as e:
            outcome.append(e)

    thread = threading.Thread(target=fetch)
    thread.start()
    started = source_server.wait_for_request("/slow")
    assert started.started.wait(10)  # the answer is under way: headers sent, body trickling
    stop.set()
    thread.join(30)
    assert not thread.is_alive()
    assert len(outcome) == 1 and "stopped" in str(outcome[0])
    assert len(source_server.requests_to("/slow")) == 1


def test_an_answer_over_the_size_limit_is_refused(source_server):
    source_server.script("/big", Answer(body=b"x" * 200_000))
    with pytest.raises(SourceError, match="larger than 100000 bytes"):
        client(max_body_bytes=100_000).get(source_server.url + "/big")
    assert len(source_server.requests_to("/big")) == 1


def test_the_size_limit_applies_to_the_decompressed_body(source_server):
    bomb = gzip.compress(b"0" * 1_000_000)  # ~1 KB on the wire
    source_server.script("/gz", Answer(body=bomb, headers={"Content-Encoding": "gzip"}))
    with pytest.raises(SourceError, match="larger than 100000 bytes"):
        client(max_body_bytes=100_000).get(source_server.url + "/gz")
    small = gzip.compress(b'{"c": 1}')
    source_server.script("/gz", Answer(body=small, headers={"Content-Encoding": "gzip"}))
    assert client().get(source_server.url + "/gz").body == b'{"c": 1}'


def test_parse_retry_after_seconds_and_http_date():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("9" * 500) == MAX_RETRY_AFTER_S
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(later, now=now.timestamp()) == pytest.approx(30)
