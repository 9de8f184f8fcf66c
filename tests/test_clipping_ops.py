"""ClipTensorByScaling, EnsureClipped, LpNorm (+gradient), Pow and Div (+gradients)."""

from __future__ import annotations

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given

import caffe2ops as c2
from caffe2ops import core, workspace
from caffe2ops.errors import OperatorError
from caffe2ops.gradient_checker import central_difference
from caffe2ops.ops.arithmetic import divide, power

FLOATS = [np.float16, np.float32, np.float64]


pytestmark = pytest.mark.usefixtures("fresh_workspace")


def run_op(op_type, inputs: dict, outputs, **kwargs):
    for name, value in inputs.items():
        workspace.FeedBlob(name, value)
    workspace.RunOperatorOnce(core.CreateOperator(op_type, list(inputs), outputs, **kwargs))
    return [workspace.FetchBlob(o) for o in outputs]


def assert_bits_equal(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes(), (a, b)


def gradient_check(op, feeds: dict, wrt: str, stepsize=1e-6, threshold=1e-6):
    """Caffe2's checker: loss = ½Σy² over the op's outputs, so dL/dy = y; the gradient op's
    result for ``wrt`` must match central finite differences of the loss."""

    def loss(values):
        for name, v in values.items():
            workspace.FeedBlob(name, v)
        workspace.RunOperatorOnce(op)
        return sum(0.5 * float(np.sum(workspace.FetchBlob(o).astype(np.float64) ** 2))
                   for o in op.output)

    loss(feeds)
    grad_ops, g_input = core.GradientRegistry.GetGradientForOp(
        op, [f"{o}_grad" for o in op.output])
    for o in op.output:
        workspace.FeedBlob(f"{o}_grad", workspace.FetchBlob(o))
    workspace.RunOperatorsOnce(grad_ops)
    analytic = workspace.FetchBlob(g_input[list(op.input).index(wrt)]).astype(np.float64)
    numeric = central_difference(lambda x: loss({**feeds, wrt: x}), feeds[wrt], stepsize)
    np.testing.assert_allclose(analytic, numeric, rtol=threshold, atol=threshold)


# --------------------------------------------------------------------- ClipTensorByScaling


@given(
    n=st.integers(5, 8), d=st.integers(2, 4), threshold=st.floats(0.1, 10),
    additional=st.floats(0.1, 10), use_additional=st.booleans(), inplace=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_clip_tensor_by_scaling_caffe2_test(n, d, threshold, additional, use_additional,
                                            inplace, seed):
    # Caffe2's clip_tensor_op_test.py parameters and reference.
    workspace.ResetWorkspace()
    tensor = np.random.RandomState(seed).rand(n, d).astype(np.float32)
    val = np.array(np.linalg.norm(tensor))
    add = np.array([additional], dtype=np.float32)
    inputs = {"tensor": tensor, "val": val}
    if use_additional:
        inputs["additional_threshold"] = add
    out = "tensor" if inplace else "out"
    (result,) = run_op("ClipTensorByScaling", inputs, [out], threshold=threshold)
    final = threshold * additional if use_additional else threshold
    expected = tensor * final / float(val) if val > final else tensor
    np.testing.assert_allclose(result, expected, rtol=1e-4, atol=1e-4)
    # Bit-exact: Caffe2's float arithmetic, one multiply per element.
    t = np.float32(threshold)
    if use_additional:
        t = np.float32(t * add[0])
    exact = tensor * np.float32(t / val) if val > t else tensor
    assert_bits_equal(result, exact)


@pytest.mark.parametrize("dtype", FLOATS)
def test_clip_tensor_by_scaling_keeps_dtype(dtype):
    x = np.array([[3.0, -4.0], [0.0, 12.0]], dtype=dtype)
    val = np.array([13.0], dtype=dtype)
    y = c2.clip_tensor_by_scaling(x, val, threshold=6.5)
    assert y.dtype == dtype and y.shape == x.shape
    ct = np.float32 if dtype == np.float16 else dtype
    factor = dtype(ct(dtype(6.5)) / ct(13.0))
    assert_bits_equal(y, x * factor)
    np.testing.assert_allclose(y.astype(np.float64), x.astype(np.float64) / 2, rtol=1e-3)
    (z,) = run_op("ClipTensorByScaling", {"x": x, "v": val}, ["z"], threshold=6.5)
    assert_bits_equal(z, y)


def test_clip_tensor_by_scaling_no_clip_cases():
    x = np.array([1.0, 2.0], dtype=np.float32)
    y = c2.clip_tensor_by_scaling(x, 2.0, threshold=2.0)  # val == t: strict, no clip
    assert_bits_equal(y, x)
    assert y is not x
    assert c2.clip_tensor_by_scaling(x, np.float32(np.nan), threshold=1.0) is not x
    assert_bits_equal(c2.clip_tensor_by_scaling(x, np.nan, threshold=1.0), x)
    assert c2.clip_tensor_by_scaling(x, 1.0, threshold=2.0, out=x) is x
    # additional_threshold multiplies the threshold: t = 1·3 = 3 > 2.5, no clip
    assert_bits_equal(c2.clip_tensor_by_scaling(x, 2.5, 1, additional_threshold=3), x)
    # int threshold accepted (Caffe2 rejected threshold=1)
    np.testing.assert_allclose(c2.clip_tensor_by_scaling(x, 4.0, 1), x / 4)


def test_clip_tensor_by_scaling_in_place_op():
    x = np.arange(1, 7, dtype=np.float32).reshape(2, 3)
    (y,) = run_op("ClipTensorByScaling", {"x": x, "v": np.array([10.0], np.float32),
                                          "a": np.array([0.5], np.float32)}, ["x"],
                  threshold=4.0)
    assert_bits_equal(y, x * np.float32(np.float32(2.0) / np.float32(10.0)))


def test_clip_tensor_by_scaling_does_not_compound_across_runs():
    # Caffe2 multiplied its stored threshold by additional_threshold on every run.
    x = np.full((3, 2), 2.0, dtype=np.float32)
    workspace.FeedBlob("x", x)
    workspace.FeedBlob("val", np.array([100.0], np.float32))
    workspace.FeedBlob("extra", np.array([0.5], np.float32))
    net = core.Net("ctbs_repeat")
    net.ClipTensorByScaling(["x", "val", "extra"], ["y"], threshold=10.0)
    net.ClipTensorByScaling(["x", "val", "extra"], ["x2"], threshold=10.0)
    workspace.CreateNet(net)
    results = []
    for _ in range(5):
        workspace.RunNet(net.Name())
        results.append(workspace.FetchBlob("y"))
        assert_bits_equal(workspace.FetchBlob("x2"), results[0])
    for r in results:
        assert_bits_equal(r, x * np.float32(5.0 / 100.0))
    workspace.RunNet(net.Name(), num_iter=3)
    assert_bits_equal(workspace.FetchBlob("y"), results[0])


def test_clip_tensor_by_scaling_errors():
    x = np.ones((2, 2), np.float32)
    v = np.array([4.0], np.float32)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="threshold"):
            c2.clip_tensor_by_scaling(x, v, threshold=bad)
        net = core.Net("ctbs_bad")
        net.ClipTensorByScaling(["x", "v"], ["y"], threshold=bad)
        with pytest.raises(OperatorError, match="ClipTensorByScaling.*threshold.*greater than 0"):
            workspace.CreateNet(net)
    workspace.FeedBlob("x", x)
    workspace.FeedBlob("v", v)
    with pytest.raises(OperatorError, match="threshold"):  # Caffe2's default 0.0 is refused
        workspace.RunOperatorOnce(core.CreateOperator("ClipTensorByScaling", ["x", "v"], ["y"]))
    with pytest.raises(ValueError, match="ClipTensorByScaling: input val must have exactly 1"):
        c2.clip_tensor_by_scaling(x, np.array([1.0, 2.0], np.float32), 1.0)
    with pytest.raises(ValueError, match="additional_threshold must have exactly 1"):
        c2.clip_tensor_by_scaling(x, v, 1.0, np.zeros(2, np.float32))
    with pytest.raises(TypeError, match="input x must be float16, float32 or float64; got int"):
        c2.clip_tensor_by_scaling(np.ones(3, np.int32), v, 1.0)
    with pytest.raises(TypeError, match="input val"):
        c2.clip_tensor_by_scaling(x, np.array([4], np.int64), 1.0)
    # A failing in-place op leaves its blob untouched.
    workspace.FeedBlob("v2", np.array([9.0, 9.0], np.float32))
    before = workspace.FetchBlob("x")
    with pytest.raises(ValueError, match="val"):
        workspace.RunOperatorOnce(core.CreateOperator(
            "ClipTensorByScaling", ["x", "v2"], ["x"], threshold=1.0))
    assert_bits_equal(workspace.FetchBlob("x"), before)
    with pytest.raises(OperatorError, match="expects 2 to 3 inputs"):
        workspace.RunOperatorOnce(core.CreateOperator(
            "ClipTensorByScaling", ["x"], ["y"], threshold=1.0))


def test_clip_tensor_by_scaling_has_no_gradient():
    net = core.Net("ctbs_grad")
    y = net.ClipTensorByScaling(["x", "v"], ["y"], threshold=1.0)
    loss = net.LpNorm([y], ["loss"])
    with pytest.raises(OperatorError, match="should not call gradient for operator "
                                            "ClipTensorByScaling"):
        net.AddGradientOperators([loss])


# --------------------------------------------------------------------------- EnsureClipped


@pytest.mark.parametrize("dtype", [*FLOATS, np.int32, np.int64, np.uint8])
def test_ensure_clipped_dense_is_clip(dtype):
    rng = np.random.RandomState(0)
    x = (rng.randn(4, 5) * 50).astype(dtype) if dtype != np.uint8 else \
        rng.randint(0, 255, (4, 5)).astype(dtype)
    if np.dtype(dtype).kind == "f":
        x[0, 0], x[0, 1], x[0, 2] = np.nan, np.inf, -np.inf
    for lo, hi in [(-10, 20.5), (None, 3), (0, None), (None, None), (5.0, -5.0)]:
        expected = c2.clip(x, lo, hi)
        assert_bits_equal(c2.ensure_clipped(x, lo, hi), expected)
        kwargs = {k: v for k, v in (("min", lo), ("max", hi)) if v is not None}
        (y,) = run_op("EnsureClipped", {"p": x}, ["y"], **kwargs)
        assert_bits_equal(y, expected)
        (z,) = run_op("EnsureClipped", {"p": x}, ["p"], **kwargs)  # in place
        assert_bits_equal(z, expected)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.int64])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_ensure_clipped_sparse_clips_only_indexed_rows(dtype, index_dtype):
    rng = np.random.RandomState(1)
    param = (rng.randn(6, 2, 3) * 10).astype(dtype)
    indices = np.array([4, 1, 4], dtype=index_dtype)
    grad = np.zeros((3, 2, 3), dtype=dtype)
    expected = param.copy()
    for r in (1, 4):
        expected[r] = c2.clip(param[r], -2, 3)
    (out,) = run_op("EnsureClipped", {"param": param, "indices": indices, "grad": grad},
                    ["param"], min=-2, max=3)
    assert_bits_equal(out, expected)
    p2 = param.copy()
    assert c2.ensure_clipped(p2, -2, 3, indices=indices) is p2
    assert_bits_equal(p2, expected)
    # 2 inputs (param, indices): the grad is optional here.
    (out2,) = run_op("EnsureClipped", {"param": param, "indices": indices}, ["param"],
                     min=-2, max=3)
    assert_bits_equal(out2, expected)


