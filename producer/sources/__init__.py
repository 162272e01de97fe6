"""Price sources behind one small interface (see base.py); `build_source` picks one by name."""

from __future__ import annotations

import threading

from producer.http_client import HttpClient, SourceError
from producer.settings import ProducerSettings
from producer.sources.base import (
    Failed,
    Item,
    NoData,
    PolledSource,
    Rejected,
    StreamSource,
)

__all__ = [
    "Failed",
    "Item",
    "NoData",
    "PolledSource",
    "Rejected",
    "SourceError",
    "StreamSource",
    "build_source",
]


def build_source(
    settings: ProducerSettings, stop: threading.Event, http: HttpClient | None = None
) -> PolledSource | StreamSource:
    """The configured source; polled sources share `http` (one session, one retry policy)."""
    name = settings.source
    if name == "simulated":
        from producer.sources.simulated import SimulatedSource

        return SimulatedSource(stop, settings.sim_seed, settings.sim_rate, settings.sim_start_ms)
    if name == "replay":
        from producer.sources.replay import ReplaySource

        assert settings.replay_file is not None  # checked when the settings were parsed
        return ReplaySource(stop, settings.replay_file, settings.replay_speed)
    if http is None:
        http = HttpClient(
            stop,
            timeout_s=settings.http_timeout_ms / 1000,
            retries=settings.http_retries,
            backoff_s=settings.http_backoff_ms / 1000,
        )
    if name == "yahoo":
        from producer.sources.yahoo import YahooSource

        return YahooSource(http, settings.yahoo_base_url)
    if name == "stooq":
        from producer.sources.stooq import StooqSource

        return StooqSource(http, settings.stooq_base_url)
    if name == "finnhub":
        from producer.sources.finnhub import FinnhubSource

        assert settings.finnhub_api_key is not None  # checked when the settings were parsed
        return FinnhubSource(http, settings.finnhub_base_url, settings.finnhub_api_key)
    raise ValueError(f"unknown source {name!r}")
