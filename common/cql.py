"""Connecting to Cassandra the same way in every stage: the driver's policies, timeouts and the
consistency level (CASSANDRA_CONSISTENCY, common.settings), for storage's writes and for the
reads of the query CLI and the dashboard alike."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# The levels a stage may be configured with. LOCAL_QUORUM (the default) is the one replica at
# replication factor 1 and 2 of 3 at factor 3: a write or read goes on with a node down, and a
# read after a write sees it (2 + 2 > 3).
CONSISTENCY_LEVELS = ("one", "local_one", "two", "quorum", "local_quorum", "each_quorum", "all")
DEFAULT_CONSISTENCY = "local_quorum"
# Long enough for a busy node; short enough that a dead one is noticed and retried.
REQUEST_TIMEOUT_S = 10.0


def execution_profile(
    consistency: str = DEFAULT_CONSISTENCY,
    request_timeout_s: float = REQUEST_TIMEOUT_S,
    **more: Any,
) -> Any:
    from cassandra import ConsistencyLevel
    from cassandra.cluster import ExecutionProfile
    from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy

    return ExecutionProfile(
        # Token-aware: each request goes straight to a replica of its partition.
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
        consistency_level=ConsistencyLevel.name_to_value[consistency.upper()],
        request_timeout=request_timeout_s,
        **more,
    )


def build_cluster(
    hosts: Sequence[str],
    port: int,
    consistency: str = DEFAULT_CONSISTENCY,
    *,
    request_timeout_s: float = REQUEST_TIMEOUT_S,
    profiles: Mapping[str, Any] | None = None,
) -> Any:
    """A Cluster object (no connection until connect()); `profiles` adds named ones."""
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster
    from cassandra.policies import ExponentialReconnectionPolicy

    default = execution_profile(consistency, request_timeout_s)
    return Cluster(
        list(hosts),
        port=port,
        protocol_version=5,
        execution_profiles={EXEC_PROFILE_DEFAULT: default, **(profiles or {})},
        # The default backs off to 10 minutes; a node back after a restart should be used
        # within seconds.
        reconnection_policy=ExponentialReconnectionPolicy(base_delay=0.5, max_delay=10.0),
        connect_timeout=10,
    )


def connect(
    hosts: Sequence[str], port: int, consistency: str = DEFAULT_CONSISTENCY
) -> tuple[Any, Any]:
    cluster = build_cluster(hosts, port, consistency)
    return cluster, cluster.connect()
