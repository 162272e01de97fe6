"""`python -m producer backfill`'s arguments: the producer's options, the backfill's own."""

import pytest

from producer.backfill_cli import build_parser, parse


def test_symbols_range_interval_and_the_producers_options():
    settings, symbols = parse(
        ["AAPL,MSFT", "GOOG", "AAPL", "--range", "1y", "--interval", "1d", "--source", "stooq",
         "--stooq-base-url", "http://127.0.0.1:9"],
        {},
    )  # fmt: skip
    assert symbols == ["AAPL", "MSFT", "GOOG"]
    assert (settings.source, settings.backfill_interval) == ("stooq", "1d")
    assert settings.backfill_range_ms == 365 * 86_400_000
    assert settings.stooq_base_url == "http://127.0.0.1:9"


def test_the_environment_twins_apply():
    settings, _ = parse(["AAPL"], {"BACKFILL_RANGE": "2w", "PRICE_SOURCE": "yahoo"})
    assert (settings.backfill_range_ms, settings.source) == (14 * 86_400_000, "yahoo")


@pytest.mark.parametrize(
    ("argv", "why"),
    [
        (["aapl"], "is not valid"),
        (["AAPL", "--range", "0"], "--range must be above 0"),
        (["AAPL", "--range", "soon"], "is not a range"),
        (["AAPL", "--interval", "1h"], "is not one of: 1m, 5m, 1d"),
        (["AAPL", "--max-ticks", "5"], "unrecognized arguments"),
        ([], "the following arguments are required: symbols"),
    ],
)
def test_bad_arguments_end_with_one_line_and_exit_2(argv, why, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse(argv, {})
    assert exit_.value.code == 2
    assert why in capsys.readouterr().err


def test_help_names_the_sources_history():
    text = build_parser({}).format_help()
    assert "--range" in text and "stooq (1d)" in text and "finnhub serves no history" in text
