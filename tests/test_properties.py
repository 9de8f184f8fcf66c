"""Hypothesis property tests in the style of Caffe2's own operator tests (caffe2-operators.md
§8: ``hu.tensor`` = 1–4 dims of size 1–5, elements in [-1, 1]; their kink-avoidance shifts and
argument ranges), plus the cases Caffe2 never tested: ThresholdedRelu's pass-through branch and
negative alpha, NaN/inf inputs, ``min > max``, labels other than ±1, and duplicate and
out-of-range SparseNormalize indices.

Reference functions come from ``tests/optable.py`` (float64 formulas from the contract).
Profiles (tests/conftest.py): ``CAFFE2_HYPOTHESIS_PROFILE=dev`` (default) / sandcastle / debug.
The examples are derandomized (the same on every run) except under the ``debug`` profile, which
explores with fresh random examples.
"""

from __future__ import annotations

import contextlib
import os

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import assume, given, settings
from optable import (
    BACKENDS,
    F16,
    F32,
    F64,
    SN_TOL,
    arr,
    assert_close,
    assert_same,
    cec_grad_ref,
    cec_ref,
    clip_grad_ref,
    clip_ref,
    gradient_check,
    proto_args,
    sim_ref,
    sn_ref,
    trelu_grad_ref,
    trelu_ref,
)

import caffe2ops as c2
from caffe2ops import core, workspace

pytestmark = pytest.mark.usefixtures("fresh_module_workspace")


def kernels(backend):
    return c2.reference_kernels() if backend == "reference" else contextlib.nullcontext()


backends = pytest.mark.parametrize("backend", BACKENDS)
seeded = settings(derandomize=os.environ.get("CAFFE2_HYPOTHESIS_PROFILE", "dev") != "debug")

# ---- Caffe2's hypothesis_test_util strategies ------------------------------------------------


def dims(min_dim=1, max_dim=4, min_value=1, max_value=5):
    return st.lists(st.integers(min_value, max_value), min_size=min_dim, max_size=max_dim)


def tensor(min_dim=1, max_dim=4, dtype=F32, elements=None, **kwargs):
    """``hu.tensor``: 1–4 dims of size 1–5, float elements in [-1, 1] by default."""
    if elements is None:
        elements = st.floats(-1.0, 1.0, width=np.dtype(dtype).itemsize * 8)
    return dims(min_dim, max_dim, **kwargs).flatmap(
        lambda d: hnp.arrays(dtype, tuple(d), elements=elements))


def tensors(n, min_dim=1, max_dim=4, dtype=F32, elements=None):
    """``hu.tensors``: ``n`` arrays of one shape."""
    if elements is None:
        elements = st.floats(-1.0, 1.0, width=np.dtype(dtype).itemsize * 8)
    return dims(min_dim, max_dim).flatmap(
        lambda d: st.tuples(*[hnp.arrays(dtype, tuple(d), elements=elements)
                              for _ in range(n)]))


def any_floats(dtype):
    """Every float of ``dtype``: NaN, ±inf, ±0, subnormals."""
    return st.floats(allow_nan=True, allow_infinity=True, width=np.dtype(dtype).itemsize * 8)


float_dtypes = st.sampled_from([F16, F32, F64])


def run_op(op_type, inputs: dict, outputs, **args):
    for name, value in inputs.items():
        workspace.FeedBlob(name, value)
    workspace.RunOperatorOnce(core.CreateOperator(op_type, list(inputs), list(outputs), **args))
    return [workspace.FetchBlob(o) for o in outputs]


def shift_away(x, points, margin, shift):
    x = x.copy()
    for p in points:
        x[np.abs(x.astype(np.float64) - p) < margin] += x.dtype.type(shift)
    return x


# ---- Clip ------------------------------------------------------------------------------------