def test_ensure_clipped_sparse_1d_and_empty():
    p = np.array([5.0, -5.0, 0.5, 9.0], dtype=np.float32)
    c2.ensure_clipped(p, min=-1, max=1, indices=np.array([0, 1, 2]))
    assert_bits_equal(p, np.array([1.0, -1.0, 0.5, 9.0], dtype=np.float32))
    q = p.copy()
    c2.ensure_clipped(q, min=0, max=0, indices=np.array([], dtype=np.int64))
    assert_bits_equal(q, p)


def test_ensure_clipped_sparse_errors_leave_param_untouched():
    param = np.arange(12, dtype=np.float32).reshape(4, 3)
    workspace.FeedBlob("param", param)
    workspace.FeedBlob("grad", np.zeros((2, 3), np.float32))
    for bad in ([0, 4], [-1, 2]):
        workspace.FeedBlob("idx", np.array(bad, dtype=np.int64))
        with pytest.raises(IndexError, match=r"EnsureClipped: input indices\[\d\] = -?\d+ is out "
                                             r"of range for param with 4 rows"):
            workspace.RunOperatorOnce(core.CreateOperator(
                "EnsureClipped", ["param", "idx", "grad"], ["param"], min=0.0, max=1.0))
        assert_bits_equal(workspace.FetchBlob("param"), param)
    workspace.FeedBlob("idx", np.array([0, 1], dtype=np.int64))
    with pytest.raises(ValueError, match="output must be the param blob 'param'"):
        workspace.RunOperatorOnce(core.CreateOperator(
            "EnsureClipped", ["param", "idx", "grad"], ["other"], min=0.0, max=1.0))
    assert not workspace.HasBlob("other")
    workspace.FeedBlob("badgrad", np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="grad rows must have the param's row size 3"):
        workspace.RunOperatorOnce(core.CreateOperator(
            "EnsureClipped", ["param", "idx", "badgrad"], ["param"], min=0.0, max=1.0))
    workspace.FeedBlob("fidx", np.array([0.0, 1.0]))
    with pytest.raises(TypeError, match="indices must be int32 or int64"):
        workspace.RunOperatorOnce(core.CreateOperator(
            "EnsureClipped", ["param", "fidx"], ["param"], min=0.0, max=1.0))
    assert_bits_equal(workspace.FetchBlob("param"), param)
    with pytest.raises(TypeError, match="EnsureClipped: input param must be"):
        c2.ensure_clipped(np.array(["a"]), 0, 1)
    with pytest.raises(ValueError, match="output must be param"):
        c2.ensure_clipped(param.copy(), 0, 1, indices=np.array([0]), out=param.copy())


