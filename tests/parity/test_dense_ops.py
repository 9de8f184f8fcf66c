"""Parity of the dense training operators with real Caffe2 1.5.0 (``make parity``).

Forward and gradient numbers: bit for bit where Caffe2's kernel is a fixed element-wise formula
(Relu, Sigmoid, Tanh and their gradients, SquaredL2DistanceGradient, the Sum* gradients, Max,
MaxGradient, the copies, every filler — the random ones seeded through
``DeviceOption.random_seed``); within a stated bound where Caffe2 sums through BLAS or Eigen in an
order we do not reproduce:

* FC / FCGradient: ``|ours − Caffe2| ≤ K·2⁻²³·(|X|·|W|ᵀ + |b|)`` element-wise (K the inner
  size; the usual GEMM error bound for two different summation orders), for dX/dW likewise with
  the inner size of that product.
* SquaredL2Distance: ``≤ 4·D·2⁻²⁴·(x·x + y·y)`` per row (Caffe2's three BLAS dots).
* SumElements / AveragedLoss / SumSqrElements: ``≤ n·2⁻²⁴·Σ|x|`` (or ``Σx²``).

Gradient OperatorDefs are compared as serialized bytes (type, inputs, outputs, arguments, name,
engine, device option, ``is_gradient_op``).
"""

from __future__ import annotations

import numpy as np
import pytest
from harness import Caffe2Error

from caffe2ops import core, workspace
from caffe2ops.errors import OperatorError

F32 = np.float32
U24 = 2.0**-24


def ours(ops, feeds, fetch):
    workspace.SwitchWorkspace("parity_dense", True)
    workspace.ResetWorkspace()
    for name, value in feeds.items():
        workspace.FeedBlob(name, value)
    for op in ops:
        workspace.RunOperatorOnce(op)
    return {name: workspace.FetchBlob(name) for name in fetch}


def both(caffe2, ops, feeds, fetch):
    ops = [ops] if hasattr(ops, "SerializeToString") else list(ops)
    return ours(ops, feeds, fetch), caffe2.run_ops(ops, feeds, fetch)


def assert_bits(a, b, what=""):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, (
        f"{what}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}")
    assert a.tobytes() == b.tobytes() or (
        np.array_equal(np.isnan(a), np.isnan(b))
        and np.array_equal(a[~np.isnan(a)].view(np.uint8), b[~np.isnan(b)].view(np.uint8))
    ), f"{what}: max |diff| {np.nanmax(np.abs(a.astype(np.float64) - b))}"


def assert_within(a, b, bound, what=""):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, (
        f"{what}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}")
    diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
    assert np.all(diff <= bound), f"{what}: max |diff| {diff.max()} > bound {np.min(bound)}"


def rand(seed, shape, lo=-2.0, hi=2.0):
    return np.random.RandomState(seed).uniform(lo, hi, size=shape).astype(F32)


def specials():
    return np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -3.0, 1e-30, -1e-30,
                     20.0, -20.0, 88.0, -88.0, 100.0, -100.0, 9.0, -9.0, 8.99], F32)


# -- element-wise: bit for bit ------------------------------------------------------------------

ACTIVATIONS = ["Relu", "Sigmoid", "Tanh"]


@pytest.mark.parametrize("op_type", ACTIVATIONS)
@pytest.mark.parametrize("n", [5, 37, 4099, 100_003])
def test_activation_forward_bits(caffe2, op_type, n):
    x = rand(n, n, -25.0, 25.0)
    x[: min(n, 20)] = specials()[: min(n, 20)]
    a, b = both(caffe2, core.CreateOperator(op_type, ["X"], ["Y"]), {"X": x}, ["Y"])
    assert_bits(a["Y"], b["Y"], op_type)


@pytest.mark.parametrize("op_type", ACTIVATIONS)
def test_activation_in_place_and_brew_args(caffe2, op_type):
    x = rand(1, (3, 7))
    op = core.CreateOperator(op_type, ["X"], ["X"], order="NCHW", cudnn_exhaustive_search=False)
    a, b = both(caffe2, op, {"X": x}, ["X"])
    assert_bits(a["X"], b["X"], op_type)


