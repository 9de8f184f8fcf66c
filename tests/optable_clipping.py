"""Table entries (see optable.py) for the gradient-clipping operators and the helpers
``GradientClipping`` emits: ClipTensorByScaling, EnsureClipped, LpNorm and LpNormGradient, Pow
and PowGradient, Div and DivGradient. References are written from the formulas (Caffe2's
clip_tensor_op, ensure_clipped_op, lpnorm_op, pow_op and elementwise_div_op, as the operators'
docstrings restate them): ClipTensorByScaling's factor ``fl(t/val)`` and LpNormGradient in
float32 for float16 tensors; LpNorm's sum in float64, rounded once; powers by C's ``pow``
(``math.pow``, its exceptions mapped to C99's results) in float64, rounded once; divisions in
the dtype (C's truncation for integers); Div's broadcast gradients accumulated from +0 in the
dtype in the order of C's elements (Caffe2's loop).

float16/float32 results and integer results are compared bit for bit. float64 results are too,
except where float64 is the working precision of an unspecified step: LpNorm's float64 sum (its
order), and Pow/PowGradient's float64 ``pow`` and ``log`` (the platform's: NumPy's SIMD ``pow``
is within 1 ulp of C's, not equal to it), which are compared within a few ulp."""

from __future__ import annotations

import math

import numpy as np
from optable import (
    F16,
    F32,
    F64,
    FLOATS,
    INTS,
    BadInput,
    GradSample,
    OpEntry,
    Sample,
    _nonan_signbits,
    arr,
    assert_close,
    assert_same,
    away_from,
    clip_ref,
    clip_samples,
    f64,
    finite_limits,
    rounded,
    special,
    uniform,
)
from optable_arith import _accumulate, legacy_view

import caffe2ops as c2
from caffe2ops.ops.arithmetic import divide, divide_gradient, power, power_gradient

NON_FLOAT = (np.bool_, np.int32, np.int64, np.complex64, np.longdouble)
I8, I32, I64, U8 = (np.dtype(t) for t in (np.int8, np.int32, np.int64, np.uint8))


def _compute(dtype) -> np.dtype:
    """The working precision: float16 tensors compute in float32 (Caffe2 has float kernels)."""
    return F32 if np.dtype(dtype) == F16 else np.dtype(dtype)


def fl(value, dtype) -> float:
    """``value`` (an exact float64 result) rounded once to ``dtype``: an IEEE operation on two
    float32 or float16 values, done in float64 and rounded, is the correctly rounded one."""
    return float(arr(value, dtype))


def f64_within(rtol: float, atol: float):
    """float16/float32/integer outputs bit for bit; float64 outputs within ``atol + rtol·|e|``
    with the same NaN positions and signs (±0 included)."""

    def compare(got, expected, sample, dtype, what):
        for k, (g, e) in enumerate(zip(got, expected, strict=True)):
            label = f"{what} output {k}"
            if np.dtype(dtype) != F64:
                assert_same(g, e, label)
                continue
            assert_close(g, e, F64, rtol, atol, label)
            np.testing.assert_array_equal(_nonan_signbits(g), _nonan_signbits(e),
                                          err_msg=f"{label}: sign bits")

    return compare


def _legacy_axis(args) -> int:
    """Caffe2's broadcast axis: ``order.find(axis_str)`` if ``axis_str`` is given."""
    if args.get("axis_str"):
        return args.get("order", "NCHW").find(args["axis_str"])
    return args.get("axis", -1)


def _b_view(a_shape, b, args) -> np.ndarray:
    """B as NumPy broadcasts it: Caffe2's legacy rule with ``broadcast=1``, else as is."""
    if args.get("broadcast"):
        return b.reshape(legacy_view(a_shape, b.shape, _legacy_axis(args)))
    return b


def _broadcast_args(args) -> dict:
    """The functional API's keywords (it has no ``axis_str``: the axis it names is passed)."""
    return {"broadcast": bool(args.get("broadcast", False)), "axis": _legacy_axis(args)}


# --------------------------------------------------------------------------------------------
# ClipTensorByScaling
# --------------------------------------------------------------------------------------------


def ctbs_ref(inputs, args):
    """``t = fl(threshold)·fl(additional)``; if ``val > t`` (strict): ``y = x·fl(t/val)``, one
    multiply per element, else ``y = x`` (float32 arithmetic for float16 tensors)."""
    x, val = inputs[:2]
    ct = _compute(x.dtype)
    t = fl(rounded(args["threshold"], x.dtype), ct)
    if len(inputs) > 2:
        t = fl(t * fl(f64(inputs[2]).reshape(-1)[0], ct), ct)
    v = fl(f64(val).reshape(-1)[0], ct)
    if not v > t:
        return (np.array(x, copy=True),)
    with np.errstate(all="ignore"):
        factor = rounded(fl(t / v, ct), x.dtype)
        return ((f64(x) * factor).astype(x.dtype),)


def ctbs_samples(dtype):
    d = np.dtype(dtype)
    x = uniform(300, (5, 3), -2.0, 2.0, d)
    norm = arr([np.linalg.norm(f64(x))], d)
    s = special(d)
    lo, hi = finite_limits(d)
    return [
        Sample((x, norm, arr([0.5], d)), {"threshold": 1.0},
               "random 5x3, val = its norm, additional threshold 0.5"),
        Sample((x, norm), {"threshold": 1.0}, "no additional threshold"),
        Sample((x, arr(np.linalg.norm(f64(x)), d)), {"threshold": 2.5},
               "0-d val (Caffe2's test: np.array(norm))"),
        Sample((x, arr([2.0], d)), {"threshold": 2.0},
               "val == threshold: unchanged (a factor would be 1 too)"),
        Sample((x, arr([2.0], d)), {"threshold": 1.0}, "val > threshold: halved"),
        Sample((x, arr([0.5], d)), {"threshold": 1.0}, "val < threshold: unchanged"),
        Sample((x, arr([3.0], d), arr([2.0], d)), {"threshold": 2.0},
               "val < threshold·additional: unchanged"),
        Sample((x, arr([-5.0], d)), {"threshold": 1.0}, "negative val: unchanged"),
        Sample((x, arr([np.nan], d)), {"threshold": 1.0}, "NaN val never clips"),
        Sample((s, arr([np.inf], d)), {"threshold": 1.0},
               "inf val: factor 0, so ±0 and NaN for ±inf"),
        Sample((s, arr([4.0], d)), {"threshold": 1.0},
               "specials scaled by 1/4: NaN and ±inf stay, tiny underflows"),
        Sample((s, arr([4.0], d)), {"threshold": 0.1}, "threshold rounded to the dtype"),
        Sample((s, arr([4.0], d)), {"threshold": 3}, "int threshold accepted"),
        Sample((x, arr([3.0], F64 if d != F64 else F16)), {"threshold": 1.0},
               "val of another float dtype"),
        Sample((x, arr([3.0], d), arr([0.25], F32 if d != F32 else F64)), {"threshold": 4.0},
               "additional threshold of another float dtype"),
        Sample((s, arr([1.0], d), arr([-2.0], d)), {"threshold": 1.0},
               "negative additional threshold: val > t, the factor flips signs"),
        Sample((x, arr([1.0], d), arr([0.0], d)), {"threshold": 1.0},
               "zero additional threshold: factor 0"),
        Sample((x, arr([1.0], d), arr([np.nan], d)), {"threshold": 1.0},
               "NaN additional threshold never clips"),
        Sample((x, arr([hi], d), arr([hi], d)), {"threshold": 2.0},
               "val = max, t = 2·max (inf in float32/float64): never clips"),
        Sample((x, arr([hi], d)), {"threshold": 1.0},
               "val = max: a tiny factor (subnormal in float16)"),
        Sample((x, arr([lo], d)), {"threshold": 1.0}, "lowest val: unchanged"),
        Sample((arr(3.0, d), arr([5.0], d)), {"threshold": 1.0}, "0-d x"),
        Sample((np.zeros((0, 3), d), arr([2.0], d)), {"threshold": 1.0}, "empty x"),
    ]