def test_ensure_clipped_has_no_gradient():
    net = core.Net("ec_grad")
    y = net.EnsureClipped(["x"], ["y"], min=0.0)
    loss = net.LpNorm([y], ["loss"])
    with pytest.raises(OperatorError, match="should not call gradient for operator "
                                            "EnsureClipped"):
        net.AddGradientOperators([loss])


# --------------------------------------------------------------------------------- LpNorm


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("average", [False, True])
def test_lp_norm_reference(dtype, p, average):
    x = np.random.RandomState(2).randn(7, 3).astype(dtype)
    x64 = x.astype(np.float64)
    ref = np.sum(np.abs(x64)) if p == 1 else np.sum(x64 * x64)
    if average:
        ref /= x.size
    y = c2.lp_norm(x, p=p, average=average)
    assert y.shape == (1,) and y.dtype == dtype
    if dtype == np.float64:  # summation order may change the last bit
        np.testing.assert_allclose(y, [ref], rtol=1e-14)
    else:  # the float64 sum rounded once
        assert_bits_equal(y, np.array([ref]).astype(dtype))
    (z,) = run_op("LpNorm", {"X": x}, ["Y"], p=p, average=average)
    assert_bits_equal(z, y)


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("average", [False, True])
def test_lp_norm_float32_fast_kernel_equals_reference(p, average):
    """float32 LpNorm sums in the CPU norms kernel (vector lanes); the result is the
    reference's (einsum / chunked float64 sums) rounded the same, specials included."""
    from caffe2ops import kernels

    assert kernels.load()
    rng = np.random.RandomState(5)
    cases = [rng.randn(n).astype(np.float32) * s for n, s in
             ((1, 1.0), (1000, 3.0), (131_072, 0.01), (1_000_003, 1e18))]
    cases.append(np.array([1.0, np.inf, -2.0], np.float32))
    cases.append(np.array([np.nan, 1.0], np.float32))
    cases.append(np.full(4, 3e38, np.float32))  # the float64 sum overflows float32: inf
    for x in cases:
        got = c2.lp_norm(x, p=p, average=average)
        with c2.reference_kernels():
            want = c2.lp_norm(x, p=p, average=average)
        assert_bits_equal(got, want)


