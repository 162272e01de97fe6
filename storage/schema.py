"""schema.cql, rendered for a keyspace and replication from the settings, and applied."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from common.settings import KEYSPACE_PATTERN
from storage.settings import Replication

logger = logging.getLogger(__name__)

SCHEMA_FILE = Path(__file__).with_name("schema.cql")
DEFAULT_KEYSPACE = "stocks"
TABLES = ("ticks", "aggregates", "latest_prices", "bars")
# Columns added to schema.cql after its first release: CREATE TABLE IF NOT EXISTS leaves an
# existing table as it is, so these are added to it (table, column, type), idempotently.
ADDED_COLUMNS = (("aggregates", "written_at", "timestamp"),)

_COMMENT = re.compile(r"--[^\n]*")
_KEYSPACE_DECL = re.compile(rf"(CREATE KEYSPACE IF NOT EXISTS\s+){DEFAULT_KEYSPACE}\b")
_QUALIFIED = re.compile(rf"\b{DEFAULT_KEYSPACE}\.")
_REPLICATION = re.compile(r"replication\s*=\s*\{[^}]*\}")


class SchemaError(RuntimeError):
    """The schema could not be rendered or applied; the message says what to do."""


def render(
    keyspace: str, replication: Replication, text: str | None = None
) -> list[tuple[str, str]]:
    """The schema's statements as (kind, cql) for this keyspace, in the file's order."""
    # Identifiers cannot be bind markers; the pattern check is what makes formatting safe.
    if not KEYSPACE_PATTERN.match(keyspace):
        raise SchemaError(f"keyspace name {keyspace!r} is not [a-z][a-z0-9_]{{0,47}}")
    text = SCHEMA_FILE.read_text() if text is None else text
    statements = []
    for raw in _COMMENT.sub("", text).split(";"):
        cql = " ".join(raw.split())
        if not cql:
            continue
        if _KEYSPACE_DECL.search(cql):
            cql = _KEYSPACE_DECL.sub(rf"\g<1>{keyspace}", cql)
            cql, n = _REPLICATION.subn(f"replication = {replication.cql_map()}", cql)
            if n != 1:
                raise SchemaError("schema.cql: CREATE KEYSPACE has no replication map")
            statements.append(("keyspace", cql))
        elif cql.startswith("CREATE TABLE IF NOT EXISTS"):
            cql, n = _QUALIFIED.subn(f"{keyspace}.", cql)
            if n != 1:
                raise SchemaError(f"schema.cql: table not qualified with {DEFAULT_KEYSPACE}.")
            statements.append(("table", cql))
        else:
            raise SchemaError(f"schema.cql: unexpected statement {cql[:60]!r}")
    return statements


def apply(session: Any, keyspace: str, replication: Replication) -> None:
    """Create the keyspace and tables when missing. Existing ones are left as they are."""
    for _kind, cql in render(keyspace, replication):
        session.execute(cql, timeout=60)
        logger.debug("applied %s", cql[:80])
    for table, column, kind in ADDED_COLUMNS:
        # Constants above and a validated keyspace: nothing here comes from data.
        session.execute(
            f"ALTER TABLE {keyspace}.{table} ADD IF NOT EXISTS {column} {kind}", timeout=60
        )
    row = session.execute(
        "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s", (keyspace,)
    ).one()
    if row is not None and _normalise(row.replication) != _normalise(_wanted(replication)):
        # CREATE ... IF NOT EXISTS never changes a keyspace; say so rather than pretend.
        logger.warning(
            "keyspace=%s exists with replication=%s, not the configured %s: change it with "
            "ALTER KEYSPACE, then run a repair",
            keyspace,
            dict(row.replication),
            replication,
        )
    logger.info("schema ready keyspace=%s tables=%s", keyspace, ",".join(TABLES))


def _wanted(replication: Replication) -> dict[str, str]:
    cls = f"org.apache.cassandra.locator.{replication.strategy}"
    return {"class": cls, **{k: str(v) for k, v in replication.factors}}


def _normalise(replication: dict[str, str]) -> dict[str, str]:
    return {k: str(v) for k, v in replication.items()}