def ctbs_functional(inputs, args):
    extra = inputs[2] if len(inputs) > 2 else None
    return (c2.clip_tensor_by_scaling(inputs[0], inputs[1], args["threshold"], extra),)


def ctbs_bad():
    op = "ClipTensorByScaling"
    x, v = arr(np.ones((2, 2)), F32), arr([4.0], F32)
    return [
        BadInput((x, v), {"threshold": 0.0}, ValueError, (op, "'threshold'", "greater than 0"),
                 "zero threshold"),
        BadInput((x, v), {"threshold": -1.0}, ValueError, (op, "'threshold'", "greater than 0"),
                 "negative threshold"),
        BadInput((x, v), {"threshold": np.nan}, ValueError, (op, "'threshold'"),
                 "NaN threshold"),
        BadInput((x, v), {}, ValueError, (op, "'threshold'", "greater than 0"),
                 "no threshold: Caffe2's default 0 is refused", via=("runtime",)),
        BadInput((x, v), {"threshold": "one"}, TypeError, (op, "'threshold'"),
                 "string threshold"),
        BadInput((x, arr([1.0, 2.0], F32)), {"threshold": 1.0}, ValueError,
                 (op, "input val", "exactly 1 element"), "val of 2 elements"),
        BadInput((x, np.zeros(0, F32)), {"threshold": 1.0}, ValueError,
                 (op, "input val", "exactly 1 element"), "empty val"),
        BadInput((x, np.array([4], np.int64)), {"threshold": 1.0}, TypeError,
                 (op, "input val", "int64"), "integer val"),
        BadInput((x, v, np.zeros(2, F32)), {"threshold": 1.0}, ValueError,
                 (op, "input additional_threshold", "exactly 1 element"),
                 "additional threshold of 2 elements"),
        BadInput((x, v, np.array([True])), {"threshold": 1.0}, TypeError,
                 (op, "input additional_threshold", "bool"), "bool additional threshold"),
        BadInput((np.array([True, False]), v), {"threshold": 1.0}, TypeError,
                 (op, "input x", "bool"), "bool x"),
    ]


# --------------------------------------------------------------------------------------------
# EnsureClipped
# --------------------------------------------------------------------------------------------


def ec_ref(inputs, args):
    """Dense: Clip. Sparse: the rows ``param[indices]`` clipped (duplicates once), the others
    unchanged."""
    if len(inputs) == 1:
        return clip_ref(inputs, args)
    param, indices = inputs[:2]
    out = np.array(param, copy=True)
    rows = sorted({int(i) for i in np.asarray(indices).reshape(-1)})
    if rows:
        out[rows] = clip_ref((param[rows],), args)[0]
    return (out,)


def _ec_values(dtype, seed, shape):
    d = np.dtype(dtype)
    if d.kind in "iu":
        lo = -20 if d.kind == "i" else 0
        return np.random.default_rng(seed).integers(lo, 20, size=shape).astype(d)
    return uniform(seed, shape, -3.0, 3.0, d)


def ec_samples(dtype):
    d = np.dtype(dtype)
    bounds = {"min": 2.0, "max": 7.0} if d.kind in "iu" else {"min": -1.0, "max": 1.0}
    p = _ec_values(d, 310, (5, 3))
    i64, i32 = np.int64, np.int32
    sparse = [
        Sample((p, np.array([3, 0], i64), _ec_values(d, 311, (2, 3))), bounds,
               "sparse: rows 3 and 0 clipped, grad given"),
        Sample((p, np.array([1, 4, 1, 1], i32), np.zeros((4, 3), d)), bounds,
               "sparse: int32 indices, duplicates"),
        Sample((p, np.array([[2, 0], [4, 2]], i64), np.zeros((2, 2, 3), d)), bounds,
               "sparse: 2-D indices, grad (2, 2, 3)"),
        Sample((p, np.array([2], i64)), bounds, "sparse: no grad input"),
        Sample((p, np.zeros(0, i64), np.zeros((0, 3), d)), bounds,
               "sparse: no indices: unchanged"),
        Sample((p, np.array([0, 2], i64), np.zeros((2, 3), F64 if d != F64 else F32)), bounds,
               "sparse: grad is only shape-checked (its dtype and values are not read)"),
        Sample((_ec_values(d, 312, (3, 2, 2)), np.array([1], i64), np.zeros((1, 2, 2), d)),
               bounds, "sparse: 3-D param, rows of 2x2"),
        Sample((_ec_values(d, 313, (3, 2, 2)), np.array([2, 0], i64), np.zeros((2, 4), d)),
               bounds, "sparse: grad rows flattened to the param's row size"),
        Sample((_ec_values(d, 314, (6,)), np.array([0, 5], i32), np.zeros(2, d)), bounds,
               "sparse: 1-D param, rows of one"),
        Sample((np.zeros((0, 3), d), np.zeros(0, i32), np.zeros((0, 3), d)), bounds,
               "sparse: empty param, no indices"),
    ]
    if d.kind == "f":
        s = special(d).reshape(-1, 1)
        rows = np.arange(0, s.shape[0], 2, dtype=i64)
        sparse += [
            Sample((s, rows, np.zeros((rows.size, 1), d)), bounds,
                   "sparse: specials, even rows: NaN stays, ±inf clipped"),
            Sample((s, rows, np.zeros((rows.size, 1), d)), {},
                   "sparse: no bounds: ±inf -> ±max"),
            Sample((s, rows), {"min": 1.0, "max": -1.0}, "sparse: min > max gives max"),
        ]
    else:
        info = np.iinfo(d)
        q = np.array([[info.min, info.max], [3, 9], [info.max, info.min]], d)
        sparse += [
            Sample((q, np.array([0, 2], i64), np.zeros((2, 2), d)), {"min": 2.5, "max": 8.5},
                   "sparse: integer param, fractional bounds round inward"),
            Sample((q, np.array([1], i32)), {}, "sparse: no bounds: unchanged"),
        ]
    return sparse + [Sample(s.inputs, s.args, f"dense: {s.desc}") for s in clip_samples(d)]


