"""From a scenario pack's rule specs to evaluators."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from cityops.domain.scenarios import spec
from cityops.domain.scenarios.context import Context
from cityops.domain.scenarios.signals import Evaluator

# rule spec type -> (module under primitives/, evaluator class)
EVALUATORS: dict[type, tuple[str, str]] = {
    spec.Threshold: ("threshold", "ThresholdEvaluator"),
    spec.RateOfChange: ("rate", "RateOfChangeEvaluator"),
    spec.Window: ("window", "WindowEvaluator"),
    spec.Absence: ("absence", "AbsenceEvaluator"),
    spec.Quiet: ("quiet", "QuietEvaluator"),
    spec.CameraEvent: ("camera", "CameraEventEvaluator"),
    spec.Geofence: ("geofence", "GeofenceEvaluator"),
    spec.RouteDeviation: ("route", "RouteDeviationEvaluator"),
    spec.Composite: ("composite", "CompositeEvaluator"),
    spec.Baseline: ("baseline", "BaselineEvaluator"),
    spec.Outage: ("outage", "OutageEvaluator"),
}


def build(pack: spec.ScenarioPack, rule: spec.AnyRule, ctx: Context) -> Evaluator:
    module_name, class_name = EVALUATORS[type(rule)]
    module = importlib.import_module(f"cityops.domain.scenarios.primitives.{module_name}")
    make: Callable[[spec.ScenarioPack, spec.AnyRule, Context], Evaluator] = getattr(module,
                                                                                    class_name)
    return make(pack, rule, ctx)
