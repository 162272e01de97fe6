from __future__ import annotations

import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.contract import ContractError, Tick
from producer.replay_format import ReplayFormatError, read_header
from producer.sources.base import Rejected
from producer.sources.replay import ReplaySource, read_replay

HEADER = "symbol,timestamp,price,volume\n"


def write(tmp_path, text: str, name: str = "ticks.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def test_rows_become_ticks_with_seq_for_equal_timestamps(tmp_path):
    path = write(
        tmp_path,
        HEADER + "AAPL,1724788801000,230.49,100\n"
        "AAPL,1724788801000,230.50,5\n"
        "MSFT,1724788801000,415.5,\n"
        "AAPL,1724788801001,230.51,7\n",
    )
    assert list(read_replay(path)) == [
        Tick("AAPL", 230.49, 100, 1724788801000, "replay", 0),
        Tick("AAPL", 230.50, 5, 1724788801000, "replay", 1),
        Tick("MSFT", 415.5, 0, 1724788801000, "replay", 0),
        Tick("AAPL", 230.51, 7, 1724788801001, "replay", 0),
    ]


@pytest.mark.parametrize(
    "header",
    [
        "price,volume,timestamp,symbol",
        " Price , VOLUME,ts,Symbol",
        "ticker,time,price,size",
        "symbol,ts_ms,price,volume,seq,source",  # a dump of the ticks table replays as it is
        "\ufeffsymbol,timestamp_ms,price,volume",  # a spreadsheet's byte-order mark
    ],
)
def test_columns_are_found_by_the_headers_names(tmp_path, header):
    names = [h.strip().lstrip("\ufeff").lower() for h in header.split(",")]
    values = {"price": "230.49", "volume": "100", "size": "100", "symbol": "AAPL",
              "ticker": "AAPL", "seq": "7", "source": "yahoo"}  # fmt: skip
    row = ",".join(values.get(n, "2024-08-27T20:00:01Z") for n in names)
    path = write(tmp_path, f"# exported today\n\n{header}\n{row}\n")
    assert list(read_replay(path)) == [Tick("AAPL", 230.49, 100, 1724788801000, "replay", 0)]


def test_iso_times_are_read_as_utc_and_volume_may_be_absent(tmp_path):
    path = write(
        tmp_path,
        "timestamp,symbol,price\n"
        "2024-08-27T20:00:01Z,AAPL,230.49\n"
        "2024-08-27T20:00:02,AAPL,230.5\n"
        "2024-08-27T22:00:03+02:00,AAPL,230.6\n",
    )
    ticks = list(read_replay(path))
    assert [t.ts for t in ticks] == [1724788801000, 1724788802000, 1724788803000]
    assert {t.volume for t in ticks} == {0}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("AAPL,1724788801000,230.49,100\n", "column 'AAPL' that replay does not know"),
        ("symbol,timestamp,price,exchange\n", "column 'exchange' that replay does not know"),
        ("symbol,price,volume\n", "lacks the ts column"),
        ("symbol,timestamp\n", "lacks the price column"),
        ("symbol,ts,time,price\n", "names the ts column twice"),
        ("symbol,timestamp,price,\n", "column '' that replay does not know"),
        ("# only a comment\n\n", "no header and no rows"),
        ("", "no header and no rows"),
    ],
)
def test_a_header_replay_cannot_use_is_one_error_before_any_row(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ReplayFormatError, match=expected) as e:
        read_header(path)
    assert "\n" not in str(e.value)
    with pytest.raises(ReplayFormatError, match=expected):
        next(read_replay(path))


def test_bad_rows_are_rejected_with_their_line_and_kept_apart(tmp_path):
    path = write(
        tmp_path,
        HEADER + "AAPL,1724788801000,230.49\n"
        "AAPL,yesterday,230.49\n"
        "AAPL,1724788800000,230.49\n"
        "AAPL\n"
        "MSFT,1724788801000,415.5\n",
    )
    items = list(read_replay(path))
    assert [type(i).__name__ for i in items] == ["Tick", "Rejected", "Rejected", "Rejected", "Tick"]
    assert "line 3" in items[1].reason and items[1].symbol == "AAPL"
    assert "goes back in time" in items[2].reason and items[2].raw == b"AAPL,1724788800000,230.49"
    assert "line 5: 1 field(s)" in items[3].reason