@backends
@seeded
@given(X=tensor(), min_=st.floats(-1.0, 0.0), max_=st.floats(0.0, 1.0), inplace=st.booleans())
def test_clip_caffe2_style(backend, X, min_, max_, inplace):
    """clip_op_test: reference ``X.clip(min, max)`` and a gradient check, X moved 0.1 away from
    the bounds where it is within 0.05 of one (Caffe2's kink avoidance)."""
    X = shift_away(X, [min_, max_], 0.05, 0.1)
    with kernels(backend):
        out = "X" if inplace else "Y"
        (Y,) = run_op("Clip", {"X": X}, [out], min=min_, max=max_)
        lo, hi = np.float32(min_), np.float32(max_)
        np.testing.assert_allclose(Y, X.clip(lo, hi), rtol=1e-4, atol=1e-4)  # Caffe2's check
        # bit-exact with the contract's formula (X.clip may differ on the sign of a zero)
        assert_same(Y, clip_ref((X,), {"min": min_, "max": max_})[0])
        gradient_check("Clip", ["X"], ["Y"], [X], {"min": min_, "max": max_}, [0], 0.05, 0.005)


@backends
@seeded
@given(X=tensor(min_dim=0), min_=st.floats(-2.0, 0.0), max_=st.floats(0.0, 2.0))
def test_clip_pytorch_caffe2_style_with_empty(backend, X, min_, max_):
    """PT clip_op_test: a 0-d draw is replaced by an empty array; bounds in [-2, 0] / [0, 2]."""
    if X.ndim == 0:
        X = np.zeros((0,), F32)
    with kernels(backend):
        assert_same(c2.clip(X, min_, max_), clip_ref((X,), {"min": min_, "max": max_})[0])


@backends
@seeded
@given(dtype=float_dtypes, data=st.data(), min_=st.none() | st.floats(allow_nan=True),
       max_=st.none() | st.floats(allow_nan=True))
def test_clip_any_values_any_bounds(backend, dtype, data, min_, max_):
    """NaN/±inf inputs, NaN/inf/huge bounds, min > max, omitted bounds: bit-exact formula."""
    x = data.draw(hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0,
                                                     max_side=4), elements=any_floats(dtype)))
    args = {k: v for k, v in (("min", min_), ("max", max_)) if v is not None}
    with kernels(backend):
        expected = clip_ref((x,), args)[0]
        assert_same(c2.clip(x, min=min_, max=max_), expected, f"{args}")
        (y,) = run_op("Clip", {"X": x}, ["Y"], **args)
        assert_same(y, clip_ref((x,), proto_args(args))[0], f"runtime {args}")
    if min_ is not None and max_ is not None and rounded_gt(min_, max_, dtype):
        finite = ~np.isnan(x)
        assert np.all(expected[finite] == arr(max_, dtype))  # min > max gives max


def rounded_gt(a, b, dtype):
    return bool(arr(a, dtype) > arr(b, dtype))


@backends
@seeded
@given(dtype=st.sampled_from([np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint32]),
       data=st.data(), min_=st.none() | st.integers(-300, 300),
       max_=st.none() | st.integers(-300, 300))
def test_clip_integers(backend, dtype, data, min_, max_):
    info = np.iinfo(dtype)
    x = data.draw(hnp.arrays(dtype, hnp.array_shapes(min_dims=1, max_dims=2, max_side=6),
                             elements=st.integers(int(info.min), int(info.max))))
    args = {k: v for k, v in (("min", min_), ("max", max_)) if v is not None}
    with kernels(backend):
        y = c2.clip(x, min=min_, max=max_)
        assert_same(y, clip_ref((x,), args)[0])
        (z,) = run_op("Clip", {"X": x}, ["Y"], **args)
        assert_same(z, y)


@backends
@seeded
@given(dtype=float_dtypes, data=st.data(), min_=st.floats(-1, 1), max_=st.floats(-1, 1))
def test_clip_gradient_any_values(backend, dtype, data, min_, max_):
    """dX = dY where min < Y < max strictly, else dY·0, for any Y/dY (NaN, ±inf included)."""
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
    y = data.draw(hnp.arrays(dtype, shape, elements=any_floats(dtype)))
    dy = data.draw(hnp.arrays(dtype, shape, elements=any_floats(dtype)))
    args = {"min": min_, "max": max_}
    with kernels(backend):
        assert_same(c2.clip_gradient(y, dy, min_, max_), clip_grad_ref((y, dy), args)[0])


