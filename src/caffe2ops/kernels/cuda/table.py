"""Operator type -> CUDA runner, for ``DeviceOption(CUDA)`` nets and the functional API.

A runner has the CPU kernels' signature ``run(op, inputs, outs) -> outputs`` (``op.type``,
``op.args``) and works on device arrays: it checks what the CPU path checks that can be seen
without reading the data (dtypes, shapes, element counts, arguments; indices are copied to the
host and checked there, so what was checked is what the kernels read), allocates the outputs on
the current device and launches the kernels of this package. Operators not in :data:`RUNNERS`
have no CUDA kernel yet and raise naming themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from caffe2ops.errors import OperatorTypeError, OperatorValueError
from caffe2ops.kernels.cuda import elementwise as ew
from caffe2ops.kernels.cuda import fc as fc_kernels
from caffe2ops.kernels.cuda import optimizers as opt
from caffe2ops.kernels.cuda import reductions as red
from caffe2ops.kernels.cuda import rows as rk
from caffe2ops.kernels.cuda._launch import empty, is_device_array, rows2d, to_device, to_host
from caffe2ops.kernels.cuda.plan import row_plan
from caffe2ops.ops import _common as c

RUNNERS: dict[str, Callable] = {}


def runner(*types: str):
    def register(fn):
        for t in types:
            RUNNERS[t] = fn
        return fn

    return register


# -- checks on device arrays -----------------------------------------------------------------

def device(op: str, what: str, x: Any) -> Any:
    if not is_device_array(x):
        raise OperatorTypeError(
            f"{op}: {what} must be a GPU array on the operator's device; got {type(x).__name__}"
        )
    return x


def float_device(op: str, what: str, x: Any) -> Any:
    device(op, what, x)
    if np.dtype(x.dtype) not in c.FLOAT_DTYPES:
        raise OperatorTypeError(f"{op}: {what} must be {c.FLOAT_TEXT}; got {x.dtype}")
    return x


def like(op: str, what: str, x: Any, ref_what: str, ref: Any) -> Any:
    device(op, what, x)
    c.same_dtype(op, what, x, ref_what, ref)
    c.same_shape(op, what, x, ref_what, ref)
    return x


def scalar(op: str, what: str, x: Any, ref: Any) -> Any:
    float_device(op, what, x)
    if x.size != 1:
        raise OperatorValueError(f"{op}: {what} must have exactly one element; got {x.shape}")
    return x


def host_indices(op: str, what: str, x: Any, rows: int) -> np.ndarray:
    """Device or host indices, copied to the host and checked to lie in ``[0, rows)``."""
    host = to_host(x) if is_device_array(x) else np.asarray(x)
    return c.copied_row_indices(op, what, host, rows)


def out_like(buf: Any, shape: tuple, dtype: Any) -> Any:
    """``buf`` reused when it is a device array of that shape and dtype, else a new one."""
    if buf is not None and is_device_array(buf) and tuple(buf.shape) == tuple(shape) \
            and np.dtype(buf.dtype) == np.dtype(dtype):
        return buf
    return empty(tuple(shape), dtype)


def _fresh(buf: Any, inputs: list, shape: tuple, dtype: Any) -> Any:
    """An output buffer that is not one of ``inputs`` (kernels that read other elements)."""
    out = out_like(buf, shape, dtype)
    return empty(tuple(shape), dtype) if any(out is x for x in inputs) else out


# -- element-wise ----------------------------------------------------------------------------

@runner("Clip")
def _clip(op, inputs, outs):
    from caffe2ops.ops.clip import bounds

    x = device(op.type, "input X", inputs[0])
    c.require_dtype(op.type, "input X", x, c.NUMERIC_DTYPES, c.NUMERIC_TEXT)
    lo, hi = bounds(op.type, np.dtype(x.dtype), op.args["min"], op.args["max"])
    return [ew.clip(x, lo, hi, out_like(outs[0], x.shape, x.dtype))]


@runner("ClipGradient")
def _clip_gradient(op, inputs, outs):
    from caffe2ops.ops.clip import bounds

    y = device(op.type, "input Y", inputs[0])
    c.require_dtype(op.type, "input Y", y, c.NUMERIC_DTYPES, c.NUMERIC_TEXT)
    dy = like(op.type, "input dY", inputs[1], "Y", y)
    lo, hi = bounds(op.type, np.dtype(y.dtype), op.args["min"], op.args["max"])
    return [ew.clip_gradient(y, dy, lo, hi, out_like(outs[0], y.shape, y.dtype))]


@runner("EnsureClipped")
def _ensure_clipped(op, inputs, outs):
    from caffe2ops.ops.clip import bounds

    param = float_device(op.type, "input param", inputs[0])
    lo, hi = bounds(op.type, np.dtype(param.dtype), op.args["min"], op.args["max"])
    if len(inputs) == 1:
        return [ew.clip(param, lo, hi, out_like(outs[0], param.shape, param.dtype))]
    if param.ndim == 0:
        raise OperatorValueError(f"{op.type}: input param must have at least one dimension")
    names = getattr(op, "inputs", None), getattr(op, "outputs", None)
    if names[0] is not None and names[1][0] != names[0][0]:
        raise OperatorValueError(f"{op.type}: with indices (sparse mode) the output must be the "
                                 f"param blob '{names[0][0]}' (in place); got '{names[1][0]}'")
    idx = host_indices(op.type, "input indices", inputs[1], param.shape[0])
    plan = row_plan(idx)
    rk.ensure_clipped_rows(rows2d(param, param.shape[0]), plan, lo, hi)
    return [param]


def _alpha(op, dtype):
    return c.to_float_dtype(np.dtype(dtype), c.float_arg(op.type, "alpha", op.args["alpha"]))


@runner("ThresholdedRelu")
def _thresholded_relu(op, inputs, outs):
    x = float_device(op.type, "input X", inputs[0])
    return [ew.thresholded_relu(x, _alpha(op, x.dtype), out_like(outs[0], x.shape, x.dtype))]


@runner("ThresholdedReluGradient")
def _thresholded_relu_gradient(op, inputs, outs):
    y = float_device(op.type, "input Y", inputs[0])
    dy = like(op.type, "input dY", inputs[1], "Y", y)
    out = out_like(outs[0], y.shape, y.dtype)
    if len(inputs) == 3:
        x = like(op.type, "input X", inputs[2], "Y", y)
        return [ew.thresholded_relu_gradient_from_x(x, dy, _alpha(op, y.dtype), out)]
    return [ew.thresholded_relu_gradient(y, dy, out)]


def _unary(kernel, what="input X"):
    def run(op, inputs, outs):
        x = float_device(op.type, what, inputs[0])
        return [kernel(x, out_like(outs[0], x.shape, x.dtype))]

    return run


def _binary_same_shape(kernel, first="input Y", second="input dY"):
    def run(op, inputs, outs):
        a = float_device(op.type, first, inputs[0])
        b = like(op.type, second, inputs[1], first.split()[-1], a)
        return [kernel(a, b, out_like(outs[0], a.shape, a.dtype))]

    return run


RUNNERS.update({
    "Cos": _unary(ew.cos), "Relu": _unary(ew.relu), "Sigmoid": _unary(ew.sigmoid),
    "Tanh": _unary(ew.tanh, "input input"),
    "CosGradient": _binary_same_shape(ew.cos_gradient, "input X", "input dY"),
    "ReluGradient": _binary_same_shape(ew.relu_gradient),
    "SigmoidGradient": _binary_same_shape(ew.sigmoid_gradient),
    "TanhGradient": _binary_same_shape(ew.tanh_gradient),
})


def _no_broadcast(op):
    if op.args.get("broadcast"):
        raise OperatorValueError(
            f"{op.type}: broadcast=1 has no CUDA kernel yet; the inputs must have one shape")


@runner("Add", "Mul")
def _add_mul(op, inputs, outs):
    _no_broadcast(op)
    a = float_device(op.type, "input A", inputs[0])
    b = like(op.type, "input B", inputs[1], "A", a)
    kernel = ew.add if op.type == "Add" else ew.mul
    return [kernel(a, b, out_like(outs[0], a.shape, a.dtype))]


@runner("Scale")
def _scale(op, inputs, outs):
    x = float_device(op.type, "input X", inputs[0])
    s = c.to_float_dtype(np.dtype(x.dtype), c.float_arg(op.type, "scale", op.args["scale"]))
    return [ew.scale(x, s, out_like(outs[0], x.shape, x.dtype))]


@runner("Sum")
def _sum(op, inputs, outs):
    x0 = float_device(op.type, "input 0", inputs[0])
    xs = [x0] + [like(op.type, f"input {k}", x, "input 0", x0) for k, x in
                 enumerate(inputs[1:], 1)]
    out = out_like(outs[0], x0.shape, x0.dtype)
    return [ew.sum_arrays(xs, out)]


@runner("WeightedSum")
def _weighted_sum(op, inputs, outs):
    if len(inputs) % 2:
        raise OperatorValueError(f"{op.type}: inputs must come in (X, weight) pairs; got "
                                 f"{len(inputs)}")
    x0 = float_device(op.type, "input X0", inputs[0])
    xs = [x0] + [like(op.type, f"input X{k // 2}", inputs[k], "X0", x0)
                 for k in range(2, len(inputs), 2)]
    ws = [scalar(op.type, f"input w{k // 2}", inputs[k + 1], x0)
          for k in range(0, len(inputs), 2)]
    # in place on X0 is allowed: every pass reads element i before writing it
    out = outs[0] if outs[0] is x0 else _fresh(outs[0], xs, x0.shape, x0.dtype)
    return [ew.weighted_sum(xs, ws, out)]


@runner("CosineEmbeddingCriterion")
def _criterion(op, inputs, outs):
    s = float_device(op.type, "input S", inputs[0])
    label = device(op.type, "input label", inputs[1])
    c.require_dtype(op.type, "input label", label, c.INT_DTYPES, "an integer type")
    if label.size != s.size:
        raise OperatorValueError(f"{op.type}: input label must have as many elements as S "
                                 f"({s.size}); got {label.size}")
    m = c.to_float_dtype(np.dtype(s.dtype), c.float_arg(op.type, "margin", op.args["margin"]))
    out = _fresh(outs[0], [s, label], s.shape, s.dtype)
    return [ew.cosine_embedding_criterion(s, label, m, out)]


@runner("CosineEmbeddingCriterionGradient")
def _criterion_gradient(op, inputs, outs):
    s = float_device(op.type, "input S", inputs[0])
    label = device(op.type, "input label", inputs[1])
    c.require_dtype(op.type, "input label", label, c.INT_DTYPES, "an integer type")
    dloss = like(op.type, "input dLoss", inputs[2], "S", s)
    if label.size != s.size:
        raise OperatorValueError(f"{op.type}: input label must have as many elements as S "
                                 f"({s.size}); got {label.size}")
    m = c.to_float_dtype(np.dtype(s.dtype), c.float_arg(op.type, "margin", op.args["margin"]))
    out = out_like(outs[0], s.shape, s.dtype)
    return [ew.cosine_embedding_criterion_gradient(s, label, dloss, m, out)]


# -- rows --------------------------------------------------------------------------------

def _pair_2d(op, x, y):
    float_device(op.type, "input X", x)
    like(op.type, "input Y", y, "X", x)
    if x.ndim < 1:
        raise OperatorValueError(f"{op.type}: input X must have at least one dimension")
    n = x.shape[0]
    return rows2d(x, n), rows2d(y, n), n


@runner("CosineSimilarity")
def _cosine_similarity(op, inputs, outs):
    x, y, n = _pair_2d(op, inputs[0], inputs[1])
    out = _fresh(outs[0], inputs[:2], (n,), x.dtype)
    return [rk.cosine_similarity(x, y, out)]


@runner("CosineSimilarityGradient")
def _cosine_similarity_gradient(op, inputs, outs):
    x, y, n = _pair_2d(op, inputs[0], inputs[1])
    dz = float_device(op.type, "input dZ", inputs[2])
    if dz.size != n:
        raise OperatorValueError(f"{op.type}: input dZ must have {n} elements; got {dz.size}")
    dx = _fresh(outs[0], inputs, inputs[0].shape, x.dtype)
    dy = _fresh(outs[1], inputs + [dx], inputs[0].shape, x.dtype)
    rk.cosine_similarity_gradient(x, y, dz.reshape((n,)), rows2d(dx, n), rows2d(dy, n))
    return [dx, dy]


@runner("SquaredL2Distance")
def _squared_l2(op, inputs, outs):
    x, y, n = _pair_2d(op, inputs[0], inputs[1])
    out = _fresh(outs[0], inputs[:2], (n,), x.dtype)
    return [red.squared_l2_distance(inputs[0], inputs[1], out)]


@runner("SquaredL2DistanceGradient")
def _squared_l2_gradient(op, inputs, outs):
    x, y, n = _pair_2d(op, inputs[0], inputs[1])
    dz = float_device(op.type, "input dDistance", inputs[2])
    if dz.ndim != 1 or dz.shape[0] != n:
        raise OperatorValueError(f"{op.type}: input dDistance must have shape [{n}]; got "
                                 f"{dz.shape}")
    dx = out_like(outs[0], inputs[0].shape, x.dtype)
    dy = _fresh(outs[1], [dx], inputs[0].shape, x.dtype)
    return list(ew.squared_l2_distance_gradient(inputs[0], inputs[1], dz, dx, dy))


@runner("SparseNormalize")
def _sparse_normalize(op, inputs, outs):
    from caffe2ops.ops.sparse_normalize import _check_norm

    param = float_device(op.type, "input param", inputs[0])
    if param.ndim == 0:
        raise OperatorValueError(f"{op.type}: input param must have at least one dimension")
    norm = _check_norm(op.type, op.args["norm"])
    idx = host_indices(op.type, "input indices", inputs[1], param.shape[0])
    rk.sparse_normalize(rows2d(param, param.shape[0]), row_plan(idx), norm,
                        bool(op.args["use_max_norm"]))
    return [param]


@runner("Gather")
def _gather(op, inputs, outs):
    data = device(op.type, "input DATA", inputs[0])
    if data.ndim == 0:
        raise OperatorValueError(f"{op.type}: input DATA must have at least one dimension")
    if op.args.get("axis", 0) not in (0, -data.ndim):
        raise OperatorValueError(f"{op.type}: axis != 0 has no CUDA kernel yet")
    raw = to_host(inputs[1]) if is_device_array(inputs[1]) else np.asarray(inputs[1])
    c.require_dtype(op.type, "input INDICES", raw, c.INDEX_DTYPES, "int32 or int64")
    n = data.shape[0]
    flat = raw.astype(np.int64).reshape(-1)
    if flat.size and (flat.min() < -n or flat.max() >= n):
        bad = int(flat[(flat < -n) | (flat >= n)][0])
        from caffe2ops.errors import OperatorIndexError

        raise OperatorIndexError(f"{op.type}: index {bad} is out of range for {n} rows "
                                 f"(expected -{n} <= index < {n})")
    flat = np.where(flat < 0, flat + n, flat)
    shape = (*raw.shape, *data.shape[1:])
    out = _fresh(outs[0], [data], shape, data.dtype)
    if flat.size:
        rk.gather_rows(rows2d(data, n), to_device(flat), rows2d(out, flat.size))
    return [out]


def _offsets(op, lengths, n_indices: int) -> np.ndarray:
    host = to_host(lengths) if is_device_array(lengths) else np.asarray(lengths)
    c.require_dtype(op.type, "input LENGTHS", host, c.INDEX_DTYPES, "int32 or int64")
    lens = host.astype(np.int64).reshape(-1)
    if (lens < 0).any() or int(lens.sum()) != n_indices:
        raise OperatorValueError(f"{op.type}: input LENGTHS must be >= 0 and sum to the number "
                                 f"of indices ({n_indices}); got sum {int(lens.sum())}")
    return np.r_[0, np.cumsum(lens)].astype(np.int64)


@runner("SparseLengthsSum", "SparseLengthsWeightedSum", "SparseLengthsMean")
def _sparse_lengths(op, inputs, outs):
    weighted = op.type == "SparseLengthsWeightedSum"
    data = float_device(op.type, "input DATA", inputs[0])
    if data.ndim == 0:
        raise OperatorValueError(f"{op.type}: input DATA must have at least one dimension")
    indices, lengths = (inputs[2], inputs[3]) if weighted else (inputs[1], inputs[2])
    idx = host_indices(op.type, "input INDICES", indices, data.shape[0])
    weights = None
    if weighted:
        weights = float_device(op.type, "input SCALARS", inputs[1])
        if weights.size != idx.size:
            raise OperatorValueError(f"{op.type}: input SCALARS must have one value per index "
                                     f"({idx.size}); got {weights.size}")
        weights = weights.reshape((idx.size,))
    offsets = _offsets(op, lengths, idx.size)
    segments = offsets.size - 1
    out = _fresh(outs[0], [data], (segments, *data.shape[1:]), data.dtype)
    rk.segment_reduce(rows2d(data, data.shape[0]), to_device(idx if idx.size else
                                                             np.zeros(1, np.int64)),
                      to_device(offsets), weights, op.type == "SparseLengthsMean",
                      rows2d(out, segments))
    return [out]


@runner("SparseLengthsIndicesInGradientSumGradient",
        "SparseLengthsIndicesInGradientMeanGradient")
def _sparse_lengths_gradient(op, inputs, outs):
    dy = float_device(op.type, "input dY", inputs[0])
    offsets = _offsets(op, inputs[1], int(inputs[2].size))
    segments = offsets.size - 1
    if dy.ndim == 0 or dy.shape[0] != segments:
        raise OperatorValueError(f"{op.type}: input dY must have {segments} rows; got "
                                 f"{dy.shape}")
    n = int(offsets[-1])
    seg = np.repeat(np.arange(segments, dtype=np.int64), np.diff(offsets))
    out = _fresh(outs[0], [dy], (n, *dy.shape[1:]), dy.dtype)
    if n:
        rk.segment_gradient(rows2d(dy, segments), to_device(seg), to_device(offsets), None,
                            "Mean" in op.type, rows2d(out, n))
    return [out]


@runner("ScatterWeightedSum")
def _scatter_weighted_sum(op, inputs, outs):
    x0 = float_device(op.type, "input X_0", inputs[0])
    if x0.ndim == 0:
        raise OperatorValueError(f"{op.type}: input X_0 must have at least one dimension")
    w0 = scalar(op.type, "input Weight_0", inputs[1], x0)
    idx = host_indices(op.type, "input INDICES", inputs[2], x0.shape[0])
    rows = x0.shape[0]
    d = x0.size // rows if rows else 0
    values, weights = [], []
    for k in range(3, len(inputs), 2):
        xk = float_device(op.type, f"input X_{k // 2}", inputs[k])
        c.same_dtype(op.type, f"input X_{k // 2}", xk, "X_0", x0)
        if xk.size != idx.size * d:
            raise OperatorValueError(f"{op.type}: input X_{k // 2} must have {idx.size}x{d} "
                                     f"elements; got {xk.size}")
        values.append(xk.reshape((max(idx.size, 1) if xk.size else 0, d)) if xk.size else xk)
        weights.append(scalar(op.type, f"input Weight_{k // 2}", inputs[k + 1], x0))
    if idx.size:
        rk.scatter_weighted_sum(rows2d(x0, rows), w0, row_plan(idx), values, weights)
    return [x0]


# -- reductions --------------------------------------------------------------------------

@runner("LpNorm")
def _lp_norm(op, inputs, outs):
    from caffe2ops.ops.lp_norm import check_p

    x = float_device(op.type, "input X", inputs[0])
    p = check_p(op.type, op.args["p"])
    out = _fresh(outs[0], [x], (1,), x.dtype)
    return [red.lp_norm(x, p, bool(op.args["average"]), out)]


@runner("LpNormGradient")
def _lp_norm_gradient(op, inputs, outs):
    from caffe2ops.ops.lp_norm import check_p

    x = float_device(op.type, "input X", inputs[0])
    dn = scalar(op.type, "input dN", inputs[1], x)
    c.same_dtype(op.type, "input dN", dn, "X", x)
    p = check_p(op.type, op.args["p"])
    out = _fresh(outs[0], [dn], x.shape, x.dtype)
    if x.size == 0:
        return [out]
    ct = np.dtype(np.float64) if np.dtype(x.dtype) == np.float64 else np.dtype(np.float32)
    s = ct.type(ct.type(to_host(dn).reshape(-1)[0]) /
                ct.type(x.size if op.args["average"] else 1))
    return [ew.lp_norm_gradient(x, s, p, out)]


@runner("SumElements", "SumSqrElements", "AveragedLoss")
def _sum_elements(op, inputs, outs):
    x = float_device(op.type, "input X", inputs[0])
    average = op.type == "AveragedLoss" or bool(op.args.get("average", False))
    out = _fresh(outs[0], [x], (), x.dtype)
    return [red.sum_of(x, average, op.type == "SumSqrElements", out)]


@runner("SumElementsGradient", "AveragedLossGradient")
def _sum_elements_gradient(op, inputs, outs):
    x = float_device(op.type, "input X", inputs[0])
    ds = scalar(op.type, "input dSum", inputs[1], x)
    c.same_dtype(op.type, "input dSum", ds, "X", x)
    average = op.type == "AveragedLossGradient" or bool(op.args.get("average", False))
    out = _fresh(outs[0], [ds], x.shape, x.dtype)
    return [ew.fill_from(ds, average, out)]


@runner("ClipTensorByScaling")
def _clip_tensor_by_scaling(op, inputs, outs):
    from caffe2ops.ops.clip_tensor_by_scaling import check_threshold, scaling_factor

    x = float_device(op.type, "input input_tensor", inputs[0])
    val = scalar(op.type, "input val", inputs[1], x)
    extra = scalar(op.type, "input additional_threshold", inputs[2], x) \
        if len(inputs) == 3 else None
    t = check_threshold(op.type, op.args["threshold"])
    factor = scaling_factor(np.dtype(x.dtype), to_host(val), t,
                            None if extra is None else to_host(extra))
    out = out_like(outs[0], x.shape, x.dtype)
    if factor is None:
        return [ew.scale(x, 1, out) if out is not x else x]
    return [ew.scale(x, factor, out)]


# -- FC --------------------------------------------------------------------------------

def _fc_dims(op, x, w):
    from caffe2ops.ops.fc import fc_dims

    return fc_dims(op.type, x, w, op.args["axis"], op.args["axis_w"])


@runner("FC")
def _fc(op, inputs, outs):
    x = float_device(op.type, "input X", inputs[0])
    w = device(op.type, "input W", inputs[1])
    b = device(op.type, "input b", inputs[2])
    for what, a in (("input W", w), ("input b", b)):
        c.same_dtype(op.type, what, a, "X", x)
    m, k, n, ax = _fc_dims(op, x, w)
    if b.size != n:
        raise OperatorValueError(f"{op.type}: input b must have N = {n} elements; got {b.size}")
    out = _fresh(outs[0], inputs, (*x.shape[:ax], n), x.dtype)
    fc_kernels.fc(x.reshape((m, k)), w.reshape((n, k)), b.reshape((n,)), out.reshape((m, n)))
    return [out]


@runner("FCGradient")
def _fc_gradient(op, inputs, outs):
    x = float_device(op.type, "input X", inputs[0])
    w = device(op.type, "input W", inputs[1])
    dy = device(op.type, "input dY", inputs[2])
    c.same_dtype(op.type, "input W", w, "X", x)
    c.same_dtype(op.type, "input dY", dy, "X", x)
    m, k, n, _ = _fc_dims(op, x, w)
    if dy.size != m * n:
        raise OperatorValueError(f"{op.type}: input dY must have M*N = {m * n} elements; got "
                                 f"{dy.size}")
    dw = _fresh(outs[0], inputs, w.shape, x.dtype)
    db = _fresh(outs[1], inputs + [dw], (n,), x.dtype)
    dx = _fresh(outs[2], inputs + [dw, db], x.shape, x.dtype) if len(outs) == 3 else None
    scratch = empty((n, m), x.dtype)
    fc_kernels.fc_gradient(x.reshape((m, k)), w.reshape((n, k)), dy.reshape((m, n)),
                           dw.reshape((n, k)), db, None if dx is None else dx.reshape((m, k)),
                           scratch)
    return [dw, db, dx] if dx is not None else [dw, db]


# -- optimizers --------------------------------------------------------------------------

def _compute(dtype) -> np.dtype:
    """The optimizers' scalars (epsilon, decay, betas, Adam's correction) are rounded to the
    compute dtype: float32 for float16 parameters."""
    return np.dtype(np.float64) if np.dtype(dtype) == np.float64 else np.dtype(np.float32)


def _eps(op, dtype):
    return c.to_float_dtype(_compute(dtype), c.float_arg(op.type, "epsilon",
                                                         op.args["epsilon"]))


@runner("Adagrad")
def _adagrad(op, inputs, outs):
    param = float_device(op.type, "input param", inputs[0])
    moment = like(op.type, "input moment", inputs[1], "param", param)
    grad = like(op.type, "input grad", inputs[2], "param", param)
    lr = scalar(op.type, "input lr", inputs[3], param)
    decay = c.to_float_dtype(_compute(param.dtype),
                             c.float_arg(op.type, "decay", op.args.get("decay", 1.0)))
    if len(outs) == 4:
        eff = _fresh(outs[2], inputs, param.shape, param.dtype)
        upd = _fresh(outs[3], inputs + [eff], param.shape, param.dtype)
        opt.adagrad(param, moment, grad, lr, _eps(op, param.dtype), decay, eff, upd)
        return [param, moment, eff, upd]
    opt.adagrad(param, moment, grad, lr, _eps(op, param.dtype), decay)
    return [param, moment]


@runner("SparseAdagrad", "RowWiseSparseAdagrad")
def _sparse_adagrad(op, inputs, outs):
    rowwise = op.type == "RowWiseSparseAdagrad"
    param = float_device(op.type, "input param", inputs[0])
    moment = float_device(op.type, "input moment", inputs[1])
    c.same_dtype(op.type, "input moment", moment, "param", param)
    if param.ndim == 0:
        raise OperatorValueError(f"{op.type}: input param must have at least one dimension")
    rows = param.shape[0]
    d = param.size // rows if rows else 0
    if rowwise and moment.size != rows:
        raise OperatorValueError(f"{op.type}: input moment must have one value per row "
                                 f"({rows}); got {moment.size}")
    if not rowwise:
        c.same_shape(op.type, "input moment", moment, "param", param)
    idx = host_indices(op.type, "input indices", inputs[2], rows)
    grad = float_device(op.type, "input grad", inputs[3])
    c.same_dtype(op.type, "input grad", grad, "param", param)
    if grad.size != idx.size * d:
        raise OperatorValueError(f"{op.type}: input grad must have {idx.size}x{d} elements; "
                                 f"got shape {grad.shape}")
    lr = scalar(op.type, "input lr", inputs[4], param)
    if idx.size:
        hist = moment.reshape((rows,)) if rowwise else rows2d(moment, rows)
        opt.sparse_adagrad(rows2d(param, rows), hist, row_plan(idx), grad.reshape((idx.size, d)),
                           lr, _eps(op, param.dtype), rowwise)
    return [param, moment]


@runner("Adam")
def _adam(op, inputs, outs):
    from caffe2ops.ops.optimizers import _betas, _correction

    param = float_device(op.type, "input param", inputs[0])
    m1 = like(op.type, "input moment_1", inputs[1], "param", param)
    m2 = like(op.type, "input moment_2", inputs[2], "param", param)
    grad = like(op.type, "input grad", inputs[3], "param", param)
    lr = scalar(op.type, "input lr", inputs[4], param)
    it = to_host(inputs[5]) if is_device_array(inputs[5]) else np.asarray(inputs[5])
    if it.dtype != np.int64 or it.size != 1:
        raise OperatorTypeError(f"{op.type}: input iter must be one int64; got {it.dtype} "
                                f"{it.shape}")
    dt = _compute(param.dtype).type
    b1, b2 = _betas(op.type, op.args["beta1"], op.args["beta2"], _compute(param.dtype))
    corr = dt(_correction(int(it.reshape(-1)[0]) + 1, b1, b2))
    eff = _fresh(outs[3], inputs, param.shape, param.dtype) if len(outs) == 4 else None
    opt.adam(param, m1, m2, grad, lr, corr, b1, b2, _eps(op, param.dtype), eff)
    return [param, m1, m2] + ([eff] if eff is not None else [])


def run(op, inputs: list, outs: list) -> list:
    """Run ``op`` (``.type``, ``.args``) on device arrays with its CUDA kernels."""
    fn = RUNNERS.get(op.type)
    if fn is None:
        from caffe2ops.errors import OperatorError

        raise OperatorError(
            f"{op.type}: no CUDA kernel yet (CUDA kernels exist for: "
            f"{', '.join(sorted(RUNNERS))}); run it with DeviceOption(CPU)"
        )
    return fn(op, inputs, outs)


@runner("ConstantFill")
def _constant_fill(op, inputs, outs):
    """Filled on the host by the CPU kernel, then copied to the device (one transfer; no
    device kernel: the value is uniform and the output usually small, e.g. a loss gradient)."""
    from caffe2ops.runtime.schema import get_schema

    host_inputs = [np.zeros(x.shape, x.dtype) if is_device_array(x) else x for x in inputs]
    result = get_schema(op.type).kernel(op, host_inputs, [None])
    return [to_device(np.asarray(result[0]))]


@runner("Sub")
def _sub(op, inputs, outs):
    _no_broadcast(op)
    a = float_device(op.type, "input A", inputs[0])
    b = like(op.type, "input B", inputs[1], "A", a)
    return [ew.sub(a, b, out_like(outs[0], a.shape, a.dtype))]


@runner("AddGradient", "SubGradient", "MulGradient")
def _binary_gradient(op, inputs, outs):
    _no_broadcast(op)
    dc = float_device(op.type, "input dC", inputs[0])
    a = like(op.type, "input A", inputs[1], "dC", dc)
    b = like(op.type, "input B", inputs[2], "dC", dc)
    da = _fresh(outs[0], inputs, dc.shape, dc.dtype)
    db = _fresh(outs[1], inputs + [da], dc.shape, dc.dtype)
    if op.type == "MulGradient":
        return [ew.mul(dc, b, da), ew.mul(dc, a, db)]
    ew.copy(dc, da)
    if op.type == "SubGradient":
        return [da, ew.scale(dc, -1, db)]
    return [da, ew.copy(dc, db)]


@runner("WeightedSumGradient")
def _weighted_sum_gradient(op, inputs, outs):
    if op.args.get("grad_on_w"):
        raise OperatorValueError(f"{op.type}: grad_on_w=1 has no CUDA kernel yet")
    dy = float_device(op.type, "input dY", inputs[0])
    pairs = inputs[1:]
    grads = []
    for k in range(0, len(pairs), 2):
        like(op.type, f"input X{k // 2}", pairs[k], "dY", dy)
        w = scalar(op.type, f"input w{k // 2}", pairs[k + 1], dy)
        out = _fresh(outs[k // 2] if k // 2 < len(outs) else None, inputs + grads, dy.shape,
                     dy.dtype)
        grads.append(ew.weighted_sum([dy], [w], out))
    return grads


RUNNERS["Log"] = _unary(ew.log)


@runner("Copy")
def _copy(op, inputs, outs):
    x = device(op.type, "input", inputs[0])
    return [ew.copy(x, _fresh(outs[0], [x], x.shape, x.dtype))]


@runner("CopyOnDeviceLike", "CopyFromCPUInput")
def _copy_to_device(op, inputs, outs):
    """The input (host or device) as a new array on this operator's device."""
    x = inputs[0]
    if is_device_array(x):
        return [ew.copy(x, _fresh(outs[0], [x], x.shape, x.dtype))]
    return [to_device(np.array(x, copy=True))]