@pytest.mark.parametrize("op_type", ACTIVATIONS)
def test_activation_gradient_bits(caffe2, op_type):
    y = rand(2, 5003, -1.0, 1.0)
    y[:20] = specials()
    dy = rand(3, 5003)
    dy[20:30] = [np.inf, -np.inf, np.nan, 0.0, -0.0, 1e30, -1e30, 1e-38, 3.0, -3.0]
    op = core.CreateOperator(f"{op_type}Gradient", ["Y", "dY"], ["dX"])
    a, b = both(caffe2, op, {"Y": y, "dY": dy}, ["dX"])
    assert_bits(a["dX"], b["dX"], f"{op_type}Gradient")
    op = core.CreateOperator(f"{op_type}Gradient", ["Y", "dY"], ["dY"])
    a, b = both(caffe2, op, {"Y": y, "dY": dy}, ["dY"])
    assert_bits(a["dY"], b["dY"], f"{op_type}Gradient in place")


def test_max_and_gradient_bits(caffe2):
    xs = {f"X{i}": rand(10 + i, (4, 9)) for i in range(3)}
    xs["X1"][0, :5] = [np.nan, 1.0, -0.0, 0.0, 5.0]
    xs["X0"][0, :5] = [1.0, np.nan, 0.0, -0.0, 5.0]
    xs["X2"][1, :3] = xs["X0"][1, :3]  # ties
    fwd = core.CreateOperator("Max", ["X0", "X1", "X2"], ["M"])
    a, b = both(caffe2, fwd, xs, ["M"])
    assert_bits(a["M"], b["M"], "Max")
    dm = rand(20, (4, 9))
    dm[2, :2] = [np.inf, np.nan]
    feeds = dict(xs, M=b["M"], dM=dm)
    grad = core.CreateOperator("MaxGradient", ["M", "dM", "X0", "X1", "X2"], ["d0", "d1", "d2"])
    a, b = both(caffe2, grad, feeds, ["d0", "d1", "d2"])
    for k in ("d0", "d1", "d2"):
        assert_bits(a[k], b[k], f"MaxGradient {k}")
    a, b = both(caffe2, core.CreateOperator("Max", ["X0"], ["X0"]), xs, ["X0"])
    assert_bits(a["X0"], b["X0"], "Max one input in place")


def test_squared_l2_distance_gradient_bits(caffe2):
    x, y = rand(30, (5, 3, 2)), rand(31, (5, 3, 2))
    dz = rand(32, (5,))
    op = core.CreateOperator("SquaredL2DistanceGradient", ["X", "Y", "dZ"], ["dX", "dY"])
    a, b = both(caffe2, op, {"X": x, "Y": y, "dZ": dz}, ["dX", "dY"])
    assert_bits(a["dX"], b["dX"], "dX")
    assert_bits(a["dY"], b["dY"], "dY")


@pytest.mark.parametrize("op_type,args", [("SumElementsGradient", {}),
                                          ("SumElementsGradient", {"average": 1}),
                                          ("AveragedLossGradient", {})])
@pytest.mark.parametrize("n", [1, 7, 1000, 33331])
def test_sum_gradients_bits(caffe2, op_type, args, n):
    op = core.CreateOperator(op_type, ["X", "dS"], ["dX"], **args)
    feeds = {"X": rand(n, (n,)), "dS": np.array(3.0, F32)}
    a, b = both(caffe2, op, feeds, ["dX"])
    assert_bits(a["dX"], b["dX"], op_type)


@pytest.mark.parametrize("op_type", ["EnsureCPUOutput", "CopyFromCPUInput"])
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.int32])
def test_copies_bits(caffe2, op_type, dtype):
    x = (rand(40, (3, 4)) * 10).astype(dtype)
    a, b = both(caffe2, core.CreateOperator(op_type, ["X"], ["Y"]), {"X": x}, ["Y"])
    assert_bits(a["Y"], b["Y"], op_type)


# -- reductions and BLAS: within the stated bounds ---------------------------------------------


