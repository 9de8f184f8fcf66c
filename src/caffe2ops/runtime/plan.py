"""Run a ``PlanDef``: its nets, then its execution steps (Caffe2's ``RunPlan``).

A step runs its substeps in order, or its networks in order, ``num_iter`` times (default once),
stopping early when ``should_stop_blob`` holds true after an iteration; ``only_once`` substeps
run on the first iteration only. Concurrent substeps run one after the other (a valid schedule
of Caffe2's). ``criteria_network``, ``report_net``, ``run_every_ms`` and ``create_workspace`` are
refused, naming the step: caffe2ops does not run them.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import numpy as np

from caffe2ops.errors import OperatorError
from caffe2ops.runtime.net import NetInstance

_UNSUPPORTED = ("criteria_network", "report_net", "run_every_ms", "create_workspace")


def _check(step) -> None:
    for field in _UNSUPPORTED:
        if step.HasField(field):
            raise OperatorError(f"RunPlan: step '{step.name}' uses '{field}', which caffe2ops "
                                "does not support")
    if step.substep and step.network:
        raise OperatorError(f"RunPlan: step '{step.name}' has both substeps and networks")
    for sub in step.substep:
        _check(sub)


def _should_stop(step, blobs) -> bool:
    if not step.should_stop_blob:
        return False
    value = blobs.get(step.should_stop_blob)
    return value is not None and bool(np.asarray(value).reshape(-1)[0])


def _run_step(step, nets: dict[str, NetInstance], blobs: MutableMapping[str, Any]) -> None:
    iterations = step.num_iter if step.HasField("num_iter") else 1
    for k in range(iterations):
        if step.substep:
            for sub in step.substep:
                if sub.only_once and k > 0:
                    continue
                _run_step(sub, nets, blobs)
        for name in step.network:
            if name not in nets:
                raise OperatorError(f"RunPlan: step '{step.name}' runs net '{name}', which the "
                                    "plan does not define")
            nets[name].run(blobs)
        if _should_stop(step, blobs):
            break


def run_plan(plan, blobs: MutableMapping[str, Any], nets: dict[str, NetInstance]) -> None:
    """Create the plan's nets in ``nets`` (replacing same-named ones), then run its steps."""
    for step in plan.execution_step:
        _check(step)
    for net_def in plan.network:
        nets[net_def.name] = NetInstance(net_def)
    for step in plan.execution_step:
        _run_step(step, nets, blobs)
