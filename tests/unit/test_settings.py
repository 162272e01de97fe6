import argparse

import pytest

from common.settings import EnvArgumentParser, duration_ms, format_duration, positive_int


def parser(environ):
    p = EnvArgumentParser(prog="x", environ=environ)
    p.add_env_argument("--interval", env="FETCH_INTERVAL", type=float, default=5.0, help="s")
    p.add_env_argument("--count", env="COUNT", type=positive_int, default=1, help="n")
    p.add_env_flag("--verbose", env="VERBOSE", help="more output")
    return p


def test_flag_beats_env_and_env_beats_default():
    assert parser({}).parse_args([]).interval == 5.0
    assert parser({"FETCH_INTERVAL": "2.5"}).parse_args([]).interval == 2.5
    assert parser({"FETCH_INTERVAL": "2.5"}).parse_args(["--interval", "1"]).interval == 1.0


def test_bad_env_value_fails_like_a_bad_flag(capsys):
    with pytest.raises(SystemExit) as exc:
        parser({"COUNT": "-3"}).parse_args([])
    assert exc.value.code == 2
    assert capsys.readouterr().err == (
        "x: error: environment variable COUNT='-3': must be a whole number above 0, got -3\n"
    )


def test_help_names_the_env_twin():
    assert "[env: FETCH_INTERVAL]" in parser({}).format_help()


def test_boolean_env_flags():
    assert parser({"VERBOSE": "true"}).parse_args([]).verbose is True
    assert parser({}).parse_args([]).verbose is False
    assert parser({"VERBOSE": "1"}).parse_args(["--no-verbose"]).verbose is False


@pytest.mark.parametrize(
    ("text", "ms"),
    [("500ms", 500), ("10s", 10_000), ("1m", 60_000), ("2h", 7_200_000), ("1d", 86_400_000),
     ("30", 30_000), ("1.5s", 1500)],
)  # fmt: skip
def test_durations(text, ms):
    assert duration_ms(text) == ms


@pytest.mark.parametrize("text", ["", "abc", "10x", "-5s", "0s"])
def test_bad_durations_are_refused(text):
    with pytest.raises(argparse.ArgumentTypeError):
        duration_ms(text)


def test_format_duration_is_the_inverse_for_whole_units():
    for text in ("10s", "1m", "5m", "1h", "1d", "250ms"):
        assert format_duration(duration_ms(text)) == text
