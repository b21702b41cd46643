"""Labelled anomalies for every scenario rule, injected into the simulated stream so that
detection can be scored: `AnomalyPlan` decides and applies them (usable in-process on any
rows), `AnomalousSimulator` is the simulator with a plan, `Label` what is written per rule an
anomaly sets off."""

from cityops.sim.anomalies.plan import AnomalyPlan, KindRows, Label
from cityops.sim.anomalies.simulator import AnomalousSimulator

__all__ = ["AnomalousSimulator", "AnomalyPlan", "KindRows", "Label"]