def ec_functional(inputs, args):
    """Dense: a new array, ``param`` unchanged. Sparse: ``param`` updated in place, returned."""
    param = inputs[0]
    lo, hi = args.get("min"), args.get("max")
    if len(inputs) == 1:
        before = param.tobytes()
        y = c2.ensure_clipped(param, lo, hi)
        assert y is not param and param.tobytes() == before, "dense EnsureClipped wrote param"
        return (y,)
    grad = inputs[2] if len(inputs) > 2 else None
    y = c2.ensure_clipped(param, lo, hi, inputs[1], grad=grad)
    assert y is param, "sparse EnsureClipped must update and return param"
    return (y,)


def ec_outputs(inputs) -> tuple[str, ...]:
    """With indices (sparse mode) the output must be the param blob."""
    return ("output_param",) if len(inputs) == 1 else ("param",)


def ec_bad():
    op = "EnsureClipped"
    p = arr(np.arange(6.0).reshape(3, 2), F32)
    g = np.zeros((2, 2), F32)
    return [
        BadInput((p, np.array([0, 3]), g), {"min": 0.0}, IndexError,
                 (op, "input indices[1] = 3", "out of range"), "index past the rows"),
        BadInput((p, np.array([-1], np.int32)), {"min": 0.0}, IndexError,
                 (op, "input indices[0] = -1", "out of range"), "negative index"),
        BadInput((p, np.array([0.0, 1.0]), g), {}, TypeError,
                 (op, "input indices", "int32 or int64", "float64"), "float indices"),
        BadInput((p, np.array([0, 1], np.int16), g), {}, TypeError,
                 (op, "input indices", "int16"), "int16 indices"),
        BadInput((p, np.array([0, 1]), np.zeros((2, 3), F32)), {}, ValueError,
                 (op, "input grad", "row size 2"), "grad rows of another size"),
        BadInput((p, np.array([[0, 1]]), np.zeros(2, F32)), {}, ValueError,
                 (op, "input grad", "indices.ndim = 2"), "grad with fewer dims than indices"),
        BadInput((arr(1.0, F32), np.zeros(0, np.int64)), {}, ValueError,
                 (op, "input param", "dimension"), "sparse 0-d param"),
        BadInput((np.array([True, False]),), {}, TypeError, (op, "input param", "bool"),
                 "bool param"),
        BadInput((np.array([[True, False]]), np.array([0])), {}, TypeError,
                 (op, "input param", "bool"), "sparse bool param"),
        BadInput((np.array([1 + 2j]),), {}, TypeError, (op, "input param", "complex128"),
                 "complex param"),
        BadInput((p,), {"min": "zero"}, TypeError, (op, "'min'"), "string min"),
        BadInput((p, np.array([0])), {"max": [1.0, 2.0]}, TypeError, (op, "'max'"),
                 "sparse: list max"),
        BadInput((p,), {"min": True}, TypeError, (op, "'min'"), "bool min",
                 via=("functional",)),
    ]


# --------------------------------------------------------------------------------------------
# LpNorm / LpNormGradient
# --------------------------------------------------------------------------------------------


def lp_ref(inputs, args):
    """``Σ|x|`` (p=1) or ``Σx²`` (p=2, no root) in float64, ``/numel`` if average, rounded
    once; shape [1]."""
    (x,) = inputs
    v = f64(x).reshape(-1)
    with np.errstate(all="ignore"):
        total = float(np.sum(np.abs(v)) if args.get("p", 2) == 1 else np.sum(v * v))
        if args.get("average", False):
            total /= v.size
    return (arr([total], x.dtype),)


def lp_samples(dtype):
    d = np.dtype(dtype)
    x = uniform(320, (3, 4), -2.0, 2.0, d)
    s = special(d)
    finite = s[np.isfinite(s)]
    samples = []
    for p in (1, 2):
        samples += [
            Sample((x,), {"p": p}, f"p={p}: random 3x4"),
            Sample((x,), {"p": p, "average": True}, f"p={p}: average"),
            Sample((finite,), {"p": p}, f"p={p}: finite specials (max: inf in the dtype)"),
            Sample((s,), {"p": p}, f"p={p}: specials with NaN: NaN"),
            Sample((arr([np.inf, -np.inf, 1.0], d),), {"p": p}, f"p={p}: ±inf: inf"),
            Sample((arr([-0.0, -0.0], d),), {"p": p}, f"p={p}: -0 only: +0"),
            Sample((np.zeros((0, 3), d),), {"p": p}, f"p={p}: empty: 0"),
            Sample((arr(-3.0, d),), {"p": p, "average": True}, f"p={p}: 0-d"),
        ]
    tiny = float(np.finfo(d).tiny)
    samples += [
        Sample((x,), {}, "default p=2, no average"),
        Sample((x,), {"p": 2, "average": False}, "explicit average=False"),
        Sample((x,), {"p": 1.0}, "integral float p accepted"),
        Sample((arr([tiny, -tiny, 3 * tiny], d),), {"p": 2},
               "squares of tiny values: exact in float64, the total rounds to 0"),
        Sample((uniform(321, (3, 5), dtype=d),), {"p": 1, "average": True},
               "average over 15 elements (not a power of 2)"),
        Sample((uniform(322, (100, 100), dtype=d),), {"p": 2},
               "10^4 elements (the large-input sum of squares)"),
        Sample((uniform(323, (600, 500), dtype=d),), {"p": 1, "average": True},
               "3·10^5 elements (more than one chunk of |x|)"),
    ]
    return samples


def lp_functional(inputs, args):
    return (c2.lp_norm(inputs[0], **args),)


def lp_bad():
    x = arr([1.0, -2.0], F32)
    return [
        BadInput((x,), {"p": 3}, ValueError, ("LpNorm", "'p'", "1 or 2"), "p=3"),
        BadInput((x,), {"p": 0}, ValueError, ("LpNorm", "'p'", "1 or 2"), "p=0"),
        BadInput((x,), {"p": "2"}, TypeError, ("LpNorm", "'p'"), "string p"),
        BadInput((x,), {"p": 1.5}, ValueError, ("LpNorm", "'p'", "1 or 2"), "p=1.5",
                 via=("functional",)),
        BadInput((x,), {"p": 1.5}, TypeError, ("LpNorm", "'p'", "int"),
                 "p=1.5: a float Argument that is not integral", via=("runtime",)),
        BadInput((x,), {"average": 2}, TypeError, ("LpNorm", "'average'", "bool"),
                 "average=2"),
        BadInput((np.zeros((0, 2), F32),), {"average": True}, ValueError,
                 ("LpNorm", "input X", "empty"), "average of an empty X"),
        BadInput((np.array(["a"]),), {}, TypeError, ("LpNorm", "input X"), "string X"),
    ]