def test_lp_norm_caffe2_example_and_accuracy():
    assert_bits_equal(c2.lp_norm(np.array([5.0, 2.0], np.float32)), np.array([29.0], np.float32))
    # float16 accumulates in float64: a float16 running sum would stop at 2048.
    assert c2.lp_norm(np.ones(10000, np.float16), p=1)[0] == 10000
    assert c2.lp_norm(np.full(100000, 0.1, np.float32))[0] == np.float32(
        100000 * np.float64(np.float32(0.1)) ** 2)
    assert c2.lp_norm(np.zeros(0, np.float32))[0] == 0
    assert np.isnan(c2.lp_norm(np.array([1.0, np.nan]))[0])
    assert np.isinf(c2.lp_norm(np.full(4, 60000.0, np.float16))[0])  # overflow to inf


def test_lp_norm_errors():
    with pytest.raises(ValueError, match="LpNorm: argument 'p' must be 1 or 2; got 3"):
        c2.lp_norm(np.ones(3), p=3)
    net = core.Net("lpnorm_bad")
    net.LpNorm(["x"], ["y"], p=0)
    with pytest.raises(OperatorError, match="'p' must be 1 or 2"):
        workspace.CreateNet(net)
    with pytest.raises(ValueError, match="empty"):
        c2.lp_norm(np.zeros(0), average=True)
    with pytest.raises(TypeError, match="LpNorm: input X must be float16, float32 or float64"):
        c2.lp_norm(np.ones(3, np.int64))
    with pytest.raises(ValueError, match="LpNormGradient: input dN must have exactly 1 element"):
        c2.lp_norm_gradient(np.ones(3), np.ones(2))
    with pytest.raises(TypeError, match="input dN must have the dtype of X"):
        c2.lp_norm_gradient(np.ones(3), np.ones(1, np.float32))