@pytest.mark.parametrize("op_type,args,square", [
    ("SumElements", {}, False), ("SumElements", {"average": 1}, False),
    ("AveragedLoss", {}, False), ("SumSqrElements", {}, True),
    ("SumSqrElements", {"average": 1}, True),
])
@pytest.mark.parametrize("shape", [(7,), (1000,), (64, 513)])
def test_sums_within_bound(caffe2, op_type, args, square, shape):
    x = rand(50, shape)
    a, b = both(caffe2, core.CreateOperator(op_type, ["X"], ["S"], **args), {"X": x}, ["S"])
    n = x.size
    mag = float(np.sum(x.astype(np.float64) ** 2 if square else np.abs(x.astype(np.float64))))
    if args.get("average") or op_type == "AveragedLoss":
        mag /= n
    assert_within(a["S"], b["S"], n * U24 * mag + 2 * U24 * abs(float(b["S"])), op_type)


@pytest.mark.parametrize("shape", [(4, 5), (3,), (6, 2, 3), (128, 1000)])
def test_squared_l2_distance_within_bound(caffe2, shape):
    x, y = rand(60, shape), rand(61, shape)
    a, b = both(caffe2, core.CreateOperator("SquaredL2Distance", ["X", "Y"], ["Z"]),
                {"X": x, "Y": y}, ["Z"])
    n = shape[0]
    d = x.size // n
    xm, ym = x.reshape(n, d).astype(np.float64), y.reshape(n, d).astype(np.float64)
    bound = 4 * d * U24 * ((xm * xm).sum(1) + (ym * ym).sum(1)) + 1e-30
    assert_within(a["Z"], b["Z"], bound, "SquaredL2Distance")


FC_CASES = [
    ((4, 3), (5, 3), {}),
    ((64, 128), (32, 128), {}),
    ((2, 3, 4), (6, 12), {}),
    ((2, 3, 4), (6, 4), {"axis": 2}),
    ((2, 3, 4), (2, 3, 12), {"axis_w": 2}),
    ((5, 7), (3, 7), {"axis": -1}),
    ((0, 4), (3, 4), {}),
]


def _fc_bound(x, w, b, axis=1, axis_w=1):
    m = int(np.prod(x.shape[:axis]))
    k = x.size // max(m, 1) if m else int(np.prod(x.shape[axis:]))
    n = int(np.prod(w.shape[:axis_w]))
    xm = np.abs(x.reshape(m, k).astype(np.float64))
    wm = np.abs(w.reshape(n, k).astype(np.float64))
    return k, xm, wm, np.abs(b.astype(np.float64))


@pytest.mark.parametrize("xs,ws,args", FC_CASES)
def test_fc_forward_within_bound(caffe2, xs, ws, args):
    x, w = rand(70, xs), rand(71, ws)
    axis_w = args.get("axis_w", 1)
    n = int(np.prod(ws[:axis_w]))
    bias = rand(72, (n,))
    op = core.CreateOperator("FC", ["X", "W", "b"], ["Y"], **args)
    a, b = both(caffe2, op, {"X": x, "W": w, "b": bias}, ["Y"])
    axis = args.get("axis", 1) % len(xs)
    k, xm, wm, bm = _fc_bound(x, w, bias, axis, axis_w)
    bound = (k + 1) * 2 * U24 * (xm @ wm.T + bm)
    assert_within(a["Y"], b["Y"], bound.reshape(b["Y"].shape), "FC")


@pytest.mark.parametrize("xs,ws,args", FC_CASES)
def test_fc_gradient_within_bound(caffe2, xs, ws, args):
    x, w = rand(80, xs), rand(81, ws)
    axis_w = args.get("axis_w", 1)
    axis = args.get("axis", 1) % len(xs)
    m, n = int(np.prod(xs[:axis])), int(np.prod(ws[:axis_w]))
    k = int(np.prod(xs[axis:]))
    dy = rand(82, (m, n)).reshape(tuple(xs[:axis]) + (n,))
    op = core.CreateOperator("FCGradient", ["X", "W", "dY"], ["dW", "db", "dX"], **args)
    a, b = both(caffe2, op, {"X": x, "W": w, "dY": dy}, ["dW", "db", "dX"])
    xm = np.abs(x.reshape(m, k).astype(np.float64))
    wm = np.abs(w.reshape(n, k).astype(np.float64))
    dym = np.abs(dy.reshape(m, n).astype(np.float64))
    assert_within(a["dW"], b["dW"], ((m + 1) * 2 * U24 * (dym.T @ xm)).reshape(ws), "dW")
    assert_within(a["db"], b["db"], (m + 1) * 2 * U24 * dym.sum(0), "db")
    assert_within(a["dX"], b["dX"], ((n + 1) * 2 * U24 * (dym @ wm)).reshape(xs), "dX")
    op2 = core.CreateOperator("FCGradient", ["X", "W", "dY"], ["dW", "db"], **args)
    a2, b2 = both(caffe2, op2, {"X": x, "W": w, "dY": dy}, ["dW", "db"])
    assert_within(a2["db"], b2["db"], (m + 1) * 2 * U24 * dym.sum(0), "db (two outputs)")