@runner("EnsureCPUOutput")
def _ensure_cpu_output(op, inputs, outs):
    """A host (NumPy) copy: EnsureCPUOutput's output lives on the CPU whatever its device."""
    x = inputs[0]
    return [to_host(x) if is_device_array(x) else np.array(x, copy=True)]


@runner("GaussianFill", "UniformFill", "XavierFill", "MSRAFill", "GivenTensorFill",
        "GivenTensorIntFill", "GivenTensorInt64Fill", "GivenTensorBoolFill")
def _host_fill(op, inputs, outs):
    """Generated on the host by the CPU kernel (the same numbers as on the CPU, from the same
    operator's generator), then copied to the device: no device kernel."""
    return _constant_fill(op, inputs, outs)


@runner("SparseAdam")
def _sparse_adam(op, inputs, outs):
    from caffe2ops.ops.optimizers import _betas, _correction

    if len(outs) == 4:
        raise OperatorValueError(f"{op.type}: the 4th output (effective grad) is not supported")
    param = float_device(op.type, "input param", inputs[0])
    if param.ndim == 0:
        raise OperatorValueError(f"{op.type}: input param must have at least one dimension")
    m1 = like(op.type, "input moment_1", inputs[1], "param", param)
    m2 = like(op.type, "input moment_2", inputs[2], "param", param)
    rows = param.shape[0]
    d = param.size // rows if rows else 0
    idx = host_indices(op.type, "input indices", inputs[3], rows)
    grad = float_device(op.type, "input grad", inputs[4])
    c.same_dtype(op.type, "input grad", grad, "param", param)
    if grad.size != idx.size * d:
        raise OperatorValueError(f"{op.type}: input grad must have {idx.size}x{d} elements; "
                                 f"got shape {grad.shape}")
    lr = scalar(op.type, "input lr", inputs[5], param)
    it = to_host(inputs[6]) if is_device_array(inputs[6]) else np.asarray(inputs[6])
    if it.dtype != np.int64 or it.size != 1:
        raise OperatorTypeError(f"{op.type}: input iter must be one int64; got {it.dtype}")
    ct = _compute(param.dtype)
    dt = ct.type
    b1, b2 = _betas(op.type, op.args["beta1"], op.args["beta2"], ct)
    corr64 = _correction(int(it.reshape(-1)[0]) + 1, b1, b2)
    lr_corr = dt(dt(to_host(lr).reshape(-1)[0]) * dt(corr64))
    if idx.size:
        opt.sparse_adam(rows2d(param, rows), rows2d(m1, rows), rows2d(m2, rows), row_plan(idx),
                        grad.reshape((idx.size, d)), lr, lr_corr, corr64, b1, b2,
                        _eps(op, param.dtype))
    return [param, m1, m2]


