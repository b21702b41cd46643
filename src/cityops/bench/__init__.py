"""Benchmarks: each prints one JSON object on its last line and measures its own limit."""