def test_fc_accepts_brew_arguments(caffe2):
    x, w, bias = rand(90, (3, 4)), rand(91, (2, 4)), rand(92, (2,))
    op = core.CreateOperator("FC", ["X", "W", "b"], ["Y"], order="NCHW", use_cudnn=False,
                             float16_compute=False)
    a, b = both(caffe2, op, {"X": x, "W": w, "b": bias}, ["Y"])
    np.testing.assert_allclose(a["Y"], b["Y"], rtol=1e-6, atol=1e-6)


# -- fillers ------------------------------------------------------------------------------------


def seeded(seed):
    return core.DeviceOption(0, random_seed=seed)


FILL_CASES = [
    ("UniformFill", {"shape": [1000], "min": -1.5, "max": 2.5}),
    ("UniformFill", {"shape": [3, 5]}),
    ("XavierFill", {"shape": [64, 33]}),
    ("XavierFill", {"shape": [7, 3, 2]}),
    ("GaussianFill", {"shape": [1001], "mean": 0.5, "std": 2.0}),
    ("GaussianFill", {"shape": [4, 4]}),
    ("GaussianFill", {"shape": [1]}),
    ("MSRAFill", {"shape": [64, 33]}),
    ("MSRAFill", {"shape": [3, 5, 2]}),
    ("GivenTensorFill", {"shape": [2, 3], "values": [0.1, -2.0, 3.5, 1e-8, 7.0, 0.0]}),
    ("GivenTensorFill", {"shape": [3], "values": [0.1, 2.0, 3.0], "dtype": 13}),
    ("GivenTensorFill", {"shape": [3], "values": [1, 0, 1], "dtype": 5}),
    ("GivenTensorFill", {"shape": [2], "values": [3, -(2**40)], "dtype": 10}),
    ("GaussianFill", {"shape": [3], "mean": 2.0, "std": 0.0}),
    ("GaussianFill", {"shape": [3], "mean": 2.0, "std": -1.0}),
    ("GivenTensorIntFill", {"shape": [4], "values": [1, -2, 3, 2**31 - 1]}),
    ("GivenTensorInt64Fill", {"shape": [2, 2], "values": [1, -2, 2**40 + 1, -(2**62)]}),
    ("GivenTensorBoolFill", {"shape": [3], "values": [1, 0, 1]}),
]


@pytest.mark.parametrize("op_type,args", FILL_CASES)
@pytest.mark.parametrize("seed", [0, 5, 123456789])
def test_fillers_bits_for_a_seed(caffe2, op_type, args, seed):
    op = core.CreateOperator(op_type, [], ["Y"], device_option=seeded(seed), **args)
    a, b = both(caffe2, op, {}, ["Y"])
    assert_bits(a["Y"], b["Y"], f"{op_type} seed {seed}")


@pytest.mark.parametrize("op_type", ["UniformFill", "GaussianFill", "XavierFill", "MSRAFill"])
def test_random_fill_stream_continues_across_runs_of_a_net(caffe2, op_type):
    net = core.Net(f"fill_{op_type}")
    net.Proto().op.append(core.CreateOperator(op_type, [], ["Y"], shape=[5, 3],
                                              device_option=seeded(7)))
    ref = caffe2.run_nets(net.Proto(), {}, ["Y"], iters=3, fetch_every=["Y"])["history"]["Y"]
    workspace.SwitchWorkspace("parity_dense", True)
    workspace.ResetWorkspace()
    workspace.CreateNet(net)
    for k in range(3):
        workspace.RunNet(net.Name())
        assert_bits(workspace.FetchBlob("Y"), ref[k], f"{op_type} run {k}")


