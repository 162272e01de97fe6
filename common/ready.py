"""A ready file: how a stage says it is running, for whatever started it to wait on.

A stage given READY_FILE creates it once it does its work (storage consuming, the processor's
queries started) and removes it when it stops. A supervisor waits for the file, not for a line
in a log whose wording is free to change.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def ready(path: Path | None) -> Iterator[None]:
    """The file exists while the block runs (nothing happens for None)."""
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole under another name, then renamed: a reader never sees half a file.
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(f"pid={os.getpid()} ready_at={time.time():.3f}\n")
    partial.replace(path)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