@runner("SparseLengthsIndicesInGradientWeightedSumGradient")
def _sparse_lengths_weighted_gradient(op, inputs, outs):
    if op.args.get("grad_on_weights"):
        raise OperatorValueError(f"{op.type}: grad_on_weights=1 has no CUDA kernel yet")
    weights = float_device(op.type, "input SCALARS", inputs[0])
    dy = float_device(op.type, "input dY", inputs[1])
    offsets = _offsets(op, inputs[2], int(inputs[3].size))
    segments = offsets.size - 1
    n = int(offsets[-1])
    if dy.ndim == 0 or dy.shape[0] != segments:
        raise OperatorValueError(f"{op.type}: input dY must have {segments} rows; got "
                                 f"{dy.shape}")
    if weights.size != n:
        raise OperatorValueError(f"{op.type}: input SCALARS must have {n} values; got "
                                 f"{weights.size}")
    seg = np.repeat(np.arange(segments, dtype=np.int64), np.diff(offsets))
    out = _fresh(outs[0], [dy], (n, *dy.shape[1:]), dy.dtype)
    if n:
        rk.segment_gradient(rows2d(dy, segments), to_device(seg), to_device(offsets),
                            weights.reshape((n,)), False, rows2d(out, n))
    return [out]


@runner("Iter", "AtomicIter", "CreateMutex", "LearningRate")
def _host_counter(op, inputs, outs):
    """Counters live on the host, as in Caffe2 (its CUDA Iter kept the counter in a CPU
    tensor): the CPU kernel runs on the host blobs. LearningRate's one-element output is then
    copied to the device."""
    from caffe2ops.runtime.schema import get_schema

    host = [to_host(x) if is_device_array(x) else x for x in inputs]
    result = get_schema(op.type).kernel(op, host, list(outs))
    if op.type == "LearningRate":
        return [to_device(np.asarray(result[0]))]
    return result