@pytest.mark.parametrize("dtype", FLOATS)
def test_lp_norm_gradient_formula(dtype):
    x = np.array([3.0, -2.0, 0.0, 1e-13, -0.5, np.nan], dtype=dtype)
    dn = np.array([0.5], dtype=dtype)
    ct = np.float32 if dtype == np.float16 else dtype
    g2 = c2.lp_norm_gradient(x, dn, p=2)
    assert g2.dtype == dtype
    assert_bits_equal(g2, ((x.astype(ct) * 2) * ct(0.5)).astype(dtype))
    g1 = c2.lp_norm_gradient(x, dn, p=1, average=True)
    sign = np.array([1, -1, 0, 0, -1, 0], dtype=ct)  # dead zone |x| <= 1e-12; NaN gives 0
    assert_bits_equal(g1, (sign * ct(ct(0.5) / ct(6))).astype(dtype))


def test_lp_norm_gradient_maker():
    op = core.CreateOperator("LpNorm", ["X"], ["Y"], p=1, average=True)
    grad_ops, g_input = core.GradientRegistry.GetGradientForOp(op, ["Y_grad"])
    assert len(grad_ops) == 1 and g_input == ["X_grad"]
    g = grad_ops[0]
    assert g.type == "LpNormGradient" and list(g.input) == ["X", "Y_grad"]
    assert {a.name: a.i for a in g.arg} == {"p": 1, "average": 1}


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("average", [False, True])
def test_lp_norm_gradient_finite_differences(p, average):
    rng = np.random.RandomState(3)
    x = rng.uniform(-1, 1, (3, 4))
    x[np.abs(x) < 0.05] += 0.1  # away from the kink of |x|
    op = core.CreateOperator("LpNorm", ["X"], ["Y"], p=p, average=average)
    gradient_check(op, {"X": x}, "X", stepsize=1e-6, threshold=1e-6)
    # float32 with Caffe2's CPU checker settings (stepsize 0.005, threshold 0.05).
    gradient_check(op, {"X": x.astype(np.float32)}, "X", stepsize=0.005, threshold=0.05)


