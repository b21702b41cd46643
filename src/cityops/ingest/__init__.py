"""Ingest: decode and validate readings from any source, store them durably, publish them."""