@runner("Max")
def _max(op, inputs, outs):
    x0 = float_device(op.type, "input 0", inputs[0])
    xs = [x0] + [like(op.type, f"input {k}", x, "input 0", x0)
                 for k, x in enumerate(inputs[1:], 1)]
    out = outs[0] if outs[0] is x0 else _fresh(outs[0], xs, x0.shape, x0.dtype)
    return [ew.elementwise_max(xs, out)]


@runner("MaxGradient")
def _max_gradient(op, inputs, outs):
    m = float_device(op.type, "input M", inputs[0])
    dm = like(op.type, "input dM", inputs[1], "M", m)
    grads = []
    for k, x in enumerate(inputs[2:]):
        like(op.type, f"input X{k}", x, "M", m)
        out = _fresh(outs[k] if k < len(outs) else None, inputs + grads, m.shape, m.dtype)
        grads.append(ew.elementwise_max_gradient(m, dm, x, out))
    return grads


@runner("SparseToDense")
def _sparse_to_dense(op, inputs, outs):
    """Rows ``values[k]`` added in order into row ``indices[k]`` of zeros (a row plan: one block
    per row, occurrences in order, as ``np.add.at``)."""
    values = float_device(op.type, "input VALUES", inputs[1])
    if values.ndim == 0:
        raise OperatorValueError(f"{op.type}: input VALUES must have at least one dimension")
    raw = to_host(inputs[0]) if is_device_array(inputs[0]) else np.asarray(inputs[0])
    c.require_dtype(op.type, "input INDICES", raw, c.INDEX_DTYPES, "int32 or int64")
    if raw.ndim != 1 or raw.shape[0] != values.shape[0]:
        raise OperatorValueError(f"{op.type}: input INDICES must be 1-D with one index per row "
                                 f"of VALUES ({values.shape[0]}); got shape {raw.shape}")
    if len(inputs) == 3:
        if inputs[2].ndim == 0:
            raise OperatorValueError(f"{op.type}: input DATA_TO_INFER_DIM must have at least "
                                     "one dimension")
        n = inputs[2].shape[0]
    else:
        n = int(raw.max()) + 1 if raw.size else 0
    idx = c.copied_row_indices(op.type, "input INDICES", raw, n)
    out = to_device(np.zeros((n, *values.shape[1:]), values.dtype))
    d = values.size // values.shape[0] if values.shape[0] else 0
    if idx.size and d:
        one = to_device(np.ones(1, values.dtype))
        rk.scatter_weighted_sum(rows2d(out, n), one, row_plan(idx),
                                [values.reshape((idx.size, d))], [one])
    return [out]
