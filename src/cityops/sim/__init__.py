"""The device simulator: realistic readings for every device of a city pack, sent to a node."""

from cityops.sim.simulator import Simulator

__all__ = ["Simulator"]