# ---- ThresholdedRelu -------------------------------------------------------------------------


@backends
@seeded
@given(X=tensor(), alpha=st.floats(1.0, 5.0), engine=st.sampled_from(["", "CUDNN"]))
def test_thresholded_relu_caffe2_style(backend, X, alpha, engine):
    """thresholded_relu_op_test t1/t2: alpha in [1, 5], elements in [-1, 1] (all zeros)."""
    with kernels(backend):
        (Y,) = run_op("ThresholdedRelu", {"X": X}, ["Y"], alpha=alpha, engine=engine)
        ref = X.copy()
        ref[ref <= np.float32(alpha)] = 0
        assert_same(Y, ref)


@backends
@seeded
@given(X=tensor(), alpha=st.floats(-1.0, 1.0))
def test_thresholded_relu_pass_through_branch(backend, X, alpha):
    """What Caffe2 never exercised: alpha in [-1, 1] so that x > alpha happens; the output is
    x itself (no shift), and the gradient through the registry is 1[x > alpha]·dY for every
    alpha, negative included (checked exactly and by central differences away from alpha)."""
    a = np.float32(alpha)
    assume(np.any(X > a))
    X = shift_away(X, [alpha], 0.05, 0.1)
    with kernels(backend):
        (Y,) = run_op("ThresholdedRelu", {"X": X}, ["Y"], alpha=alpha)
        assert_same(Y, trelu_ref((X,), {"alpha": alpha})[0])
        assert np.all(Y[X > a] == X[X > a])
        net = core.Net("trelu_prop")
        y = net.ThresholdedRelu(["X"], ["Y"], alpha=alpha)
        net.AddGradientOperators({y: "dY"})
        dY = np.arange(1, X.size + 1, dtype=F32).reshape(X.shape)
        workspace.FeedBlob("dY", dY)
        workspace.RunNetOnce(net)
        assert_same(workspace.FetchBlob("X_grad"), np.where(X > a, dY, np.float32(0)))
        gradient_check("ThresholdedRelu", ["X"], ["Y"], [X], {"alpha": alpha}, [0], 0.05,
                       0.005)


@backends
@seeded
@given(dtype=float_dtypes, data=st.data(), alpha=st.floats(allow_nan=False))
def test_thresholded_relu_any_values(backend, dtype, data, alpha):
    x = data.draw(hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0,
                                                     max_side=4), elements=any_floats(dtype)))
    dy = data.draw(hnp.arrays(dtype, x.shape, elements=any_floats(dtype)))
    with kernels(backend):
        y = c2.thresholded_relu(x, alpha)
        assert_same(y, trelu_ref((x,), {"alpha": alpha})[0])
        assert not np.any(np.signbit(y) & (y == 0) & ~(x == 0))  # masked entries are +0
        assert_same(c2.thresholded_relu_gradient(y, dy), trelu_grad_ref((y, dy), {})[0])
        assert_same(c2.thresholded_relu_gradient(y, dy, x=x, alpha=alpha),
                    trelu_grad_ref((y, dy, x), {"alpha": alpha})[0])


# ---- Cos -------------------------------------------------------------------------------------

COS_TOL = {F16: 1e-3, F32: 2.5e-7, F64: 4e-16}


@backends
@seeded
@given(X=hnp.arrays(F32, (10,), elements=st.floats(-10.0, 10.0, width=32)))
def test_cos_caffe2_style(backend, X):
    """hypothesis_test.test_cos: dims [10], elements in [-10, 10] (Caffe2 used 1e-4; the
    contract's tolerance is 2.5e-7 absolute + relative against float64)."""
    with kernels(backend):
        (Y,) = run_op("Cos", {"X": X}, ["Y"])
        assert_close(Y, np.cos(X.astype(F64)), F32, 2.5e-7, 2.5e-7)


