"""Scenarios, the detect side of the domain core: rule specs, evaluators, alert episodes."""