@pytest.mark.parametrize("op_type,args", [
    ("UniformFill", {"extra_shape": [2]}), ("GaussianFill", {"extra_shape": [3, 1]}),
    ("XavierFill", {}), ("MSRAFill", {}), ("GivenTensorFill", {"values": [1.0] * 12}),
])
def test_fill_shape_from_input(caffe2, op_type, args):
    src = np.zeros((4, 3), F32)
    op = core.CreateOperator(op_type, ["S"], ["Y"], device_option=seeded(3), **args)
    a, b = both(caffe2, op, {"S": src}, ["Y"])
    assert_bits(a["Y"], b["Y"], op_type)
    op = core.CreateOperator(op_type, ["S"], ["Y"], device_option=seeded(3), input_as_shape=1,
                             **args)
    a, b = both(caffe2, op, {"S": np.array([2, 6], np.int64)}, ["Y"])
    assert_bits(a["Y"], b["Y"], f"{op_type} input_as_shape")


def test_uniform_fill_min_max_inputs(caffe2):
    feeds = {"S": np.array([3, 2], np.int64), "lo": np.array([-1.0], F32),
             "hi": np.array([4.0], F32)}
    op = core.CreateOperator("UniformFill", ["S", "lo", "hi"], ["Y"], input_as_shape=1,
                             device_option=seeded(11))
    a, b = both(caffe2, op, feeds, ["Y"])
    assert_bits(a["Y"], b["Y"], "UniformFill min/max blobs")
    feeds["lo"] = np.array([5.0], F32)
    a, b = both(caffe2, op, feeds, ["Y"])
    assert_bits(a["Y"], b["Y"], "UniformFill min > max blobs")


@pytest.mark.parametrize("op_type,ins,args", [
    ("UniformFill", [], {"shape": [2], "min": 1.0, "max": 0.0}),
    ("GivenTensorFill", [], {"shape": [2], "values": [1.0, 2.0], "dtype": 10}),
    ("GivenTensorFill", [], {"shape": [2], "values": [1, 2]}),
    ("GivenTensorIntFill", [], {"shape": [2], "values": [1.0, 2.0]}),
    ("UniformFill", [], {"shape": [2], "min": 1.0, "max": 1.0}),
    ("GaussianFill", ["S"], {"input_as_shape": 1}),
    ("XavierFill", [], {"extra_shape": [2]}),
    ("GaussianFill", [], {"input_as_shape": 1}),
    ("UniformFill", ["S"], {"shape": [2]}),
])
def test_filler_errors_where_caffe2_errs(caffe2, op_type, ins, args):
    feeds = {"S": np.zeros((2, 2), F32)} if ins else {}
    if args.get("input_as_shape"):
        feeds = {"S": np.array([], np.int64)}
    op = core.CreateOperator(op_type, ins, ["Y"], **args)
    with pytest.raises(Caffe2Error):
        caffe2.run_ops(op, feeds, ["Y"])
    with pytest.raises(OperatorError, match=op_type):
        ours([op], feeds, ["Y"])


@pytest.mark.parametrize("op_type,args", [
    ("GivenTensorFill", {"shape": [3], "values": [1.0, 2.0]}),
    ("GivenTensorIntFill", {"shape": [1], "values": [1, 2]}),
])
def test_we_refuse_value_counts_caffe2_misread(caffe2, op_type, args):
    """Caffe2 1.5.0 read past the end of too few values (garbage) and dropped extra ones."""
    op = core.CreateOperator(op_type, [], ["Y"], **args)
    caffe2.run_ops(op, {}, ["Y"])  # runs in Caffe2
    with pytest.raises(OperatorError, match=f"{op_type}.*values"):
        ours([op], {}, ["Y"])


# -- gradient OperatorDefs -----------------------------------------------------------------------