@backends
@seeded
@given(X=st.sampled_from([(1, 1), (2, 3), (2, 3, 4), (2, 3, 4, 5)]).flatmap(
    lambda s: hnp.arrays(F32, s, elements=st.floats(0.0, 1.0, width=32))))
def test_cos_gradient_caffe2_style(backend, X):
    """gradient_check_test.TestCos: shapes (1,1) to (2,3,4,5), X = rand - 0.5."""
    X = X - np.float32(0.5)
    with kernels(backend):
        gradient_check("Cos", ["X"], ["Y"], [X], {}, [0], 0.01, 0.05)


@backends
@seeded
@given(dtype=float_dtypes, data=st.data())
def test_cos_any_values(backend, dtype, data):
    x = data.draw(hnp.arrays(dtype, hnp.array_shapes(min_dims=1, max_dims=2, max_side=6),
                             elements=any_floats(dtype)))
    dy = data.draw(hnp.arrays(dtype, x.shape, elements=st.floats(-1e3, 1e3, width=32)))
    tol = COS_TOL[dtype]
    with np.errstate(invalid="ignore"), kernels(backend):
        assert_close(c2.cos(x), np.cos(x.astype(F64)), dtype, tol, tol)
        assert_close(c2.cos_gradient(x, dy), -dy.astype(F64) * np.sin(x.astype(F64)), dtype,
                     tol, tol)


# ---- CosineEmbeddingCriterion ----------------------------------------------------------------


@backends
@seeded
@given(N=st.integers(10, 20), seed=st.integers(0, 65535), margin=st.floats(-0.5, 0.5))
def test_cosine_embedding_criterion_caffe2_style(backend, N, seed, margin):
    """cosine_embedding_criterion_op_test: S = randn(N), Y = ±1 (int32); then
    S[|S - margin| < 0.1] += 0.2 and a gradient check on S."""
    r = np.random.RandomState(seed)
    S = r.randn(N).astype(F32)
    Y = r.choice([-1, 1], size=N).astype(np.int32)
    m = np.float32(margin)
    with kernels(backend):
        (loss,) = run_op("CosineEmbeddingCriterion", {"S": S, "Y": Y}, ["loss"], margin=margin)
        caffe2_ref = (1 - S) * (Y == 1) + np.maximum(S - m, 0) * (Y == -1)
        np.testing.assert_allclose(loss, caffe2_ref, rtol=1e-4, atol=1e-4)
        assert_same(loss, cec_ref((S, Y), {"margin": margin})[0])
        S = shift_away(S, [margin], 0.1, 0.2)
        gradient_check("CosineEmbeddingCriterion", ["S", "Y"], ["loss"], [S, Y],
                       {"margin": margin}, [0], 0.05, 0.005)


@backends
@seeded
@given(dtype=float_dtypes, data=st.data(), margin=st.floats(-2, 2),
       label_dtype=st.sampled_from([np.int8, np.int32, np.int64]))
def test_cosine_embedding_criterion_any_labels_and_values(backend, dtype, data, margin,
                                                          label_dtype):
    """Any label ≠ 1 is dissimilar (0, 2, -5 …); NaN/inf similarities; S == margin."""
    n = data.draw(st.integers(0, 12))
    s = data.draw(hnp.arrays(dtype, (n,), elements=any_floats(dtype)
                             | st.just(float(arr(margin, dtype)))))
    label = data.draw(hnp.arrays(label_dtype, (n,), elements=st.integers(-3, 3)))
    dl = data.draw(hnp.arrays(dtype, (n,), elements=any_floats(dtype)))
    args = {"margin": margin}
    with kernels(backend):
        assert_same(c2.cosine_embedding_criterion(s, label, margin), cec_ref((s, label), args)[0])
        assert_same(c2.cosine_embedding_criterion_gradient(s, label, dl, margin),
                    cec_grad_ref((s, label, dl), args)[0])