def test_hostile_rows_are_rejected_or_left_to_the_contract_never_raised(tmp_path):
    path = write(
        tmp_path,
        HEADER.encode()
        + b"AAPL,1724788801000,1e999,1\n"  # price infinity: the contract refuses it
        + b"AAPL,1724788801001,230.49,1e999\n"  # volume infinity: likewise
        + b"AAPL,1724788801002,nan,1\n"
        + b"AAPL,"
        + b"9" * 5000
        + b",1,1\n"  # a timestamp too long to read
        + b"\xff\xfeAAPL,1724788801003,1,1\n"  # not UTF-8: kept as the bytes it was
        + b'AAPL,"unterminated,1,1\n'
        + b"AAPL,1724788801004,"
        + b"9" * 100_000
        + b",1\n"  # a line no tick has
        + b"MSFT,1724788801000,415.5,3\n",
    )
    items = list(read_replay(path))
    assert len(items) == 8
    assert items[-1] == Tick("MSFT", 415.5, 3, 1724788801000, "replay")
    ticks = [i for i in items if isinstance(i, Tick)]
    rejected = [i for i in items if isinstance(i, Rejected)]
    assert len(rejected) >= 3 and all("replay line" in r.reason for r in rejected)
    assert any("\udcff" in t.symbol for t in ticks)  # the bytes as they were, for the contract
    for tick in ticks[:-1]:
        with pytest.raises(ValueError):  # ContractError: the publisher dead-letters these
            tick.validated()


def test_contract_breaking_rows_are_passed_on_unchanged_for_the_contract_to_refuse(tmp_path):
    path = write(tmp_path, HEADER + "aapl,1724788801,0,1.5\n")
    [tick] = read_replay(path)
    assert tick == Tick("aapl", 0, 1.5, 1724788801, "replay")


def test_symbols_filter(tmp_path):
    path = write(tmp_path, HEADER + "AAPL,1724788801000,1,1\nMSFT,1724788801000,2,1\n")
    assert [t.symbol for t in read_replay(path, ["MSFT"])] == ["MSFT"]


class FakeTime:
    """A clock that moves only when the replay waits: pacing without real time."""

    def __init__(self) -> None:
        self.now = 100.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        self.now += seconds
        return False


@pytest.mark.parametrize(("speed", "expected_waits"), [(1.0, [1.0] * 4), (10.0, [0.1] * 4)])
def test_replay_speed_scales_the_files_time(tmp_path, speed, expected_waits):
    rows = "".join(f"AAPL,{1724788801000 + i * 1000},1,1\n" for i in range(5))
    path = write(tmp_path, HEADER + rows)
    fake = FakeTime()
    items = list(ReplaySource(threading.Event(), path, speed, fake.clock, fake.wait).stream(()))
    assert len(items) == 5 and not any(isinstance(i, Rejected) for i in items)
    assert fake.waits == pytest.approx(expected_waits)


def test_replay_at_max_speed_never_waits_and_stops_on_the_flag(tmp_path):
    rows = "".join(f"AAPL,{1724788801000 + i * 1000},1,1\n" for i in range(5))
    path = write(tmp_path, HEADER + rows)
    fake = FakeTime()
    assert (
        len(list(ReplaySource(threading.Event(), path, 0.0, fake.clock, fake.wait).stream(()))) == 5
    )
    assert fake.waits == []
    stop = threading.Event()
    stop.set()
    stopped = ReplaySource(stop, path, 1.0, fake.clock, lambda _s: stop.is_set())
    assert len(list(stopped.stream(()))) == 1  # the first tick needs no wait; the next stops


FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@FUZZ
@given(body=st.binary(max_size=600))
def test_fuzz_any_bytes_under_a_good_header_are_ticks_or_rejections(tmp_path, body):
    path = write(tmp_path, HEADER.encode() + body, "fuzz.csv")
    for item in read_replay(path):
        assert isinstance(item, (Tick, Rejected))
        if isinstance(item, Tick):
            try:
                item.validated()
            except ContractError:
                pass  # the only refusal the contract documents; the publisher dead-letters it


@FUZZ
@given(first=st.text(max_size=80))
def test_fuzz_any_first_line_is_a_header_or_one_format_error(tmp_path, first):
    path = write(tmp_path, first.encode("utf-8", "surrogatepass") + b"\nAAPL,1,1,1\n", "h.csv")
    try:
        layout = read_header(path)
    except ReplayFormatError as e:
        assert "\n" not in str(e)
    else:
        assert {"symbol", "ts", "price"} <= set(layout)
