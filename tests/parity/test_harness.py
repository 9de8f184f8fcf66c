"""The harness itself: the worker runs real Caffe2 and reports its errors."""

import numpy as np
import pytest
from harness import Caffe2Error

from caffe2ops import core


def test_worker_runs_caffe2_clip(caffe2):
    op = core.CreateOperator("Clip", ["X"], ["Y"], min=-1.0, max=1.0)
    out = caffe2.run_ops(op, {"X": np.array([-2.0, 0.5, 3.0], np.float32)}, ["Y"])
    np.testing.assert_array_equal(out["Y"], np.array([-1.0, 0.5, 1.0], np.float32))


def test_worker_reports_caffe2_errors(caffe2):
    with pytest.raises(Caffe2Error, match="Nope"):
        caffe2.run_ops(core.CreateOperator("Nope", [], []), {}, [])
    assert caffe2.request("ping")["pong"]


def test_run_cases_answers_each_case_even_after_a_refusal(caffe2):
    ok = core.CreateOperator("Clip", ["X"], ["Y"], min=0.0)
    bad = core.CreateOperator("Clip", ["missing"], ["Y"])
    x = np.array([-1.0, 2.0], np.float32)
    first, second, third = caffe2.run_cases([(ok, {"X": x}, ["Y"]), (bad, {}, ["Y"]),
                                             (ok, {"X": -x}, ["Y"])])
    np.testing.assert_array_equal(first["outputs"]["Y"], np.array([0.0, 2.0], np.float32))
    assert "error" in second and "outputs" not in second
    np.testing.assert_array_equal(third["outputs"]["Y"], np.array([1.0, 0.0], np.float32))


def test_two_character_gradient_names_are_refused_with_a_reason(caffe2):
    """Caffe2 would unpack "dY" as (indices, values): a sparse gradient."""
    op = core.CreateOperator("Cos", ["X"], ["Y"])
    with pytest.raises(Caffe2Error, match="2 characters"):
        caffe2.gradient(op, ["dY"])
    ops, g_input = caffe2.gradient(op, ["Y_grad"])
    assert [o.type for o in ops] == ["CosGradient"] and g_input == ["X_grad"]

