"""The fleet's pure parts: the symbols znode's format, the even share, the CLI's checks."""

from __future__ import annotations

import json

import pytest

from common.fleet import MAX_LIST_BYTES, SymbolListError, decode_symbols, encode_symbols, share
from producer.symbols_cli import _edit, build_parser


def test_a_list_round_trips_and_keeps_its_order_once_each() -> None:
    assert decode_symbols(encode_symbols(["MSFT", "AAPL"])) == ("MSFT", "AAPL")
    assert decode_symbols(b'{"symbols": ["A", "B", "A"]}') == ("A", "B")


@pytest.mark.parametrize(
    "data",
    [None, b"", b"not json", b"[]", b'{"symbols": "AAPL"}', b'{"symbols": ["aapl"]}',
     b'{"symbols": [12]}', b'{"other": []}'],
)  # fmt: skip
def test_anything_else_is_refused_with_a_bounded_reason(data) -> None:
    with pytest.raises(SymbolListError) as refused:
        decode_symbols(data)
    assert len(str(refused.value)) < 600


def test_a_huge_znode_is_refused_before_it_is_parsed() -> None:
    huge = json.dumps({"symbols": ["A"] * MAX_LIST_BYTES}).encode()
    with pytest.raises(SymbolListError, match="bytes"):
        decode_symbols(huge)


def test_encoding_refuses_a_bad_symbol() -> None:
    with pytest.raises(ValueError):
        encode_symbols(["AAPL", "drop table"])


@pytest.mark.parametrize(("symbols", "members", "most"), [(12, 3, 4), (13, 3, 5), (2, 3, 1),
                                                          (0, 3, 0), (5, 0, 0)])  # fmt: skip
def test_the_share_spreads_symbols_evenly(symbols, members, most) -> None:
    assert share(symbols, members) == most
    if members:
        assert most * members >= symbols  # every symbol has a member with room for it


def test_the_cli_edits_a_list_in_order() -> None:
    assert _edit("add", ("C",))(("A", "B")) == ("A", "B", "C")
    assert _edit("remove", ("A",))(("A", "B")) == ("B",)
    assert _edit("set", ("X", "Y"))(("A",)) == ("X", "Y")


def test_the_cli_takes_its_zookeeper_after_the_command() -> None:
    args = build_parser().parse_args(["add", "AAPL", "MSFT", "--coordinator", "z:2181"])
    assert (args.command, args.symbols, args.coordinator) == ("add", ["AAPL", "MSFT"], "z:2181")