def lp_grad_check(dtype):
    if np.dtype(dtype) != F64:
        return []
    x = away_from(uniform(324, (2, 3), dtype=F64), [0.0], 0.05, 0.1)
    return [
        GradSample((uniform(325, (3, 4), dtype=F64),), {"p": 2}, (0,), "p=2"),
        GradSample((uniform(326, (2, 3), dtype=F64),), {"p": 2, "average": True}, (0,),
                   "p=2, average"),
        GradSample((x,), {"p": 1}, (0,), "p=1, away from 0"),
        GradSample((x,), {"p": 1, "average": True}, (0,), "p=1, average, away from 0"),
    ]


def lpg_ref(inputs, args):
    """``s = dN/size`` (size = numel if average, else 1); p=2: ``dX = (2x)·s``; p=1:
    ``dX = sign(x)·s`` with 0 where ``|x| <= 1e-12`` or NaN; float32 arithmetic for float16."""
    x, dn = inputs
    if x.size == 0:
        return (np.zeros(x.shape, x.dtype),)
    ct = _compute(x.dtype)
    size = x.size if args.get("average", False) else 1
    with np.errstate(all="ignore"):
        s = fl(f64(dn).reshape(-1)[0] / fl(size, ct), ct)
        v = f64(x)
        if args.get("p", 2) == 2:
            r = arr(arr(v * 2.0, ct).astype(np.float64) * s, ct)
        else:
            eps = fl(1e-12, ct)
            sign = (v > eps).astype(np.float64) - (v < -eps).astype(np.float64)
            r = arr(sign * s, ct)
        return (arr(r.astype(np.float64), x.dtype),)


def lpg_samples(dtype):
    d = np.dtype(dtype)
    x = uniform(330, (3, 4), -2.0, 2.0, d)
    s = special(d)
    dead = arr([1e-12, -1e-12, 2e-12, -2e-12, 1e-13, 0.0, -0.0, np.nan, np.inf, -np.inf,
                0.25, -3.0], d)
    samples = [
        Sample((x, arr([1.5], d)), {"p": 2}, "p=2: random"),
        Sample((x, arr([1.5], d)), {"p": 2, "average": True}, "p=2: average over 12"),
        Sample((x, arr([-0.75], d)), {"p": 1}, "p=1: random, negative dN"),
        Sample((x, arr([0.75], d)), {"p": 1, "average": True}, "p=1: average"),
        Sample((x, arr([2.0], d)), {}, "defaults: p=2, no average"),
        Sample((dead, arr([1.0], d)), {"p": 1},
               "p=1: dead zone |x| <= fl(1e-12) and NaN give +0"),
        Sample((dead, arr([-0.0], d)), {"p": 1}, "p=1: dN = -0: signed zeros"),
        Sample((dead, arr([np.inf], d)), {"p": 1}, "p=1: dN = inf: 0·inf = NaN in the dead zone"),
        Sample((s, arr([1.0], d)), {"p": 2}, "p=2: specials (2·max overflows)"),
        Sample((s, arr([np.nan], d)), {"p": 2}, "p=2: NaN dN"),
        Sample((s, arr([-0.0], d)), {"p": 2, "average": True}, "p=2: dN = -0"),
        Sample((uniform(331, (3,), dtype=d), arr([1.0], d)), {"p": 2, "average": True},
               "dN/3 rounded in the working precision"),
        Sample((arr([1000.0, -3.0], d), arr([60000.0], d)), {"p": 2},
               "p=2: 2x·dN beyond float16's range"),
        Sample((x, arr([[0.5]], d)), {"p": 2}, "dN of shape (1, 1)"),
        Sample((x, arr(0.5, d)), {"p": 1}, "0-d dN"),
        Sample((arr(-2.0, d), arr([3.0], d)), {"p": 2}, "0-d X"),
        Sample((np.zeros((0, 2), d), arr([1.0], d)), {"p": 1, "average": True},
               "empty X (average too)"),
    ]
    return samples


def lpg_functional(inputs, args):
    return (c2.lp_norm_gradient(inputs[0], inputs[1], **args),)


def lpg_bad():
    op = "LpNormGradient"
    x = arr([1.0, -2.0], F32)
    return [
        BadInput((x, arr([1.0, 2.0], F32)), {}, ValueError, (op, "input dN", "exactly 1"),
                 "dN of 2 elements"),
        BadInput((x, np.zeros(0, F32)), {}, ValueError, (op, "input dN", "exactly 1"),
                 "empty dN"),
        BadInput((x, arr([1.0], F64)), {}, TypeError, (op, "input dN", "dtype of X"),
                 "dN dtype differs"),
        BadInput((x, arr([1.0], F32)), {"p": 3}, ValueError, (op, "'p'", "1 or 2"), "p=3"),
        BadInput((x, arr([1.0], F32)), {"p": "1"}, TypeError, (op, "'p'"), "string p"),
        BadInput((x, arr([1.0], F32)), {"average": 2}, TypeError, (op, "'average'"),
                 "average=2"),
        BadInput((np.array([True]), np.array([True])), {}, TypeError, (op, "input X", "bool"),
                 "bool X"),
    ]


# --------------------------------------------------------------------------------------------
# Pow / PowGradient
# --------------------------------------------------------------------------------------------


def _odd_integer(y: float) -> bool:
    return math.isfinite(y) and y.is_integer() and abs(y) < 2.0**53 and int(y) % 2 == 1


def c_pow(x: float, y: float) -> float:
    """C99's ``pow(x, y)`` (Annex F.10.4.4): ``math.pow``, with its domain and range errors
    mapped to C's values (``0^-y = ±inf``, ``(<0)^non-integer = NaN``, overflow ``±inf``)."""
    x, y = float(x), float(y)
    try:
        return math.pow(x, y)
    except OverflowError:
        return -math.inf if x < 0 and _odd_integer(y) else math.inf
    except ValueError:
        if x == 0:
            return -math.inf if math.copysign(1.0, x) < 0 and _odd_integer(y) else math.inf
        return math.nan


_C_POW = np.frompyfunc(c_pow, 2, 1)


def cpow(x, y) -> np.ndarray:
    """Element-wise :func:`c_pow` in float64, with NumPy broadcasting."""
    with np.errstate(all="ignore"):  # math.pow's flags; C's results are the values
        return np.asarray(_C_POW(np.asarray(x, np.float64), np.asarray(y, np.float64)),
                          dtype=np.float64)


POW_COMPARE = f64_within(4.5e-16, 0.0)  # 2 ulp: float64 pow is the platform's
POW_GRAD_COMPARE = f64_within(1e-14, 1e-14)  # pow and log, and the sums for dE


def _exponent(x, args) -> float:
    """The ``exponent`` argument as the operator uses it: rounded to X's dtype."""
    return rounded(args["exponent"], x.dtype)