# ----------------------------------------------------------------------------- Pow, Div


@pytest.mark.parametrize("dtype", FLOATS)
def test_pow_argument_form(dtype):
    x = np.array([0.0, 0.25, 2.0, 9.0, -4.0], dtype=dtype)
    (y,) = run_op("Pow", {"X": x}, ["Y"], exponent=0.5)
    assert y.dtype == dtype
    with np.errstate(invalid="ignore"):
        assert_bits_equal(y, np.sqrt(x))  # sqrt is correctly rounded; so is our pow
    (y2,) = run_op("Pow", {"X": x}, ["X"], exponent=2)  # int exponent accepted, in place
    assert_bits_equal(y2, (x.astype(np.float64) ** 2).astype(dtype))
    (y3,) = run_op("Pow", {"X": np.array([2.0, 0.0], dtype)}, ["Y"], exponent=-1.0)
    assert_bits_equal(y3, np.array([0.5, np.inf], dtype))


def test_pow_tensor_exponent_and_broadcast():
    x = np.arange(1, 7, dtype=np.float32).reshape(2, 3)
    e = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]], np.float32)
    (y,) = run_op("Pow", {"X": x, "E": e}, ["Y"])
    assert_bits_equal(y, np.power(x.astype(np.float64), e).astype(np.float32))
    (y,) = run_op("Pow", {"X": x, "E": np.array([2.0], np.float32)}, ["Y"], broadcast=1)
    assert_bits_equal(y, x * x)
    (y,) = run_op("Pow", {"X": x, "E": np.array([1.0, 2.0], np.float32)}, ["Y"], broadcast=1,
                  axis=0)
    assert_bits_equal(y, np.array([[1, 2, 3], [16, 25, 36]], np.float32))
    with pytest.raises(ValueError, match="Pow: input exponent must have the shape of X"):
        power(x, e=np.ones(3, np.float32))
    with pytest.raises(ValueError, match="broadcast dimension mismatch"):
        power(x, e=np.ones(2, np.float32), broadcast=True)
    with pytest.raises(ValueError, match="either as argument 'exponent' or as input 1"):
        power(x)
    workspace.FeedBlob("X", x)
    with pytest.raises(ValueError, match="argument 'exponent' is required"):
        workspace.RunOperatorOnce(core.CreateOperator("Pow", ["X"], ["Y"]))
    with pytest.raises(TypeError, match="input exponent must have the dtype of X"):
        power(x, e=np.ones((2, 3)))


