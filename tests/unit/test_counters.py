"""The counters' line and its pacing, shared by the producer and storage."""

from __future__ import annotations

from dataclasses import dataclass

from common.counters import Counters, Every
from producer.stats import ProducerCounters
from storage.consumer import StorageCounters


@dataclass
class _Two(Counters):
    read: int = 0
    refused: int = 0


def test_line_names_every_field_in_declaration_order() -> None:
    c = _Two()
    c.read += 3
    assert c.line() == "read=3 refused=0"


def test_both_stages_log_the_same_shape() -> None:
    for counters in (ProducerCounters(), StorageCounters()):
        pairs = [part.split("=") for part in counters.line().split(" ")]
        assert pairs and all(len(p) == 2 and p[1] == "0" for p in pairs)


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_every_is_due_once_per_period_from_start() -> None:
    clock = _Clock()
    every = Every(10.0, clock)
    clock.now = 105.0
    every.start()
    clock.now = 114.9
    assert not every.due()
    clock.now = 115.0
    assert every.due()
    assert not every.due()
    clock.now = 124.9
    assert not every.due()
    clock.now = 125.0
    assert every.due()