GRAD_DEFS = [
    ("FC", ["X", "W", "b"], ["Y"], {}),
    ("FC", ["X", "W", "b"], ["Y"], {"axis": 2, "axis_w": 1, "order": "NCHW"}),
    ("Relu", ["X"], ["Y"], {}),
    ("Relu", ["X"], ["X"], {"order": "NHWC"}),
    ("Sigmoid", ["X"], ["Y"], {}),
    ("Tanh", ["X"], ["Y"], {}),
    ("Tanh", ["X"], ["X"], {}),
    ("SquaredL2Distance", ["X", "Y"], ["Z"], {}),
    ("SumElements", ["X"], ["S"], {}),
    ("SumElements", ["X"], ["S"], {"average": 1}),
    ("AveragedLoss", ["X"], ["L"], {}),
    ("Max", ["X", "Y", "Z"], ["M"], {}),
    ("Max", ["X"], ["X"], {}),
    ("EnsureCPUOutput", ["X"], ["Y"], {}),
    ("UniformFill", [], ["Y"], {"shape": [2]}),
    ("GaussianFill", [], ["Y"], {"shape": [2]}),
    ("XavierFill", [], ["Y"], {"shape": [2, 2]}),
    ("MSRAFill", [], ["Y"], {"shape": [2, 2]}),
    ("GivenTensorFill", [], ["Y"], {"shape": [1], "values": [1.0]}),
]


@pytest.mark.parametrize("op_type,ins,outs,args", GRAD_DEFS)
@pytest.mark.parametrize("engine,device", [("", None), ("CUDNN", core.DeviceOption(0, 0))])
def test_gradient_operator_defs_field_for_field(caffe2, op_type, ins, outs, args, engine,
                                                device):
    kwargs = dict(args)
    if device is not None:
        kwargs["device_option"] = device
    op = core.CreateOperator(op_type, ins, outs, engine=engine, name="fwd", **kwargs)
    g_output = [f"{o}_grad" for o in outs]
    theirs, their_gin = caffe2.gradient(op, g_output)
    mine, my_gin = core.GradientRegistry.GetGradientForOp(op, g_output)
    assert [str(g) if g is not None else None for g in my_gin] == [
        str(g) if g is not None else None for g in their_gin]
    assert len(mine) == len(theirs)
    for m, t in zip(mine, theirs, strict=True):
        assert m.SerializeToString() == t.SerializeToString(), f"ours:\n{m}\ncaffe2:\n{t}"


@pytest.mark.parametrize("op_type", ["SumSqrElements", "CopyFromCPUInput"])
def test_no_registered_gradient_raises_on_both_sides(caffe2, op_type):
    op = core.CreateOperator(op_type, ["X"], ["Y"])
    with pytest.raises(Caffe2Error):
        caffe2.gradient(op, ["Y_grad"])
    with pytest.raises(OperatorError, match=op_type):
        core.GradientRegistry.GetGradientForOp(op, ["Y_grad"])


# -- a small training net end to end -----------------------------------------------------------


def test_fc_relu_sigmoid_l2_net_forward_backward(caffe2):
    net = core.Net("dense_train")
    net.FC(["X", "W", "b"], ["H"])
    net.Relu(["H"], ["H"])
    net.FC(["H", "W2", "b2"], ["Z"])
    net.Sigmoid(["Z"], ["P"])
    net.SquaredL2Distance(["P", "T"], ["D"])
    net.AveragedLoss(["D"], ["L"])
    net.AddGradientOperators(["L"])
    feeds = {"X": rand(1, (16, 8)), "W": rand(2, (12, 8), -0.5, 0.5), "b": rand(3, (12,)),
             "W2": rand(4, (3, 12), -0.5, 0.5), "b2": rand(5, (3,)), "T": rand(6, (16, 3), 0, 1)}
    fetch = ["L", "W_grad", "b_grad", "W2_grad", "b2_grad", "X_grad"]
    theirs = caffe2.run_nets(net.Proto(), feeds, fetch)["outputs"]
    workspace.SwitchWorkspace("parity_dense", True)
    workspace.ResetWorkspace()
    for k, v in feeds.items():
        workspace.FeedBlob(k, v)
    workspace.RunNetOnce(net)
    for name in fetch:
        got = workspace.FetchBlob(name)
        np.testing.assert_allclose(got, theirs[name], rtol=2e-5, atol=1e-6, err_msg=name)
