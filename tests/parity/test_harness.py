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