def pow_ref(inputs, args):
    """``Y = X^exponent`` or ``X^E`` (E as broadcast), C's pow in float64, rounded once."""
    x = inputs[0]
    e = _exponent(x, args) if len(inputs) == 1 else f64(_b_view(x.shape, inputs[1], args))
    return (arr(cpow(f64(x), np.broadcast_to(e, x.shape)), x.dtype),)


def pow_samples(dtype):
    d = np.dtype(dtype)
    s = special(d)
    x = uniform(340, (2, 3), 0.1, 3.0, d)
    samples = [
        Sample((x, uniform(341, (2, 3), -2.0, 2.0, d)), {}, "exponent input, X's shape"),
        Sample((s, s[::-1].copy()), {}, "specials to special powers"),
        Sample((s, arr(np.full(s.size, 0.5), d)), {},
               "exponent input 0.5: C's pow, (-0)^0.5 = +0 and (-inf)^0.5 = inf"),
        Sample((x, arr([2.0], d)), {"broadcast": 1}, "broadcast=1: a 1-element exponent"),
        Sample((x, arr([1.5, -1.0], d)), {"broadcast": 1, "axis": 0},
               "legacy broadcast along axis 0"),
        Sample((uniform(342, (2, 3, 4), 0.1, 3.0, d), uniform(343, (3, 4), -2.0, 2.0, d)),
               {"broadcast": 1}, "legacy broadcast, trailing"),
        Sample((uniform(344, (2, 3, 2), 0.1, 3.0, d), uniform(345, (1, 3, 1), -2.0, 2.0, d)),
               {"broadcast": 1}, "legacy broadcast, exponent (1, 3, 1)"),
        Sample((uniform(346, (2, 3, 2, 2), 0.1, 3.0, d), arr([0.5, 2.0, -1.0], d)),
               {"broadcast": 1, "axis_str": "C", "order": "NCHW"}, "legacy axis_str 'C'"),
        Sample((np.zeros((0, 3), d), np.zeros((0, 3), d)), {}, "empty, exponent input"),
    ]
    for e in (2.0, 3.0, 0.5, -0.5, -1.0, -2.0, 0.0, 1.0, 1.5, -3.0, 0.1, 1e10, np.nan, np.inf,
              -np.inf):
        samples.append(Sample((s,), {"exponent": e}, f"specials ^ {e}"))
    samples += [
        Sample((x,), {"exponent": 2.5}, "random ^ 2.5"),
        Sample((s,), {"exponent": 2}, "int exponent accepted"),
        Sample((arr(-2.0, d),), {"exponent": 3.0}, "0-d"),
        Sample((np.zeros((2, 0), d),), {"exponent": 0.5}, "empty"),
    ]
    return samples


def pow_functional(inputs, args):
    e = inputs[1] if len(inputs) > 1 else None
    return (power(inputs[0], args.get("exponent"), e, **_broadcast_args(args)),)


def pow_bad():
    x = arr(np.ones((2, 3)), F32)
    return [
        BadInput((x,), {}, ValueError, ("Pow", "'exponent'"), "no exponent at all"),
        BadInput((x, x), {"exponent": 2.0}, ValueError, ("Pow", "exponent", "both"),
                 "exponent as argument and input"),
        BadInput((x, arr(np.ones(3), F32)), {}, ValueError,
                 ("Pow", "input exponent", "shape of X"), "exponent shape without broadcast"),
        BadInput((x, np.ones((2, 3))), {}, TypeError, ("Pow", "input exponent", "dtype of X"),
                 "exponent dtype differs"),
        BadInput((x, arr(np.ones(2), F32)), {"broadcast": 1}, ValueError,
                 ("Pow", "broadcast dimension mismatch"), "legacy broadcast mismatch"),
        BadInput((x, arr(np.ones((1, 2, 3)), F32)), {"broadcast": 1}, ValueError,
                 ("Pow", "no more dimensions"), "exponent with more dimensions"),
        BadInput((x, arr(np.ones(3), F32)), {"broadcast": 1, "axis": 2}, ValueError,
                 ("Pow", "'axis'"), "axis out of range"),
        BadInput((x, arr(np.ones(3), F32)), {"broadcast": 1, "axis_str": "Q"}, ValueError,
                 ("Pow", "'axis_str'"), "axis_str not in order", via=("runtime",)),
        BadInput((x,), {"exponent": "two"}, TypeError, ("Pow", "'exponent'"),
                 "string exponent"),
        BadInput((np.array(["a"]),), {"exponent": 2.0}, TypeError, ("Pow", "input X"),
                 "string X"),
    ]


def pow_grad_check(dtype):
    if np.dtype(dtype) != F64:
        return []
    x = uniform(350, (2, 3), 0.5, 2.0, F64)
    neg = away_from(uniform(351, (2, 3), -2.0, 2.0, F64), [0.0], 0.2, 0.4)
    return [
        GradSample((x,), {"exponent": 2.5}, (0,), "exponent 2.5: Pow, Mul, Scale"),
        GradSample((neg,), {"exponent": 3.0}, (0,), "exponent 3, negative X"),
        GradSample((x, uniform(352, (2, 3), -1.0, 2.0, F64)), {}, (0, 1), "exponent input"),
        GradSample((x, arr([1.7], F64)), {"broadcast": 1}, (0, 1),
                   "1-element exponent (SumReduceLike)"),
        GradSample((x, uniform(353, (2,), 0.5, 2.0, F64)), {"broadcast": 1, "axis": 0},
                   (0, 1), "legacy broadcast along axis 0"),
    ]


def powg_ref(inputs, args):
    """(X, dY): ``dX = k·X^(k-1)·dY`` (``from_output``: X holds Y, ``dX = k·Y^((k-1)/k)·dY``
    with ``|Y|`` for odd integer k); (X, E, Y, dY): ``dX = E·X^(E-1)·dY`` and
    ``dE = ln(X)·Y·dY`` summed to E's shape. Float64, rounded once."""
    x = inputs[0]
    with np.errstate(all="ignore"):
        if len(inputs) == 2:
            dy = f64(inputs[1])
            k = _exponent(x, args)
            if args.get("from_output", False):
                y = np.abs(f64(x)) if _odd_integer(k) else f64(x)
                r = k * cpow(y, (k - 1) / k) * dy
            else:
                r = k * cpow(f64(x), k - 1) * dy
            return (arr(r, x.dtype),)
        _, e, y, dy = inputs
        ev = f64(_b_view(x.shape, e, args))
        dx = ev * cpow(f64(x), ev - 1) * f64(dy)
        terms = np.log(f64(x)) * f64(y) * f64(dy)
        lead = x.ndim - ev.ndim
        axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(ev.shape)
                                          if n == 1 and x.shape[lead + i] != 1)
        de = terms.sum(axis=axes) if axes else terms
        return arr(dx, x.dtype), arr(np.reshape(de, e.shape), x.dtype)


def _pow_out(x, e, args):
    """Y = X^E for the tensor-form samples (the test's own formula)."""
    return pow_ref((x, e), args)[0]