def test_pow_gradient_argument_form():
    """Caffe2's sequence Pow(X, e-1), Mul(., dY), Scale(., e); the forward args are not copied."""
    x = np.random.RandomState(4).uniform(0.5, 2.0, (2, 3))
    op = core.CreateOperator("Pow", ["X"], ["Y"], exponent=1.5)
    gradient_check(op, {"X": x}, "X")
    grad_ops, g_input = core.GradientRegistry.GetGradientForOp(op, ["G"])
    assert [g.type for g in grad_ops] == ["Pow", "Mul", "Scale"] and g_input == ["X_grad"]
    assert [[(a.name, a.f) for a in g.arg] for g in grad_ops] == [
        [("exponent", 0.5)], [], [("scale", 1.5)]]
    workspace.FeedBlob("X", x)
    workspace.RunOperatorOnce(op)
    workspace.FeedBlob("G", np.ones_like(x))
    workspace.RunOperatorsOnce(grad_ops)
    np.testing.assert_allclose(workspace.FetchBlob("X_grad"), 1.5 * x**0.5, rtol=1e-12)


def test_pow_gradient_in_place_raises():
    """Caffe2's in-place def reads Y^((e-1)/e), which loses X's sign: the backward pass raises."""
    op = core.CreateOperator("Pow", ["B"], ["B"], exponent=2.0)
    grad_ops, _ = core.GradientRegistry.GetGradientForOp(op, ["G"])
    assert grad_ops[0].arg[0].f == 0.5  # Caffe2's def, field for field
    net = core.Net("pow_in_place")
    net.Copy(["X"], ["B"])
    net.Proto().op.append(op)
    with pytest.raises(OperatorError, match="Pow .*needs input 'B'.*overwritten in place"):
        net.AddGradientOperators(["B"])


def test_pow_gradient_tensor_form():
    rng = np.random.RandomState(5)
    x = rng.uniform(0.5, 2.0, (2, 3))
    e = rng.uniform(-1, 2, (2, 3))
    op = core.CreateOperator("Pow", ["X", "E"], ["Y"])
    gradient_check(op, {"X": x, "E": e}, "X")
    gradient_check(op, {"X": x, "E": e}, "E")
    op = core.CreateOperator("Pow", ["X", "E"], ["Y"], broadcast=1)
    gradient_check(op, {"X": x, "E": np.array([1.7])}, "E")
    gradient_check(op, {"X": x, "E": np.array([0.3, 1.2, 2.0])}, "E")


def test_div_forward():
    a = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], np.float32)
    (c,) = run_op("Div", {"A": a, "B": np.array([2.0, 4.0, 0.0], np.float32)}, ["C"])
    assert_bits_equal(c, np.array([[0.5, 0.5, np.inf], [2.0, 1.25, np.inf]], np.float32))
    (c,) = run_op("Div", {"A": a, "B": np.array([2.0], np.float32)}, ["C"])
    assert_bits_equal(c, a / np.float32(2))
    (c,) = run_op("Div", {"A": a, "B": np.array([1.0, 2.0], np.float32)}, ["C"],
                  broadcast=1, axis=0)
    assert_bits_equal(c, a / np.array([[1.0], [2.0]], np.float32))
    (c,) = run_op("Div", {"A": a, "B": np.array([3.0], np.float32)}, ["A"])  # in place
    assert_bits_equal(c, a / np.float32(3))
    for dtype in FLOATS:
        assert divide(np.ones(2, dtype), np.ones(1, dtype)).dtype == dtype
    with pytest.raises(ValueError, match="cannot be broadcast together"):
        divide(a, np.ones(2, np.float32))
    with pytest.raises(TypeError, match="input B must have the dtype of A"):
        divide(a, np.ones(3))


@pytest.mark.parametrize("shapes,kwargs", [
    (((2, 3), (2, 3)), {}),
    (((2, 3), (3,)), {}),
    (((2, 1), (1, 3)), {}),
    (((2, 3), (1,)), {}),
    (((2, 3), (2,)), {"broadcast": 1, "axis": 0}),
])
def test_div_gradient_finite_differences(shapes, kwargs):
    rng = np.random.RandomState(6)
    a = rng.uniform(-1, 1, shapes[0])
    b = rng.uniform(1, 2, shapes[1])
    op = core.CreateOperator("Div", ["A", "B"], ["C"], **kwargs)
    gradient_check(op, {"A": a, "B": b}, "A")
    gradient_check(op, {"A": a, "B": b}, "B")


