"""Benchmarks: the top layer, free to import every stage and the stack they run on."""