def powg_samples(dtype):
    d = np.dtype(dtype)
    s = special(d)
    x = uniform(360, (2, 3), 0.2, 2.0, d)
    e = uniform(361, (2, 3), -1.0, 2.0, d)
    dy = uniform(362, (2, 3), dtype=d)
    xn = uniform(363, (2, 3), -2.0, 2.0, d)
    dys = uniform(364, s.shape, dtype=d)
    e1 = arr([1.7], d)
    row = arr([0.5, 1.5, -1.0], d)
    col = arr([2.0, 0.5], d)
    bc = {"broadcast": 1}
    samples = [
        Sample((x, e, _pow_out(x, e, {}), dy), {}, "(X, E, Y, dY): exponent input"),
        Sample((x, e1, _pow_out(x, e1, bc), dy), bc, "1-element exponent: dE summed"),
        Sample((x, row, _pow_out(x, row, bc), dy), bc, "legacy broadcast, trailing"),
        Sample((x, col, _pow_out(x, col, {**bc, "axis": 0}), dy), {**bc, "axis": 0},
               "legacy broadcast along axis 0"),
        Sample((x, col, _pow_out(x, col, {**bc, "axis": 0}), dy),
               {**bc, "axis_str": "N", "order": "NC"}, "legacy axis_str 'N' of 'NC'"),
        Sample((s, s[::-1].copy(), _pow_out(s, s[::-1].copy(), {}), dys), {},
               "specials: ln of <= 0, 0·inf"),
        Sample((np.zeros((0, 2), d),) * 4, {}, "empty (X, E, Y, dY)"),
        Sample((x, dy), {"exponent": 2.5}, "(X, dY): exponent 2.5"),
        Sample((x, dy), {"exponent": 1.5}, "(X, dY): exponent 1.5, X > 0"),
        Sample((xn, dy), {"exponent": 3}, "(X, dY): int exponent 3, negative X"),
        Sample((arr(-2.0, d), arr(0.5, d)), {"exponent": 3.0}, "(X, dY): 0-d"),
        Sample((np.zeros((0, 3), d), np.zeros((0, 3), d)), {"exponent": 2.0}, "(X, dY): empty"),
    ]
    # Exponent 1.5 (X^0.5) with X = -0 and -inf: C's pow gives +0 and inf, NumPy's scalar sqrt
    # shortcut -0 and NaN (PowGradient took it once).
    for k in (2.0, 3.0, 2.5, 1.5, 0.5, -0.5, -1.0, -2.0, 0.0, 1.0):
        samples.append(Sample((s, dys), {"exponent": k}, f"(X, dY): specials, exponent {k}"))
    samples.append(Sample((s, arr(np.full(s.size, -0.0), d)), {"exponent": 3.0},
                          "(X, dY): dY = -0"))
    for k in (2.0, 3.0, -1.0, 0.5, 4.0, -3.0):
        y = arr(cpow(f64(xn if k != 0.5 else x), k), d)
        samples.append(Sample((y, dy), {"exponent": k, "from_output": True},
                              f"(Y, dY), from_output: exponent {k}"))
    return samples


def powg_functional(inputs, args):
    if len(inputs) == 2:
        return (power_gradient(inputs[0], inputs[1], args.get("exponent"),
                               from_output=args.get("from_output", False)),)
    x, e, y, dy = inputs
    return power_gradient(x, dy, e=e, y=y, **_broadcast_args(args))


def powg_outputs(inputs) -> tuple[str, ...]:
    return ("dX",) if len(inputs) == 2 else ("dX", "dE")


def powg_bad():
    op = "PowGradient"
    x = arr(np.ones((2, 3)), F32)
    return [
        BadInput((x, x), {}, ValueError, (op, "'exponent'"), "(X, dY) without exponent"),
        BadInput((x, arr(np.ones(6), F32)), {"exponent": 2.0}, ValueError,
                 (op, "input dY", "shape of X"), "dY shape differs"),
        BadInput((x, np.ones((2, 3))), {"exponent": 2.0}, TypeError,
                 (op, "input dY", "dtype of X"), "dY dtype differs"),
        BadInput((x, x), {"exponent": 0.0, "from_output": True}, ValueError,
                 (op, "|exponent| > 1e-12"), "from_output with exponent 0"),
        BadInput((x, x), {"exponent": 2.0, "from_output": 2}, TypeError,
                 (op, "'from_output'", "bool"), "from_output=2", via=("runtime",)),
        BadInput((x, x), {"exponent": "two"}, TypeError, (op, "'exponent'"),
                 "string exponent"),
        BadInput((x, x, x), {}, ValueError, (op, "expects inputs", "3 inputs"),
                 "3 inputs", via=("runtime",)),
        BadInput((x, arr(np.ones(3), F32), x, x), {}, ValueError,
                 (op, "input exponent", "shape of X"), "E shape without broadcast"),
        BadInput((x, arr(np.ones(2), F32), x, x), {"broadcast": 1}, ValueError,
                 (op, "broadcast dimension mismatch"), "legacy broadcast mismatch"),
        BadInput((x, x, arr(np.ones(3), F32), x), {}, ValueError,
                 (op, "input Y", "shape of X"), "Y shape differs"),
        BadInput((x, x, np.ones((2, 3)), x), {}, TypeError, (op, "input Y", "dtype of X"),
                 "Y dtype differs"),
        BadInput((x, x, x, np.ones((2, 3))), {}, TypeError, (op, "input dY", "dtype of X"),
                 "tensor form: dY dtype differs"),
        BadInput((x, np.ones((2, 3)), x, x), {}, TypeError,
                 (op, "input exponent", "dtype of X"), "E dtype differs"),
    ]


# --------------------------------------------------------------------------------------------
# Div / DivGradient
# --------------------------------------------------------------------------------------------


def _wrap(values, dtype) -> np.ndarray:
    """Python ints as ``dtype`` does them: modulo 2^bits (two's complement for signed)."""
    info = np.iinfo(dtype)
    span, lo = 1 << info.bits, int(info.min)
    flat = [((int(v) - lo) % span) + lo for v in np.asarray(values, dtype=object).reshape(-1)]
    return np.array(flat, dtype).reshape(np.shape(values))


