"""The fault benchmark: python -m bench.faults (make bench-faults)."""
