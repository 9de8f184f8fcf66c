"""CUDA kernels against the CPU reference kernels, under numba-cuda's simulator.

Run by tests/test_cuda_simulator.py in a subprocess with ``NUMBA_ENABLE_CUDASIM=1`` (the
simulator replaces numba.cuda for the whole process); skipped when collected without it.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
    pytest.skip("CUDA simulator tests run in their own process (tests/test_cuda_simulator.py)",
                allow_module_level=True)

from cuda_cases import CASES, case_params, check_case, operator_for

from caffe2ops.errors import OperatorError, OperatorIndexError
from caffe2ops.kernels.cuda import reductions, table
from caffe2ops.kernels.cuda._launch import SIMULATOR, to_device, to_host

PARAMS = case_params(pytest)


def test_simulator_is_on():
    assert SIMULATOR


@pytest.mark.parametrize("case,dtype", PARAMS)
def test_cuda_kernel_matches_reference(case, dtype):
    check_case(case, dtype, table.run, to_device, to_host)


def test_sparse_index_out_of_range_leaves_param_untouched():
    case = next(c for c in CASES if c.op_type == "SparseNormalize")
    op = operator_for(case)
    param = np.arange(12, dtype=np.float32).reshape(4, 3)
    dev = to_device(param)
    with pytest.raises(OperatorIndexError, match="out of range"):
        table.run(op, [dev, to_device(np.array([0, 4]))], [None])
    assert np.array_equal(to_host(dev), param)


def test_operator_without_cuda_kernel_raises_naming_it():
    class Op:
        type = "Pow"
        args: dict = {}

    with pytest.raises(OperatorError, match="Pow: no CUDA kernel yet"):
        table.run(Op(), [], [])


def test_wrong_dtype_is_refused_before_launch():
    case = next(c for c in CASES if c.op_type == "Cos")
    with pytest.raises(OperatorError, match="Cos: input X must be float16"):
        table.run(operator_for(case), [to_device(np.arange(3))], [None])


@pytest.mark.parametrize("ord_", [1.0, 2.0, math.inf])
def test_fused_multi_array_norm_and_scale(ord_):
    rng = np.random.default_rng(7)
    arrays = [rng.standard_normal(n).astype(np.float32) for n in (1, 0, 70, 333)]
    arrays[2][3] = 40.0
    devs = [to_device(a) for a in arrays]
    per = to_host(reductions.norms(devs, ord_))
    want = [np.linalg.norm(a.astype(np.float64), ord_) if a.size else 0.0 for a in arrays]
    np.testing.assert_allclose(per, want, rtol=1e-15)
    total = reductions.total_norm(reductions.norms(devs, ord_), ord_)
    want_total = np.linalg.norm(np.array(want), ord_)
    np.testing.assert_allclose(to_host(total), [want_total], rtol=1e-15)
    outs = [to_device(np.empty_like(a)) for a in arrays]
    reductions.scale_all(devs, total, 1.0, 1e-6, outs)
    factor = np.float32(1.0 / (want_total + 1e-6))
    for a, o in zip(arrays, outs, strict=True):
        np.testing.assert_array_max_ulp(to_host(o), a * factor, maxulp=1)


def test_reductions_are_deterministic():
    x = to_device(np.random.default_rng(3).standard_normal(999).astype(np.float32))
    out = [to_host(reductions.sum_of(x, False, False, to_device(np.zeros((), np.float32))))
           for _ in range(3)]
    assert out[0].tobytes() == out[1].tobytes() == out[2].tobytes()
