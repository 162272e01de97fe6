"""Connecting to Cassandra: one place for the driver's policies, timeouts and consistency."""

from __future__ import annotations

from collections.abc import Sequence

from cassandra import ConsistencyLevel
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.policies import (
    DCAwareRoundRobinPolicy,
    ExponentialReconnectionPolicy,
    TokenAwarePolicy,
)

# Long enough for a busy node; short enough that a dead one is noticed and retried.
REQUEST_TIMEOUT_S = 10.0


def build_cluster(hosts: Sequence[str], port: int) -> Cluster:
    """A Cluster object; no connection is made until connect()."""
    profile = ExecutionProfile(
        # Token-aware: each write goes straight to a replica of its partition.
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
        # LOCAL_QUORUM is one replica at factor 1 and survives a node loss at factor 3.
        consistency_level=ConsistencyLevel.LOCAL_QUORUM,
        request_timeout=REQUEST_TIMEOUT_S,
    )
    return Cluster(
        list(hosts),
        port=port,
        protocol_version=5,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        # The default backs off to 10 minutes; a node back after a restart should be used
        # within seconds.
        reconnection_policy=ExponentialReconnectionPolicy(base_delay=0.5, max_delay=10.0),
        connect_timeout=10,
    )


def connect(hosts: Sequence[str], port: int) -> tuple[Cluster, Session]:
    cluster = build_cluster(hosts, port)
    return cluster, cluster.connect()