# ---- CosineSimilarity ------------------------------------------------------------------------


@backends
@seeded
@given(n=st.integers(1, 3), dim=st.integers(4, 16), seed=st.integers(0, 2**16))
def test_cosine_similarity_caffe2_style(backend, n, dim, seed):
    """distance_op_test: X, Y uniform(-1, 1) float32 of shape (n, dim); reference
    Σxy/((‖x‖+1e-12)(‖y‖+1e-12)) at rtol = atol = 1e-4; gradient checks for X and Y with
    stepsize 1e-2, threshold 1e-2."""
    r = np.random.RandomState(seed)
    X = r.uniform(-1, 1, (n, dim)).astype(F32)
    Y = r.uniform(-1, 1, (n, dim)).astype(F32)
    with kernels(backend):
        (Z,) = run_op("CosineSimilarity", {"X": X, "Y": Y}, ["Z"])
        x, y = X.astype(F64), Y.astype(F64)
        caffe2_ref = np.sum(x * y, 1) / ((np.linalg.norm(x, axis=1) + 1e-12)
                                         * (np.linalg.norm(y, axis=1) + 1e-12))
        np.testing.assert_allclose(Z, caffe2_ref, rtol=1e-4, atol=1e-4)
        assert_close(Z, sim_ref((X, Y), {})[0], F32, 2e-6, 1e-6)
        gradient_check("CosineSimilarity", ["X", "Y"], ["Z"], [X, Y], {}, [0, 1], 1e-2, 1e-2)


@backends
@seeded
@given(xy=tensors(2), scale=st.sampled_from([1.0, 1e-7, 0.0]))
def test_cosine_similarity_any_shape(backend, xy, scale):
    """hu.tensors shapes: 1-D (N rows of length 1) to 4-D (rows flattened); tiny and zero rows
    exercise the 1e-12 clamp on the squared norms."""
    X, Y = xy
    X = (X * np.float32(scale)).astype(F32)
    with kernels(backend):
        z = c2.cosine_similarity(X, Y)
        assert z.shape == (X.shape[0],)
        assert_close(z, sim_ref((X, Y), {})[0], F32, 2e-6, 1e-6)
        assert np.all(np.abs(z) <= 1 + 1e-6)


# ---- SparseNormalize -------------------------------------------------------------------------


@st.composite
def sparse_normalize_inputs(draw, dtype=F32):
    """sparse_normalize_test: param and grad 2-D of one shape; param += 0.02·sign(param), exact
    zeros +0.02; 1–5 indices from arange(rows) — here duplicates are allowed."""
    param, grad = draw(tensors(2, min_dim=2, max_dim=2, dtype=dtype))
    param = param + (np.float32(0.02) * np.sign(param)).astype(dtype)
    param[param == 0] = dtype.type(0.02)
    rows = param.shape[0]
    indices = np.array(draw(st.lists(st.integers(0, rows - 1), min_size=1, max_size=5)),
                       np.int64)
    return param, grad, indices


@backends
@seeded
@given(inputs=sparse_normalize_inputs(), norm=st.floats(1.0, 4.0), use_max_norm=st.booleans(),
       use_grad=st.booleans())
def test_sparse_normalize_caffe2_style_duplicates_normalize_once(backend, inputs, norm,
                                                                 use_max_norm, use_grad):
    param, grad, indices = inputs
    args = {"norm": norm, "use_max_norm": use_max_norm}
    with kernels(backend):
        names = {"param": param, "indices": indices}
        if use_grad:
            names["grad"] = grad
        (got,) = run_op("SparseNormalize", names, ["param"], **args)
        expected = sn_ref((param, indices), proto_args(args))[0]
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)  # Caffe2's 1e-4
        assert_close(got, expected, F32, *SN_TOL[F32])
        once = c2.sparse_normalize(param.copy(), np.unique(indices), norm, use_max_norm)
        dup = c2.sparse_normalize(param.copy(), indices, norm, use_max_norm)
        assert_same(dup, once)  # duplicates normalize a row once, bit for bit
        assert_same(got, c2.sparse_normalize(param.copy(), np.unique(indices),
                                             float(np.float32(norm)), use_max_norm))
        untouched = np.setdiff1d(np.arange(param.shape[0]), indices)
        assert_same(got[untouched], param[untouched])


