"""The batch compressions the producer can use: what kafka-python can write here."""

from __future__ import annotations

import argparse

from common.settings import one_of

COMPRESSIONS = ("none", "gzip", "snappy", "lz4", "zstd")


def compression(text: str) -> str | None:
    """An argparse check: a compression kafka-python can write on this machine (None: none).
    gzip is in the standard library; the others need their Python library installed."""
    name = one_of(COMPRESSIONS)(text)
    if name == "none":
        return None
    from kafka import codec

    if not getattr(codec, f"has_{name}")():
        raise argparse.ArgumentTypeError(
            f"{name}: its Python library is not installed; use gzip or none"
        )
    return name
