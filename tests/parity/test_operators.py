"""Every registered operator that Caffe2 had, on every case of the table, here and in Caffe2;
outputs compared bit for bit or within the bound of bounds.py (one worker round trip per
operator)."""

from __future__ import annotations

import numpy as np
import pytest
from bounds import bound, departure_for
from cases import CASES, NOT_IN_CAFFE2, operators
from record import RECORDER, bits_equal, ulp_distance

from caffe2ops import core, reference_kernels, workspace
from caffe2ops.runtime.schema import registered_types


def make_op(case):
    return core.CreateOperator(case.op, list(case.input_names), list(case.output_names),
                               **case.args)


def feeds(case) -> dict:
    return dict(zip(case.input_names, case.inputs, strict=True))


def run_ours(case):
    workspace.ResetWorkspace()
    try:
        for name, x in feeds(case).items():
            workspace.FeedBlob(name, x)
        workspace.RunOperatorOnce(make_op(case))
        return {n: workspace.FetchBlob(n) for n in case.output_names}
    except Exception as exc:  # compared with Caffe2's answer below
        return exc


def judge(rec, case, ours, theirs, backend: str = "fast") -> None:
    """Fold one case into the operator's record (a failure is a message in rec.failures)."""
    what = f"[{backend} kernels] {case.desc} {case.args}"
    caffe2_error = theirs.get("error")
    if isinstance(ours, Exception):
        if caffe2_error:
            rec.both_refuse += 1
        else:
            rec.failures.append(f"{what}: we raise {type(ours).__name__}: {ours}; Caffe2 runs")
        return
    departure = departure_for(case.op, case)
    if caffe2_error:
        if departure is None:
            rec.failures.append(f"{what}: Caffe2 refuses ({caffe2_error[:160]}), we accept, "
                                "and no documented departure covers it")
        else:
            rec.departures[f"Caffe2 refuses: {departure.key}"] += 1
        return
    dist, same = 0, True
    for name in case.output_names:
        got, want = np.asarray(ours[name]), np.asarray(theirs["outputs"][name])
        same = same and bits_equal(got, want)
        dist = max(dist, ulp_distance(got, want))
    if same:
        rec.cases += 1
        rec.bit_identical += 1
    elif dist <= rec.bound:
        rec.cases += 1
        rec.max_ulp = max(rec.max_ulp, dist)
    elif departure is not None:
        rec.departures[f"differs: {departure.key}"] += 1
    else:
        detail = "; ".join(
            f"{n}: ours {np.asarray(ours[n]).dtype}{np.asarray(ours[n]).ravel()[:6]} Caffe2 "
            f"{np.asarray(theirs['outputs'][n]).dtype}{np.asarray(theirs['outputs'][n]).ravel()[:6]}"
            for n in case.output_names)
        rec.failures.append(f"{what}: {dist} ulp > bound {rec.bound}: {detail}")


@pytest.mark.parametrize("op", operators())
def test_operator_matches_caffe2(caffe2, op):
    """Both of our backends (the fast kernels, loaded by tests/conftest.py, and the NumPy
    reference kernels) against one Caffe2 run of every case."""
    cases = CASES.get(op, [])
    assert cases, f"{op}: no parity cases (add samples to tests/optable.py or cases.py)"
    rec = RECORDER.row(op, bound(op))
    theirs = caffe2.run_cases([(make_op(c), feeds(c), c.output_names) for c in cases])
    fast = [run_ours(case) for case in cases]
    with reference_kernels():
        reference = [run_ours(case) for case in cases]
    for backend, ours in (("fast", fast), ("reference", reference)):
        for case, o, t in zip(cases, ours, theirs, strict=True):
            judge(rec, case, o, t, backend)
    assert not rec.failures, f"{op}:\n" + "\n".join(rec.failures[:20])
    assert rec.cases + rec.both_refuse + sum(rec.departures.values()) == 2 * len(cases)


def test_operators_without_a_caffe2_counterpart_are_named():
    for op, why in NOT_IN_CAFFE2.items():
        RECORDER.row(f"{op} (not compared)").departures[why] += 1
    assert set(NOT_IN_CAFFE2) <= set(registered_types())


def test_int_float_arguments_are_a_documented_departure(caffe2):
    """README: float arguments accept ints; Caffe2 refused `min=0`."""
    x = np.array([-1.0, 0.5, 2.0], np.float32)
    op = core.CreateOperator("Clip", ["X"], ["Y"], min=0, max=1)
    assert op.arg[0].HasField("i")
    workspace.FeedBlob("X", x)
    workspace.RunOperatorOnce(op)
    np.testing.assert_array_equal(workspace.FetchBlob("Y"), np.clip(x, 0, 1))
    (result,) = caffe2.run_cases([(op, {"X": x}, ["Y"])])
    assert "error" in result, "Caffe2 now accepts int float-arguments: drop the departure"
    RECORDER.row("Clip").departures["Caffe2 refuses: int value for a float argument"] += 1
