import pytest

from storage import schema
from storage.settings import replication


def test_schema_renders_for_another_keyspace_with_nothing_of_the_default_left():
    statements = schema.render("ks_test_1", replication("NetworkTopologyStrategy:dc1=3"))
    kinds = [k for k, _ in statements]
    assert kinds == ["keyspace", "table", "table", "table", "table"]
    text = "\n".join(cql for _, cql in statements)
    assert "stocks" not in text
    assert statements[0][1].startswith("CREATE KEYSPACE IF NOT EXISTS ks_test_1 WITH")
    assert "{'class': 'NetworkTopologyStrategy', 'dc1': 3}" in statements[0][1]
    for table in schema.TABLES:
        assert f"CREATE TABLE IF NOT EXISTS ks_test_1.{table} (" in text


def test_schema_file_as_written_is_the_default_keyspace():
    statements = schema.render("stocks", replication("SimpleStrategy:1"))
    assert "{'class': 'SimpleStrategy', 'replication_factor': 1}" in statements[0][1]
    ticks = next(cql for _, cql in statements if ".ticks (" in cql)
    assert "PRIMARY KEY ((symbol, day), ts, seq)" in ticks
    assert "CLUSTERING ORDER BY (ts DESC, seq DESC)" in ticks
    assert "TimeWindowCompactionStrategy" in ticks
    aggregates = next(cql for _, cql in statements if ".aggregates (" in cql)
    assert "PRIMARY KEY ((symbol, window_ms, day), window_start)" in aggregates


@pytest.mark.parametrize("bad", ["Stocks", "ks;drop", "x" * 49, "", "ks.t"])
def test_bad_keyspace_names_are_refused_before_any_cql_is_built(bad):
    with pytest.raises(schema.SchemaError):
        schema.render(bad, replication("SimpleStrategy:1"))


def test_statements_the_renderer_does_not_know_are_refused():
    with pytest.raises(schema.SchemaError, match="unexpected statement"):
        schema.render("ks", replication("SimpleStrategy:1"), text="DROP TABLE stocks.ticks;")