def _c_div(a: int, b: int) -> int:
    """C's integer division: truncated toward zero."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def quotient(a: np.ndarray, b: np.ndarray, dtype) -> np.ndarray:
    """``a/b`` broadcast, in ``dtype``: IEEE (done in float64, rounded once) or C's integer
    division, wrapped (INT_MIN / -1 = INT_MIN)."""
    d = np.dtype(dtype)
    if d.kind == "f":
        with np.errstate(all="ignore"):
            return (f64(a) / f64(b)).astype(d)
    a, b = np.broadcast_arrays(np.asarray(a, dtype=object), np.asarray(b, dtype=object))
    q = [_c_div(int(u), int(v)) for u, v in zip(a.reshape(-1), b.reshape(-1), strict=True)]
    return _wrap(np.array(q, dtype=object).reshape(a.shape), d)


def div_ref(inputs, args):
    a, b = inputs
    return (quotient(a, _b_view(a.shape, b, args), a.dtype),)


def _div_values(dtype, seed, shape, nonzero=False):
    d = np.dtype(dtype)
    if d.kind in "iu":
        lo = -40 if d.kind == "i" else 1
        v = np.random.default_rng(seed).integers(lo, 40, size=shape)
        if nonzero:
            v[v == 0] = 7
        return v.astype(d)
    v = uniform(seed, shape, -3.0, 3.0, d)
    return away_from(v, [0.0], 0.1, 0.25) if nonzero else v


def div_samples(dtype):
    d = np.dtype(dtype)
    a = _div_values(d, 370, (2, 3))
    samples = [
        Sample((a, _div_values(d, 371, (2, 3), True)), {}, "same shape"),
        Sample((a, _div_values(d, 372, (3,), True)), {}, "NumPy broadcast of a row"),
        Sample((_div_values(d, 373, (2, 1)), _div_values(d, 374, (1, 3), True)), {},
               "NumPy broadcast both ways"),
        Sample((_div_values(d, 375, (3,)), _div_values(d, 376, (2, 3), True)), {},
               "A broadcast over B"),
        Sample((a, _div_values(d, 377, (1,), True)), {}, "1-element B"),
        Sample((a, _div_values(d, 378, (2,), True)), {"broadcast": 1, "axis": 0},
               "legacy broadcast, axis 0"),
        Sample((_div_values(d, 379, (2, 3, 4)), _div_values(d, 380, (3, 4), True)),
               {"broadcast": 1}, "legacy broadcast, trailing"),
        Sample((_div_values(d, 381, (2, 3, 2)), _div_values(d, 382, (1, 3, 1), True)),
               {"broadcast": 1}, "legacy broadcast, B (1, 3, 1)"),
        Sample((_div_values(d, 383, (2, 3, 2, 2)), _div_values(d, 384, (3,), True)),
               {"broadcast": 1, "axis_str": "C", "order": "NCHW"}, "legacy axis_str 'C'"),
        Sample((a, _div_values(d, 385, (1,), True)), {"broadcast": 1}, "legacy 1-element B"),
        Sample((np.zeros((0, 3), d), np.ones((0, 3), d)), {}, "empty"),
        Sample((np.zeros((0, 3), d), np.ones(3, d)), {}, "empty, broadcast row"),
        Sample((_div_values(d, 386, ()), _div_values(d, 387, (), True)), {}, "0-d"),
    ]
    if d.kind == "f":
        s = special(d)
        zeros = arr(np.where(np.arange(s.size) % 2, 0.0, -0.0), d)
        samples += [
            Sample((s, s[::-1].copy()), {}, "specials: inf/inf, 0/0, max/tiny, -0"),
            Sample((s, zeros), {}, "specials / ±0: ±inf and NaN"),
            Sample((arr([1.0, 1.0], d), arr([3.0, 10.0], d)), {}, "rounded in the dtype"),
        ]
    else:
        info = np.iinfo(d)
        if d.kind == "i":
            samples.append(Sample((np.array([7, -7, 7, -7, info.min, info.min, info.max], d),
                                   np.array([2, 2, -2, -2, -1, 1, -1], d)), {},
                                  "truncation toward zero; INT_MIN / -1 wraps"))
        else:
            samples.append(Sample((np.array([info.max, 7, 0, 1], d),
                                   np.array([3, 2, 5, info.max], d)), {}, "unsigned"))
    return samples


def div_functional(inputs, args):
    return (divide(inputs[0], inputs[1], **_broadcast_args(args)),)


def div_bad():
    a = arr(np.ones((2, 3)), F32)
    return [
        BadInput((a, arr([1.0, 2.0], F32)), {}, ValueError, ("Div", "cannot be broadcast"),
                 "shapes do not broadcast"),
        BadInput((a, arr([1.0, 2.0, 3.0], F64)), {}, TypeError,
                 ("Div", "input B", "dtype of A"), "dtype differs"),
        BadInput((a, arr([1.0, 2.0], F32)), {"broadcast": 1}, ValueError,
                 ("Div", "broadcast dimension mismatch"), "legacy broadcast mismatch"),
        BadInput((arr([1.0, 2.0, 3.0], F32), a), {"broadcast": 1}, ValueError,
                 ("Div", "no more dimensions"), "legacy B with more dimensions"),
        BadInput((a, arr([1.0, 2.0], F32)), {"broadcast": 1, "axis": 5}, ValueError,
                 ("Div", "'axis'"), "axis out of range"),
        BadInput((a, arr([1.0, 2.0], F32)), {"broadcast": 1, "axis_str": "X"}, ValueError,
                 ("Div", "'axis_str'"), "axis_str not in order", via=("runtime",)),
        BadInput((np.array([4, 6], np.int32), np.array([2, 0], np.int32)), {}, ValueError,
                 ("Div", "input B", "division by zero"), "integer division by zero"),
        BadInput((np.array([True]), np.array([True])), {}, TypeError,
                 ("Div", "input A", "bool"), "bool A"),
        BadInput((np.array([1j]), np.array([1j])), {}, TypeError,
                 ("Div", "input A", "complex128"), "complex A"),
    ]


def div_grad_check(dtype):
    if np.dtype(dtype) != F64:
        return []
    a = uniform(390, (2, 3), -1.0, 1.0, F64)
    return [
        GradSample((a, uniform(391, (2, 3), 0.5, 2.0, F64)), {}, (0, 1), "same shape"),
        GradSample((a, uniform(392, (3,), 0.5, 2.0, F64)), {}, (0, 1), "broadcast row"),
        GradSample((uniform(393, (2, 1), dtype=F64), uniform(394, (1, 3), 0.5, 2.0, F64)), {},
                   (0, 1), "broadcast both ways"),
        GradSample((uniform(395, (3,), dtype=F64), uniform(396, (2, 3), -2.0, -0.5, F64)), {},
                   (0, 1), "A broadcast"),
        GradSample((a, uniform(397, (2,), 0.5, 2.0, F64)), {"broadcast": 1, "axis": 0},
                   (0, 1), "legacy broadcast"),
    ]


def divg_ref(inputs, args):
    """``dA = dC/B``, ``dB = ((-dC)·C)/B`` in the dtype; accumulated from +0 over C's elements
    in order (to A's and B's shapes) unless A and B have the same shape."""
    if len(inputs) == 4:
        dc, a, b, c = inputs
        a_shape = np.shape(a)
    else:
        b, c, dc = inputs
        a_shape = c.shape
    d = c.dtype
    bv = _b_view(a_shape, b, args)
    with np.errstate(all="ignore"):
        if d.kind == "f":
            prod = (-f64(dc) * f64(c)).astype(d)
        else:
            prod = _wrap(-np.asarray(dc, object) * np.asarray(c, object), d)
        da = quotient(dc, bv, d)
        db = quotient(prod, bv, d)
        if a_shape != b.shape:
            da = _accumulate(da, a_shape, d)
            db = _accumulate(db, bv.shape, d)
    return da, db.reshape(b.shape)


def divg_samples(dtype):
    d = np.dtype(dtype)
    out = []
    for k, s in enumerate(div_samples(d)):
        a, b = s.inputs
        c = div_ref(s.inputs, s.args)[0]
        dc = _div_values(d, 400 + k, c.shape)
        if d.kind == "f" and dc.size:
            dc.reshape(-1)[0] = -0.0  # -dC/B = -0 terms: +0 once accumulated
        out.append(Sample((dc, a, b, c), s.args, f"(dC, A, B, C): {s.desc}"))
    b = _div_values(d, 420, (2, 3), True)
    c = _div_values(d, 421, (2, 3))
    out += [
        Sample((b, c, _div_values(d, 422, (2, 3))), {}, "legacy (B, C, dC)"),
        Sample((_div_values(d, 423, (3,), True), c, _div_values(d, 424, (2, 3))),
               {"broadcast": 1}, "legacy (B, C, dC), broadcast row"),
        Sample((_div_values(d, 425, (2, 3)), c, b, c), {},
               "A holding C (an in-place Div's gradient): A read for its shape only"),
        Sample((_div_values(d, 428, (2, 3)), np.zeros((2, 3), np.bool_),
                _div_values(d, 429, (3,), True), c), {},
               "A's dtype and values are not read"),
    ]
    return out


def divg_functional(inputs, args):
    if len(inputs) == 4:
        dc, a, b, c = inputs
        return divide_gradient(dc, b, c, np.shape(a), **_broadcast_args(args))
    b, c, dc = inputs
    return divide_gradient(dc, b, c, **_broadcast_args(args))


def divg_bad():
    op = "DivGradient"
    x = arr(np.ones((2, 3)), F32)
    row = arr(np.ones(3), F32)
    return [
        BadInput((arr(np.ones(6), F32), x, x, x), {}, ValueError, (op, "input dC", "shape of C"),
                 "dC shape differs"),
        BadInput((np.ones((2, 3)), x, x, x), {}, TypeError, (op, "input dC", "dtype of C"),
                 "dC dtype differs"),
        BadInput((x, x, np.ones((2, 3)), x), {}, TypeError, (op, "input B", "dtype of C"),
                 "B dtype differs"),
        BadInput((x, x, arr(np.ones(2), F32), x), {}, ValueError, (op, "cannot be broadcast"),
                 "A and B do not broadcast"),
        BadInput((row, x, row, row), {}, ValueError, (op, "do not broadcast to C"),
                 "A and B broadcast, but not to C"),
        BadInput((x, row, x, x), {"broadcast": 1}, ValueError, (op, "C's shape"),
                 "broadcast=1 with A smaller than C"),
        BadInput((x, x, arr(np.ones(2), F32), x), {"broadcast": 1}, ValueError,
                 (op, "broadcast dimension mismatch"), "legacy broadcast mismatch"),
        BadInput((np.ones(2, np.int32), np.ones(2, np.int32), np.array([1, 0], np.int32),
                  np.ones(2, np.int32)), {}, ValueError, (op, "input B", "division by zero"),
                 "integer division by zero"),
        BadInput((np.array([True]),) * 4, {}, TypeError, (op, "input C", "bool"), "bool"),
        BadInput((np.array([1j]),) * 4, {}, TypeError, (op, "input C", "complex128"),
                 "complex"),
        BadInput((np.array(["a"]),) * 4, {}, TypeError, (op, "input C"), "strings"),
        BadInput((x, x, x, x), {"broadcast": 1, "axis_str": "Z"}, ValueError,
                 (op, "'axis_str'"), "axis_str not in order", via=("runtime",)),
    ]


# --------------------------------------------------------------------------------------------
# The entries
# --------------------------------------------------------------------------------------------

ENTRIES: list[OpEntry] = [
    OpEntry(
        "ClipTensorByScaling", ("x", "val", "additional_threshold"), ("clipped",), ctbs_ref,
        ctbs_samples, FLOATS, ctbs_functional, bad_inputs=ctbs_bad, bad_dtypes=NON_FLOAT,
        allow_inplace=frozenset({(0, 0)}),
    ),
    OpEntry(
        "EnsureClipped", ("param", "indices", "grad"), ("output_param",), ec_ref, ec_samples,
        FLOATS + INTS, ec_functional, bad_inputs=ec_bad,
        bad_dtypes=(np.bool_, np.complex64, np.complex128, np.longdouble),
        allow_inplace=frozenset({(0, 0)}), mutates=(0,), outputs_for=ec_outputs,
    ),
    OpEntry(
        "LpNorm", ("X",), ("Z",), lp_ref, lp_samples, FLOATS, lp_functional,
        compare=f64_within(1e-14, 0.0), bad_inputs=lp_bad, bad_dtypes=NON_FLOAT,
        grad_samples=lp_grad_check,
    ),
    OpEntry(
        "LpNormGradient", ("X", "dN"), ("dX",), lpg_ref, lpg_samples, FLOATS, lpg_functional,
        bad_inputs=lpg_bad, bad_dtypes=NON_FLOAT,
    ),
    OpEntry(
        "Pow", ("X", "exponent"), ("Y",), pow_ref, pow_samples, FLOATS, pow_functional,
        compare=POW_COMPARE, bad_inputs=pow_bad, bad_dtypes=NON_FLOAT,
        grad_samples=pow_grad_check, allow_inplace=frozenset({(0, 0), (1, 0)}),
    ),
    OpEntry(
        # inputs (X, E, Y, dY) -> (dX, dE), or (X, dY) -> (dX) with the exponent argument
        "PowGradient", ("X", "E", "Y", "dY"), ("dX", "dE"), powg_ref, powg_samples, FLOATS,
        powg_functional, compare=POW_GRAD_COMPARE, bad_inputs=powg_bad,
        bad_dtypes=(np.bool_, np.int32, np.complex64), outputs_for=powg_outputs,
    ),
    OpEntry(
        "Div", ("A", "B"), ("C",), div_ref, div_samples, FLOATS + INTS, div_functional,
        bad_inputs=div_bad, bad_dtypes=(np.bool_, np.complex64, np.longdouble),
        grad_samples=div_grad_check, allow_inplace=frozenset({(0, 0), (1, 0)}),
    ),
    OpEntry(
        # inputs (dC, A, B, C), or Caffe2's legacy (B, C, dC). No bad_dtypes: the operator
        # checks C first, not input 0 (dC); wrong element types are in divg_bad.
        "DivGradient", ("dC", "A", "B", "C"), ("dA", "dB"), divg_ref, divg_samples,
        FLOATS + (I8, I32, I64, U8), divg_functional, bad_inputs=divg_bad,
        allow_inplace=frozenset({(0, 0)}),
    ),
]