@backends
@seeded
@given(inputs=sparse_normalize_inputs(dtype=F16), norm=st.floats(1.0, 4.0),
       use_max_norm=st.booleans())
def test_float16_sparse_normalize_caffe2_style(backend, inputs, norm, use_max_norm):
    """use_fp16 variant: Float16SparseNormalize on float16 params, threshold 1e-2."""
    param, grad, indices = inputs
    args = {"norm": norm, "use_max_norm": use_max_norm}
    with kernels(backend):
        (got,) = run_op("Float16SparseNormalize", {"param": param, "indices": indices},
                        ["param"], **args)
        assert got.dtype == F16
        expected = sn_ref((param, indices), proto_args(args))[0]
        np.testing.assert_allclose(got.astype(F64), expected, rtol=1e-2, atol=1e-2)
        assert_close(got, expected, F16, *SN_TOL[F16])


@backends
@seeded
@given(data=st.data(), dtype=float_dtypes)
def test_sparse_normalize_out_of_range_indices_leave_param_unchanged(backend, data, dtype):
    param = data.draw(tensor(min_dim=1, max_dim=3, dtype=dtype))
    rows = param.shape[0]
    bad = data.draw(st.integers(rows, rows + 3) | st.integers(-rows - 3, -1))
    indices = data.draw(st.lists(st.integers(0, rows - 1), max_size=4))
    position = data.draw(st.integers(0, len(indices)))
    indices.insert(position, bad)
    idx = np.array(indices, data.draw(st.sampled_from([np.int32, np.int64])))
    before = param.tobytes()
    with kernels(backend):
        with pytest.raises(IndexError, match=f"SparseNormalize.*indices.*{bad}"):
            c2.sparse_normalize(param, idx, 0.1, False)
        assert param.tobytes() == before
        workspace.FeedBlob("param", param)
        workspace.FeedBlob("indices", idx)
        op = core.CreateOperator("SparseNormalize", ["param", "indices"], ["param"], norm=0.1)
        with pytest.raises(IndexError):
            workspace.RunOperatorOnce(op)
        assert workspace.FetchBlob("param").tobytes() == before


@backends
@seeded
@given(data=st.data(), dtype=float_dtypes, norm=st.just(0.0) | st.floats(1e-3, 3.0),
       use_max_norm=st.booleans())
def test_sparse_normalize_any_values(backend, data, dtype, norm, use_max_norm):
    """NaN/inf rows, zero rows, any shape ≥ 1-D, any (in-range, repeated) indices."""
    param = data.draw(hnp.arrays(dtype, hnp.array_shapes(min_dims=1, max_dims=3, max_side=4),
                                 elements=st.floats(-100, 100, width=16) | st.sampled_from(
                                     [0.0, -0.0, np.nan, np.inf, -np.inf])))
    rows = param.shape[0]
    idx = np.array(data.draw(st.lists(st.integers(0, rows - 1), max_size=6)), np.int64)
    with kernels(backend), np.errstate(invalid="ignore", over="ignore"):
        got = c2.sparse_normalize(param.copy(), idx, norm, use_max_norm)
        expected = sn_ref((param, idx), {"norm": norm, "use_max_norm": use_max_norm})[0]
        finite = np.isfinite(expected)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
        np.testing.assert_array_equal(got[np.isinf(expected)], expected[np.isinf(expected)])
        rtol, atol = SN_TOL[dtype]
        assert_close(got[finite], expected[finite], dtype, rtol, atol)
