"""The bars' hand-written JSON is the JSON that json.dumps would write, and always valid."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from dashboard.encode import BAR_FIELDS, bars_json

numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(), st.none())
rows = st.lists(st.tuples(*([numbers] * len(BAR_FIELDS))), max_size=20)


def test_a_plain_row_is_an_object_of_the_bar_fields():
    row = (1_756_252_800_000, 100.0, 101.25, 99.5, 1e-9, 100.1, 12345, 60)
    assert json.loads(bars_json([row])) == [dict(zip(BAR_FIELDS, row, strict=True))]
    assert bars_json([]) == "[]"


@given(rows)
def test_any_row_gives_valid_json_with_null_for_what_json_cannot_hold(generated):
    decoded = json.loads(bars_json(generated), parse_constant=lambda c: ValueError(c))
    assert len(decoded) == len(generated)
    for got, row in zip(decoded, generated, strict=True):
        assert list(got) == list(BAR_FIELDS)
        for name, value in zip(BAR_FIELDS, row, strict=True):
            if value is None or (isinstance(value, float) and value != value):
                assert got[name] is None
            elif isinstance(value, float) and abs(value) == float("inf"):
                assert got[name] is None
            else:
                assert got[name] == value