def test_div_gradient_in_place():
    """Caffe2's DivGradient(dC, A, B, C) with A = C: A's shape is all it needs."""
    op = core.CreateOperator("Div", ["A", "B"], ["A"])
    grad_ops, g_input = core.GradientRegistry.GetGradientForOp(op, ["G"])
    assert list(grad_ops[0].input) == ["G", "A", "B", "A"] and g_input == ["A_grad", "B_grad"]
    a, b = np.array([1.0, 4.0]), np.array([2.0, 8.0])
    workspace.FeedBlob("A", a)
    workspace.FeedBlob("B", b)
    net = core.Net("div_in_place")
    net.Proto().op.append(op)
    grads = net.AddGradientOperators({"A": "G"})
    workspace.FeedBlob("G", np.ones(2))
    workspace.RunNetOnce(net)
    assert_bits_equal(workspace.FetchBlob(str(grads["A"])), 1 / b)
    assert_bits_equal(workspace.FetchBlob(str(grads["B"])), -(a / b) / b)


def test_integer_div_truncates_and_refuses_zero_divisors():
    a, b = np.array([7, -7, 7, -7], np.int32), np.array([2, 2, -2, -2], np.int32)
    (c,) = run_op("Div", {"A": a, "B": b}, ["C"])
    assert_bits_equal(c, np.array([3, -3, -3, 3], np.int32))  # C's division, as Caffe2
    with pytest.raises(ValueError, match="Div: input B holds 0: integer division by zero"):
        run_op("Div", {"A": a, "B": np.array([1, 0, 1, 1], np.int32)}, ["C"])


def test_div_gradient_legacy_three_inputs():
    """DivGradient(B, C, dC), Caffe2's legacy input order; A has C's shape."""
    b, c_out, dc = np.array([2.0, 4.0]), np.array([3.0, 0.5]), np.array([1.0, -2.0])
    workspace.FeedBlob("B", b)
    workspace.FeedBlob("C", c_out)
    workspace.FeedBlob("dC", dc)
    workspace.RunOperatorOnce(core.CreateOperator("DivGradient", ["B", "C", "dC"],
                                                  ["dA", "dB"]))
    assert_bits_equal(workspace.FetchBlob("dA"), dc / b)
    assert_bits_equal(workspace.FetchBlob("dB"), -dc * c_out / b)


def test_shape_inference_and_exports():
    net = core.Net("infer_clipping_ops")
    n = net.LpNorm(["x"], ["n"])
    r = net.Pow([n], ["r"], exponent=0.5)
    net.ClipTensorByScaling(["x", r], ["y"], threshold=1.0)
    net.Div(["x", r], ["q"])
    net.EnsureClipped(["x"], ["e"])
    shapes, types = workspace.InferShapesAndTypes(
        [net], blob_dimensions={"x": [3, 2]}, blob_types={"x": 1})
    assert shapes["n"] == [1] and shapes["r"] == [1]
    assert shapes["y"] == shapes["q"] == shapes["e"] == [3, 2]
    for name in ("clip_tensor_by_scaling", "ensure_clipped", "lp_norm", "lp_norm_gradient"):
        assert name in c2.__all__ and callable(getattr(c2, name))


def test_pow_exponent_beyond_the_dtype_is_inf_without_a_warning():
    import warnings

    from caffe2ops.ops.arithmetic import power, power_gradient

    x = np.array([2.0, 0.5], np.float16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert power(x, 1e10).tolist() == [np.inf, 0.0]
        assert np.isinf(power_gradient(x, np.ones(2, np.float16), 1e10)[0])
