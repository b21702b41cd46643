"""Event buses: one backend per module behind the `Bus` protocol."""
