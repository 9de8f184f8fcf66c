"""Dense training operators beyond the generic table: fused kernels against the reference kernels
(parallel paths included), the fillers' random stream and seeding, the allocation limit, float16
FC, and the gradient operators a small training net gets."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from optable import assert_same

import caffe2ops as c2
from caffe2ops import core, workspace
from caffe2ops.errors import OperatorValueError

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)


pytestmark = pytest.mark.usefixtures("fresh_workspace")


def _inputs(n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-30, 30, n).astype(dtype)
    x[: min(n, 6)] = np.array([np.nan, np.inf, -np.inf, -0.0, 1e-30, 88.5], dtype)[: min(n, 6)]
    return x, rng.standard_normal(n).astype(dtype)


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("n", [1, 1000, 100_003])
def test_fused_activation_kernels_give_the_reference_bits(name, dtype, n):
    x, dy = _inputs(n, dtype)
    forward, backward = getattr(c2, name), getattr(c2, f"{name}_gradient")
    with c2.reference_kernels():
        y_ref = forward(x)
        dx_ref = backward(y_ref, dy)
    y = forward(x)
    assert y.tobytes() == y_ref.tobytes(), name
    assert backward(y_ref, dy).tobytes() == dx_ref.tobytes(), f"{name}_gradient"
    inplace = x.copy()
    assert forward(inplace, out=inplace) is inplace
    assert inplace.tobytes() == y_ref.tobytes(), f"{name} in place"
    g = dy.copy()
    assert backward(y_ref, g, out=g) is g
    assert g.tobytes() == dx_ref.tobytes(), f"{name}_gradient in place"


def test_float16_activations_round_the_float64_formula_once():
    x = np.linspace(-8, 8, 101).astype(np.float16)
    v = x.astype(np.float64)
    assert_same(c2.sigmoid(x), (1 / (1 + np.exp(-v))).astype(np.float16))
    assert_same(c2.tanh(x), np.tanh(v).astype(np.float16))


def test_fc_float16_computes_in_float32_and_rounds_once():
    rng = np.random.default_rng(1)
    x, w, b = (rng.standard_normal(s).astype(np.float16) for s in ((8, 64), (5, 64), (5,)))
    y = c2.fc(x, w, b)
    expected = (x.astype(np.float32) @ w.astype(np.float32).T + b.astype(np.float32))
    assert y.dtype == np.float16
    assert_same(y, expected.astype(np.float16))


def test_fc_gradient_two_outputs_through_the_runtime():
    rng = np.random.default_rng(2)
    x, w, dy = (rng.standard_normal(s).astype(np.float32) for s in ((3, 4), (2, 4), (3, 2)))
    for name, value in (("X", x), ("W", w), ("dY", dy)):
        workspace.FeedBlob(name, value)
    workspace.RunOperatorOnce(core.CreateOperator("FCGradient", ["X", "W", "dY"], ["dW", "db"]))
    np.testing.assert_allclose(workspace.FetchBlob("dW"), dy.T @ x, rtol=1e-6)
    np.testing.assert_allclose(workspace.FetchBlob("db"), dy.sum(0), rtol=1e-6)
    assert not workspace.HasBlob("dX")


def test_training_net_gradient_operators_are_caffe2s():
    net = core.Net("dense_grads")
    net.FC(["X", "W", "b"], ["H"])
    net.Relu(["H"], ["H"])
    net.Sigmoid(["H"], ["P"])
    net.SquaredL2Distance(["P", "T"], ["D"])
    net.AveragedLoss(["D"], ["L"])
    net.AddGradientOperators(["L"])
    grads = [(op.type, list(op.input), list(op.output)) for op in net.Proto().op[5:]]
    assert grads == [
        ("ConstantFill", ["L"], ["L_autogen_grad"]),
        ("AveragedLossGradient", ["D", "L_autogen_grad"], ["D_grad"]),
        ("SquaredL2DistanceGradient", ["P", "T", "D_grad"], ["P_grad", "T_grad"]),
        ("SigmoidGradient", ["P", "P_grad"], ["H_grad"]),
        ("ReluGradient", ["H", "H_grad"], ["H_grad"]),
        ("FCGradient", ["X", "W", "H_grad"], ["W_grad", "b_grad", "X_grad"]),
    ]


# -- fillers ------------------------------------------------------------------------------------


def _run_fill(op_type, seed=None, **args):
    option = core.DeviceOption(0, random_seed=seed) if seed is not None else None
    op = core.CreateOperator(op_type, [], ["Y"], device_option=option, **args)
    workspace.RunOperatorOnce(op)
    return workspace.FetchBlob("Y")


@pytest.mark.parametrize("op_type,fn,args", [
    ("UniformFill", c2.uniform_fill, {"min": -2.0, "max": 5.0}),
    ("GaussianFill", c2.gaussian_fill, {"mean": 1.0, "std": 3.0}),
    ("XavierFill", c2.xavier_fill, {}),
    ("MSRAFill", c2.msra_fill, {}),
])
def test_functional_fillers_equal_the_seeded_operators(op_type, fn, args):
    shape = [31, 7]
    a = fn(shape, seed=42, **args)
    assert_same(a, _run_fill(op_type, 42, shape=shape, **args))
    assert_same(a, _run_fill(op_type, 42, shape=shape, **args))  # deterministic for a seed
    assert not np.array_equal(a, fn(shape, seed=43, **args))
    assert not np.array_equal(_run_fill(op_type, shape=shape, **args),
                              _run_fill(op_type, shape=shape, **args))  # unseeded: fresh


def test_generator_streams_continue():
    g = c2.CaffeRandom(9)
    both = np.concatenate([c2.uniform_fill([5], generator=g), c2.uniform_fill([6], generator=g)])
    assert_same(both, c2.uniform_fill([11], seed=9))
    g = c2.CaffeRandom(9)
    both = np.concatenate([c2.gaussian_fill([4], generator=g), c2.gaussian_fill([6], generator=g)])
    assert_same(both, c2.gaussian_fill([10], seed=9))


def test_a_net_filler_continues_its_stream_across_runs():
    net = core.Net("fill_stream")
    net.Proto().op.append(core.CreateOperator("GaussianFill", [], ["Y"], shape=[3, 4],
                                              device_option=core.DeviceOption(0, random_seed=4)))
    workspace.CreateNet(net)
    runs = []
    for _ in range(2):
        workspace.RunNet(net.Name())
        runs.append(workspace.FetchBlob("Y"))
    g = c2.CaffeRandom(4)
    assert_same(runs[0], c2.gaussian_fill([3, 4], generator=g))
    assert_same(runs[1], c2.gaussian_fill([3, 4], generator=g))


def test_allocation_limit_is_configurable_and_checked_before_allocating():
    previous = c2.set_max_blob_bytes(1000)
    try:
        with pytest.raises(OperatorValueError, match="UniformFill.*shape.*limit"):
            _run_fill("UniformFill", shape=[251])
        assert not workspace.HasBlob("Y")
        with pytest.raises(OperatorValueError, match="GivenTensorFill.*limit"):
            c2.given_tensor_fill([0.0] * 300, shape=[300])
        assert _run_fill("UniformFill", shape=[250]).shape == (250,)
    finally:
        assert c2.set_max_blob_bytes(previous) == 1000


def test_given_tensor_int64_values_are_exact():
    values = [2**62 + 1, -(2**53) - 1, 7]
    y = _run_fill("GivenTensorInt64Fill", shape=[3], values=values)
    assert y.dtype == np.int64 and y.tolist() == values


@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=300))
def test_activation_kernels_match_the_reference_on_any_float32_bits(bits):
    x = np.array(bits, np.uint32).view(np.float32)
    dy = x[::-1].copy()
    for name in ("relu", "sigmoid", "tanh"):
        forward, backward = getattr(c2, name), getattr(c2, f"{name}_gradient")
        with c2.reference_kernels():
            y_ref, dx_ref = forward(x), backward(x, dy)
        assert forward(x).tobytes() == y_ref.tobytes(), name
        assert backward(x, dy).tobytes() == dx_ref.tobytes(), name
