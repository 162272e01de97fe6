"""The whole pipeline at fixed offered rates, per-stage figures (`python -m bench.pipeline`)."""
