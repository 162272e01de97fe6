"""The native stack: real ZooKeeper, Kafka and Cassandra started as local JVM processes."""

from stack.native import NativeStack, StackError
from stack.settings import StackSettings

__all__ = ["NativeStack", "StackError", "StackSettings"]
