from __future__ import annotations

import threading
import time

from common.contract import Tick
from producer.sources.base import Rejected
from producer.sources.replay import ReplaySource, read_replay


def write(tmp_path, text: str):
    path = tmp_path / "ticks.csv"
    path.write_text(text)
    return path


def test_rows_become_ticks_with_seq_for_equal_timestamps(tmp_path):
    path = write(
        tmp_path,
        "AAPL,1724788801000,230.49,100\n"
        "AAPL,1724788801000,230.50,5\n"
        "MSFT,1724788801000,415.5\n"
        "AAPL,1724788801001,230.51,7\n",
    )
    assert list(read_replay(path)) == [
        Tick("AAPL", 230.49, 100, 1724788801000, "replay", 0),
        Tick("AAPL", 230.50, 5, 1724788801000, "replay", 1),
        Tick("MSFT", 415.5, 0, 1724788801000, "replay", 0),
        Tick("AAPL", 230.51, 7, 1724788801001, "replay", 0),
    ]


def test_header_orders_columns_and_iso_times_are_read_as_utc(tmp_path):
    path = write(
        tmp_path,
        "price,volume,timestamp,symbol\n"
        "230.49,100,2024-08-27T20:00:01Z,AAPL\n"
        "230.5,,2024-08-27T20:00:02,AAPL\n"
        "230.6,1,2024-08-27T22:00:03+02:00,AAPL\n",
    )
    ts = [t.ts for t in read_replay(path)]
    assert ts == [1724788801000, 1724788802000, 1724788803000]


def test_bad_rows_are_rejected_with_their_line_and_kept_apart(tmp_path):
    path = write(
        tmp_path,
        "AAPL,1724788801000,230.49\n"
        "AAPL,yesterday,230.49\n"
        "AAPL,1724788800000,230.49\n"
        "AAPL\n"
        "MSFT,1724788801000,415.5\n",
    )
    items = list(read_replay(path))
    assert [type(i).__name__ for i in items] == ["Tick", "Rejected", "Rejected", "Rejected", "Tick"]
    assert "line 2" in items[1].reason
    assert "goes back in time" in items[2].reason and items[2].raw == b"AAPL,1724788800000,230.49"


def test_contract_breaking_rows_are_passed_on_unchanged_for_the_contract_to_refuse(tmp_path):
    path = write(tmp_path, "aapl,1724788801,0\n")
    [tick] = read_replay(path)
    assert tick == Tick("aapl", 0.0, 0, 1724788801, "replay")


def test_symbols_filter(tmp_path):
    path = write(tmp_path, "AAPL,1724788801000,1\nMSFT,1724788801000,2\n")
    assert [t.symbol for t in read_replay(path, ["MSFT"])] == ["MSFT"]


def test_replay_speed_scales_the_files_time(tmp_path):
    path = write(tmp_path, "".join(f"AAPL,{1724788801000 + i * 1000},1\n" for i in range(5)))
    stop = threading.Event()
    for speed, low, high in ((10.0, 0.38, 1.5), (0.0, 0.0, 0.2)):
        started = time.monotonic()
        items = list(ReplaySource(stop, path, speed).stream(()))
        took = time.monotonic() - started
        assert len(items) == 5 and not any(isinstance(i, Rejected) for i in items)
        assert low <= took < high, (speed, took)
