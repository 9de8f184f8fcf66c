"""Operator-table entries for the dense training operators (FC, activations, losses, Max, copies,
fillers); ``tests/optable.py`` appends :data:`ENTRIES` to its ``TABLE``. Import it through
``optable`` (it uses optable's records and helpers).

References are written here from Caffe2's formulas in plain NumPy float64 (never the library's
kernels). Element-wise formulas that round after every operation (the activation gradients,
SquaredL2DistanceGradient, Max, the Sum* gradients) are compared bit for bit; Sigmoid and Tanh
(whose float32 bits are Eigen's approximations, checked against real Caffe2 in tests/parity),
FC (BLAS sums) and the reductions within tolerances; the random fillers by their support, shape,
dtype and, on large samples, their first two moments.
"""

from __future__ import annotations

import numpy as np
from optable import (
    F16,
    F32,
    F64,
    FLOATS,
    BadInput,
    GradSample,
    OpEntry,
    Sample,
    arr,
    assert_close,
    assert_same,
    away_from,
    copy_compare,
    f64,
    special,
    uniform,
)

import caffe2ops as c2
from caffe2ops.proto import caffe2_pb2

TP = caffe2_pb2.TensorProto
INT_DTYPES = (np.dtype(np.int32), np.dtype(np.int64))
NON_FLOAT = (np.bool_, np.int32, np.int64, np.complex64)
BREW = {"order": "NCHW", "use_cudnn": False}


def _only(args: dict, *names: str) -> dict:
    return {k: v for k, v in args.items() if k in names}


# --------------------------------------------------------------------------------------------
# FC / FCGradient
# --------------------------------------------------------------------------------------------

FC_TOL = {F16: (4e-3, 4e-3), F32: (2e-6, 2e-6), F64: (1e-13, 1e-13)}


def _fc_dims(x, w, args):
    axis = args.get("axis", 1) % max(x.ndim, 1)
    axis_w = args.get("axis_w", 1) % max(w.ndim, 1)
    m, k = int(np.prod(x.shape[:axis])), int(np.prod(x.shape[axis:]))
    n = int(np.prod(w.shape[:axis_w]))
    return m, k, n, axis


def fc_ref(inputs, args):
    x, w, b = inputs
    m, k, n, axis = _fc_dims(x, w, args)
    y = f64(x).reshape(m, k) @ f64(w).reshape(n, k).T + f64(b).reshape(1, n)
    return (y.reshape(tuple(x.shape[:axis]) + (n,)).astype(x.dtype),)


def fc_samples(dtype):
    x = uniform(100, (4, 6), dtype=dtype)
    w = uniform(101, (3, 6), dtype=dtype)
    b = uniform(102, (3,), dtype=dtype)
    x3 = uniform(103, (2, 3, 4), dtype=dtype)
    return [
        Sample((x, w, b), {}, "4x6 by 3x6"),
        Sample((x3, uniform(104, (5, 12), dtype=dtype), uniform(105, (5,), dtype=dtype)), {},
               "3-D X flattened at axis 1"),
        Sample((x3, uniform(106, (5, 4), dtype=dtype), uniform(107, (5,), dtype=dtype)),
               {"axis": 2}, "axis=2"),
        Sample((x3, uniform(108, (5, 4), dtype=dtype), uniform(109, (5,), dtype=dtype)),
               {"axis": -1}, "axis=-1"),
        Sample((x, uniform(110, (3, 2, 6), dtype=dtype), uniform(111, (6,), dtype=dtype)),
               {"axis_w": 2}, "axis_w=2: W is 6x6"),
        Sample((x, w, b), dict(BREW), "brew's order/use_cudnn accepted"),
        Sample((np.zeros((0, 6), dtype), w, b), {}, "M = 0: empty Y"),
        Sample((np.zeros((4, 0), dtype), np.zeros((3, 0), dtype), b), {}, "K = 0: Y = b"),
    ]


def fc_functional(inputs, args):
    return (c2.fc(*inputs, **_only(args, "axis", "axis_w")),)


def fc_bad():
    x, w, b = arr(np.ones((2, 3)), F32), arr(np.ones((4, 3)), F32), arr(np.ones(4), F32)
    return [
        BadInput((x, arr(np.ones((4, 2)), F32), b), {}, ValueError, ("FC", "W"),
                 "inner sizes differ"),
        BadInput((x, w, arr(np.ones(3), F32)), {}, ValueError, ("FC", "b"), "bias size"),
        BadInput((x, w, b), {"axis": 2}, ValueError, ("FC", "axis"), "axis out of range"),
        BadInput((x, w, b), {"axis_w": -3}, ValueError, ("FC", "axis_w"), "axis_w out of range"),
        BadInput((x, arr(np.ones((4, 3)), F64), b), {}, TypeError, ("FC", "W"), "W dtype"),
        BadInput((x, w, b), {"axis": "1"}, TypeError, ("FC", "axis"), "string axis",
                 via=("runtime",)),
    ]


def fc_grad_ref(inputs, args):
    x, w, dy = inputs
    m, k, n, _ = _fc_dims(x, w, args)
    xm, wm, dym = f64(x).reshape(m, k), f64(w).reshape(n, k), f64(dy).reshape(m, n)
    d = x.dtype
    return ((dym.T @ xm).reshape(w.shape).astype(d), dym.sum(0).astype(d),
            (dym @ wm).reshape(x.shape).astype(d))


def fc_grad_samples(dtype):
    out = []
    for s in fc_samples(dtype):
        x, w, _ = s.inputs
        m, k, n, axis = _fc_dims(x, w, s.args)
        dy = uniform(120 + len(out), tuple(x.shape[:axis]) + (n,), dtype=dtype)
        out.append(Sample((x, w, dy), s.args, s.desc))
    return out


def fc_grad_functional(inputs, args):
    return c2.fc_gradient(*inputs, **_only(args, "axis", "axis_w"))


def fc_grad_bad():
    x, w = arr(np.ones((2, 3)), F32), arr(np.ones((4, 3)), F32)
    return [
        BadInput((x, w, arr(np.ones((2, 3)), F32)), {}, ValueError, ("FCGradient", "dY"),
                 "dY size"),
        BadInput((x, arr(np.ones((4, 2)), F32), arr(np.ones((2, 4)), F32)), {}, ValueError,
                 ("FCGradient", "W"), "inner sizes differ"),
        BadInput((x, w, arr(np.ones((2, 4)), F64)), {}, TypeError, ("FCGradient", "dY"),
                 "dY dtype"),
    ]


def fc_grad_check(dtype):
    return [
        GradSample((uniform(130, (3, 4), dtype=dtype), uniform(131, (2, 4), dtype=dtype),
                    uniform(132, (2,), dtype=dtype)), {}, (0, 1, 2), "X, W, b"),
        GradSample((uniform(133, (2, 3, 2), dtype=dtype), uniform(134, (2, 2), dtype=dtype),
                    uniform(135, (2,), dtype=dtype)), {"axis": 2}, (0, 1, 2), "axis=2"),
    ]


# --------------------------------------------------------------------------------------------
# Relu / Sigmoid / Tanh and gradients
# --------------------------------------------------------------------------------------------

ACT_TOL = {F16: (1e-3, 1e-4), F32: (1e-6, 1e-37), F64: (1e-15, 1e-300)}


def relu_ref(inputs, args):
    (x,) = inputs
    return (np.where(f64(x) < 0, 0.0, f64(x)).astype(x.dtype),)


def sigmoid_ref(inputs, args):
    (x,) = inputs
    with np.errstate(over="ignore"):
        return (1.0 / (1.0 + np.exp(-f64(x))),)


def tanh_ref(inputs, args):
    (x,) = inputs
    return (np.tanh(f64(x)),)


def act_samples(dtype):
    s = special(dtype)
    x = uniform(140, (3, 5, 7), -12.0, 12.0, dtype)
    return [
        Sample((x,), {}, "random 3x5x7 in [-12, 12]"),
        Sample((s,), {}, "specials: NaN, ±inf, ±0, ±max, ±tiny"),
        Sample((uniform(141, (4099,), -30.0, 30.0, dtype),), {}, "4099 values"),
        Sample((x,), dict(BREW), "brew's order/use_cudnn accepted"),
        Sample((x[0, 0, 0].copy(),), {}, "0-d"),
        Sample((np.zeros((0, 3), dtype),), {}, "empty"),
    ]


def act_compare(got, expected, sample, dtype, what):
    (g,), (e,) = got, expected
    e = np.asarray(e, np.float64)
    if np.dtype(dtype) == F32 and "tanh" in what.lower():
        # Eigen's rational tanh: within 6 ulp (checked bit for bit against Caffe2 in parity).
        rtol, atol = 8e-7, 1e-37
    else:
        rtol, atol = ACT_TOL[np.dtype(dtype)]
    assert_close(g, e, dtype, rtol, atol, what)
    zeros = (np.asarray(g) == 0) & (e == 0)
    assert_same(np.signbit(g[zeros]), np.signbit(e[zeros]), f"{what}: ±0")


def act_functional(fn):
    return lambda inputs, args: (fn(inputs[0]),)


def act_bad(op):
    return lambda: [
        BadInput((np.array([1, -2], np.int32),), {}, TypeError, (op, "X"), "int32 input"),
        BadInput(([object()],), {}, TypeError, (op, "X"), "object input", via=("functional",)),
    ]


def act_grad_ref(kind):
    def ref(inputs, args):
        y, dy = inputs
        d = y.dtype
        yv, dyv = f64(y), f64(dy)
        with np.errstate(invalid="ignore", over="ignore"):
            if kind == "Relu":
                return (np.where(yv > 0, dyv, 0.0).astype(d),)
            if kind == "Sigmoid":  # fl(fl(dY·Y)·fl(1 − Y))
                a = f64((dyv * yv).astype(d))
                b = f64((1.0 - yv).astype(d))
                return ((a * b).astype(d),)
            y2 = f64((yv * yv).astype(d))  # fl(dY·fl(1 − fl(Y·Y)))
            return ((dyv * f64((1.0 - y2).astype(d))).astype(d),)

    return ref


def act_grad_samples(dtype):
    y = uniform(150, (3, 4, 5), -1.0, 1.0, dtype)
    dy = uniform(151, (3, 4, 5), -3.0, 3.0, dtype)
    s = special(dtype)
    return [
        Sample((y, dy), {}, "random"),
        Sample((s, arr(np.linspace(-2, 2, s.size), dtype)), {}, "specials in Y"),
        Sample((arr(np.linspace(-1, 1, s.size), dtype), s), {}, "specials in dY"),
        Sample((np.zeros((0, 2), dtype), np.zeros((0, 2), dtype)), {}, "empty"),
    ]


def act_grad_functional(fn):
    return lambda inputs, args: (fn(inputs[0], inputs[1]),)


def act_grad_bad(op):
    y = arr([0.5, 1.0], F32)
    return lambda: [
        BadInput((y, arr([1.0, 2.0, 3.0], F32)), {}, ValueError, (op, "dY"), "shape differs"),
        BadInput((y, arr([1.0, 2.0], F64)), {}, TypeError, (op, "dY"), "dtype differs"),
    ]


def act_grad_check(points):
    def samples(dtype):
        x = uniform(160, (3, 4), -2.0, 2.0, dtype)
        return [GradSample((away_from(x, points, 0.1, 0.25),), {}, (0,), "away from kinks")]

    return samples


# --------------------------------------------------------------------------------------------
# SquaredL2Distance, SumElements, AveragedLoss, SumSqrElements
# --------------------------------------------------------------------------------------------

RED_TOL = {F16: (2e-3, 2e-3), F32: (1e-6, 2e-6), F64: (1e-14, 1e-14)}


def _rows(x):
    n = x.shape[0] if x.ndim else 1
    return n, (x.size // n if n else 0)


def l2_ref(inputs, args):
    x, y = inputs
    n, d = _rows(x)
    xm, ym = f64(x).reshape(n, d), f64(y).reshape(n, d)
    return (0.5 * ((xm - ym) ** 2).sum(1),)


def l2_samples(dtype):
    return [
        Sample((uniform(170, (4, 5), dtype=dtype), uniform(171, (4, 5), dtype=dtype)), {},
               "4 rows of 5"),
        Sample((uniform(172, (3, 2, 2), dtype=dtype), uniform(173, (3, 2, 2), dtype=dtype)), {},
               "rows of a 3-D input"),
        Sample((uniform(174, (6,), dtype=dtype), uniform(175, (6,), dtype=dtype)), {},
               "1-D: rows of length 1"),
        Sample((arr(3.0, dtype), arr(1.0, dtype)), {}, "0-d: one row"),
        Sample((np.zeros((0, 3), dtype), np.zeros((0, 3), dtype)), {}, "no rows"),
    ]


def l2_compare(got, expected, sample, dtype, what):
    x, y = sample.inputs
    n, d = _rows(x)
    scale = (f64(x).reshape(n, d) ** 2).sum(1) + (f64(y).reshape(n, d) ** 2).sum(1)
    rtol, atol = RED_TOL[np.dtype(dtype)]
    g, e = np.asarray(got[0]), np.asarray(expected[0])
    assert g.dtype == np.dtype(dtype) and g.shape == e.shape, what
    # (x·x + y·y)/2 − x·y cancels: the error is relative to x·x + y·y, not to the result.
    assert np.all(np.abs(f64(g) - e) <= atol + 4 * rtol * scale), what


def l2_bad():
    a = arr(np.ones((2, 3)), F32)
    return [
        BadInput((a, arr(np.ones((3, 2)), F32)), {}, ValueError, ("SquaredL2Distance", "Y"),
                 "shapes differ"),
        BadInput((a, arr(np.ones((2, 3)), F64)), {}, TypeError, ("SquaredL2Distance", "Y"),
                 "dtypes differ"),
    ]


def l2_grad_ref(inputs, args):
    x, y, dz = inputs
    n, d = _rows(x)
    diff = f64((f64(x) - f64(y)).astype(x.dtype)).reshape(n, d)
    dx = (diff * f64(dz).reshape(n, 1)).astype(x.dtype).reshape(x.shape)
    return dx, -dx


def l2_grad_samples(dtype):
    out = []
    for k, s in enumerate(l2_samples(dtype)):
        n, _ = _rows(s.inputs[0])
        out.append(Sample(s.inputs + (uniform(180 + k, (n,), dtype=dtype),), {}, s.desc))
    return out


def l2_grad_bad():
    a = arr(np.ones((2, 3)), F32)
    return [
        BadInput((a, a, arr([1.0], F32)), {}, ValueError,
                 ("SquaredL2DistanceGradient", "dDistance"), "one value per row"),
        BadInput((a, arr(np.ones((2, 2)), F32), arr([1.0, 1.0], F32)), {}, ValueError,
                 ("SquaredL2DistanceGradient", "Y"), "shapes differ"),
    ]


def _ct(dtype):
    return F32 if np.dtype(dtype) == F16 else np.dtype(dtype)


def sum_ref(square, fixed_average=None):
    def ref(inputs, args):
        (x,) = inputs
        average = args.get("average", False) if fixed_average is None else fixed_average
        v = f64(x).reshape(-1)
        total = float(np.sum(v * v if square else v))
        if average and v.size:
            total /= v.size
        return (np.array(total),)

    return ref


def sum_compare(got, expected, sample, dtype, what):
    (g,), (e,) = got, expected
    x = f64(sample.inputs[0])
    mag = float(np.sum(np.abs(x))) + float(np.sum(x * x))
    rtol, atol = RED_TOL[np.dtype(dtype)]
    assert g.dtype == np.dtype(dtype) and g.shape == (), what
    assert abs(float(g) - float(e)) <= atol + rtol * mag, f"{what}: {g} vs {e}"


def sum_samples(average_arg: bool):
    def samples(dtype):
        x = uniform(190, (5, 7), dtype=dtype)
        out = [Sample((x,), {}, "5x7"), Sample((uniform(191, (1000,), dtype=dtype),), {}, "1000"),
               Sample((arr(2.5, dtype),), {}, "0-d"), Sample((np.zeros((0,), dtype),), {}, "empty")]
        if average_arg:
            out += [Sample((x,), {"average": True}, "average"),
                    Sample((np.zeros((0, 2), dtype),), {"average": True}, "empty average: 0")]
        return out

    return samples


def sum_functional(fn, average_arg: bool):
    if average_arg:
        return lambda inputs, args: (fn(inputs[0], **args),)
    return lambda inputs, args: (fn(inputs[0]),)


def sum_bad(op, average_arg: bool):
    def bad():
        out = [BadInput((np.array([1, 2], np.int32),), {}, TypeError, (op, "X"), "int input")]
        if average_arg:
            out.append(BadInput((arr([1.0], F32),), {"average": "yes"}, TypeError,
                                (op, "average"), "string average"))
        return out

    return bad


def sum_grad_ref(fixed_average=None):
    def ref(inputs, args):
        x, ds = inputs
        average = args.get("average", False) if fixed_average is None else fixed_average
        ct = _ct(x.dtype)
        g = f64(np.asarray(ds).reshape(-1)[0].astype(ct))
        if average and x.size:
            g = f64(np.array(g / f64(ct.type(x.size))).astype(ct))
        return (np.full(x.shape, g).astype(x.dtype),)

    return ref


def sum_grad_samples(average_arg: bool):
    def samples(dtype):
        x = uniform(200, (3, 7), dtype=dtype)
        out = [Sample((x, arr(3.0, dtype)), {}, "0-d dSum"),
               Sample((x, arr([-1.5], dtype)), {}, "[1] dSum"),
               Sample((np.zeros((0, 2), dtype), arr(1.0, dtype)), {}, "empty X")]
        if average_arg:
            out += [Sample((x, arr(3.0, dtype)), {"average": True}, "average: dS/21"),
                    Sample((uniform(201, (7,), dtype=dtype), arr(1.0, dtype)),
                           {"average": True}, "average: 1/7")]
        return out

    return samples


def sum_grad_bad(op):
    return lambda: [
        BadInput((arr([1.0, 2.0], F32), arr([1.0, 2.0], F32)), {}, ValueError, (op, "dSum"),
                 "two-element dSum"),
        BadInput((arr([1.0, 2.0], F32), arr([1.0], F64)), {}, TypeError, (op, "dSum"),
                 "dSum dtype"),
    ]


def sum_grad_check(dtype):
    return [GradSample((uniform(210, (3, 4), dtype=dtype),), {}, (0,), "sum")]


# --------------------------------------------------------------------------------------------
# Max / MaxGradient
# --------------------------------------------------------------------------------------------


def max_ref(inputs, args):
    m = f64(inputs[0])
    for x in inputs[1:]:
        m = np.where(m < f64(x), f64(x), m)
    return (m.astype(inputs[0].dtype),)


def max_samples(dtype):
    a, b, c = (uniform(220 + k, (3, 4), dtype=dtype) for k in range(3))
    b[0, 0] = a[0, 0]
    s = special(dtype)
    t = arr(np.linspace(-3, 3, s.size), dtype)
    t[3], t[4] = -0.0, 0.0  # against +0 / -0 in s: the earlier one wins
    return [
        Sample((a, b, c), {}, "three inputs"),
        Sample((a, b), {}, "two inputs with a tie"),
        Sample((a,), {}, "one input: a copy"),
        Sample((s, t), {}, "NaN in the first stays; NaN later is skipped; ±0"),
        Sample((t, s), {}, "reversed"),
        Sample((np.zeros((0, 2), dtype), np.zeros((0, 2), dtype)), {}, "empty"),
    ]


def max_bad():
    a = arr([1.0, 2.0], F32)
    return [
        BadInput((a, arr([1.0, 2.0, 3.0], F32)), {}, ValueError, ("Max", "input 1"),
                 "shapes differ (Caffe2 read past the end)"),
        BadInput((a, arr([1.0, 2.0], F64)), {}, TypeError, ("Max", "input 1"), "dtypes differ"),
        BadInput((np.array([1, 2]),), {}, TypeError, ("Max", "input 0"), "int input"),
    ]


def max_grad_ref(inputs, args):
    m, dm, *xs = inputs
    with np.errstate(invalid="ignore"):
        return tuple((f64(dm) * (f64(x) == f64(m))).astype(m.dtype) for x in xs)


def max_grad_samples(dtype):
    out = []
    for s in max_samples(dtype):
        if len(s.inputs) != 2:
            continue
        (m,) = max_ref(s.inputs, {})
        dm = uniform(230, m.shape, dtype=dtype)
        if dm.size > 2:
            dm.reshape(-1)[:2] = [np.inf, np.nan]
        out.append(Sample((m, dm) + s.inputs, {}, s.desc))
    return out


def max_grad_bad():
    a = arr([1.0, 2.0], F32)
    return [
        BadInput((a, arr([1.0], F32), a, a), {}, ValueError, ("MaxGradient", "dM"),
                 "dM shape"),
        BadInput((a, a, a, arr([1.0], F32)), {}, ValueError, ("MaxGradient", "input 3"),
                 "input shape"),
    ]


def max_grad_check(dtype):
    a = uniform(240, (3, 4), dtype=dtype)
    b = a + dtype.type(0.5) * np.sign(uniform(241, (3, 4), dtype=dtype))  # no ties
    return [GradSample((a, b.astype(dtype)), {}, (0, 1), "two inputs, no ties")]


# --------------------------------------------------------------------------------------------
# EnsureCPUOutput / CopyFromCPUInput
# --------------------------------------------------------------------------------------------

COPY_DTYPES = FLOATS + INT_DTYPES + (np.dtype(np.bool_),)


def copy_ref(inputs, args):
    return (np.array(inputs[0], copy=True),)


def copy_samples(dtype):
    dtype = np.dtype(dtype)
    x = special(dtype) if dtype.kind == "f" else (np.arange(6) % 3).astype(dtype)
    return [Sample((x,), {}, "values"), Sample((x.reshape(1, -1)[:, ::2].copy(),), {}, "2-D"),
            Sample((np.zeros((0, 2), dtype),), {}, "empty")]


def copy_bad(op):
    # Through the runtime an object array never reaches the operator: FeedBlob refuses it
    # (tests/test_reliability.py); the functional form checks it itself.
    return lambda: [BadInput((np.array([object(), 1], dtype=object),), {}, TypeError,
                             (op, "input"), "object array", via=("functional",))]


# --------------------------------------------------------------------------------------------
# Fillers
# --------------------------------------------------------------------------------------------

GIVEN_CODES = {np.dtype(np.float32): TP.FLOAT, np.dtype(np.float64): TP.DOUBLE,
               np.dtype(np.bool_): TP.BOOL, np.dtype(np.int16): TP.INT16,
               np.dtype(np.int32): TP.INT32, np.dtype(np.int64): TP.INT64}


def given_ref(fixed=None):
    def ref(inputs, args):
        code = args.get("dtype", TP.FLOAT)
        dtype = fixed or next(d for d, c in GIVEN_CODES.items() if c == code)
        shape = _filler_shape(inputs, args)
        vals = np.asarray(args["values"])
        if dtype.kind == "f":
            vals = vals.astype(np.float32)
        return (vals.astype(dtype).reshape(shape),)

    return ref


def _filler_shape(inputs, args):
    if not inputs:
        return tuple(args.get("shape") or ())
    if args.get("input_as_shape"):
        return tuple(int(v) for v in inputs[0]) + tuple(args.get("extra_shape") or ())
    return tuple(inputs[0].shape) + tuple(args.get("extra_shape") or ())


def given_samples(fixed=None):
    def samples(dtype):
        dtype = fixed or np.dtype(dtype)
        code = {} if fixed else {"dtype": GIVEN_CODES[dtype]}
        if dtype.kind == "f":
            vals = [0.1, -2.0, 3.5, 1e-8, 7.0, 0.0]
        elif dtype.kind == "b":
            vals = [1, 0, 1, 1, 0, 0]
        else:
            info = np.iinfo(dtype)
            vals = [1, -2, 3, int(info.max), int(info.min), 0]
        return [
            Sample((np.zeros((2, 3), F32),), {"values": vals, **code}, "shape of the input"),
            Sample((), {"shape": [2, 3], "values": vals, **code}, "shape argument"),
            Sample((), {"shape": [6], "values": vals, **code}, "1-D"),
            Sample((), {"values": vals[:1], **code}, "no shape: 0-d"),
            Sample((np.zeros((3,), F32),), {"values": vals, "extra_shape": [2], **code},
                   "extra_shape"),
            Sample((np.array([3, 2], np.int64),), {"values": vals, "input_as_shape": True,
                                                   **code}, "input_as_shape"),
            Sample((), {"shape": [0, 3], "values": [], **code}, "empty"),
        ]

    return samples


def given_bad(op, ints: bool):
    vals = [1, 2, 3] if ints else [1.0, 2.0, 3.0]
    other = [1.0, 2.0] if ints else [1, 2]
    out = [
        BadInput((), {"shape": [2], "values": vals}, ValueError, (op, "values"),
                 "three values for two elements (Caffe2 dropped one)", via=("runtime",)),
        BadInput((), {"shape": [4], "values": vals}, ValueError, (op, "values"),
               "three values for four elements (Caffe2 read garbage)", via=("runtime",)),
        BadInput((), {"shape": [2], "values": other}, TypeError, (op, "values"),
                 "values in the field Caffe2 does not read", via=("runtime",)),
        BadInput((np.zeros(3, F32),), {"shape": [3], "values": vals}, ValueError,
                 (op, "shape"), "shape and an input", via=("runtime",)),
        BadInput((), {"shape": [3], "extra_shape": [1], "values": vals}, ValueError,
                 (op, "extra_shape"), "extra_shape without an input", via=("runtime",)),
        BadInput((), {"shape": [2**40, 2**40], "values": vals}, ValueError, (op, "shape"),
                 "beyond the allocation limit", via=("runtime",)),
        BadInput((np.array([[2]], np.int64),), {"values": vals, "input_as_shape": True},
                 ValueError, (op, "input_as_shape"), "2-D shape input", via=("runtime",)),
    ]
    if not ints:
        out.append(BadInput((), {"shape": [1], "values": [1.0], "dtype": TP.STRING}, TypeError,
                            (op, "dtype"), "STRING dtype", via=("runtime",)))
    return lambda: out


def random_samples(op):
    def samples(dtype):
        src = np.zeros((40, 25), F32)
        big = [400, 250]
        common = [
            Sample((), {"shape": big}, "100000 values, defaults"),
            Sample((), {"shape": [3, 0]}, "empty"),
            Sample((np.array([30, 20], np.int64),), {"input_as_shape": True, "extra_shape": [2]},
                   "input_as_shape + extra_shape"),
        ]
        if op == "UniformFill":
            lead = [Sample((np.array([200, 50], np.int64), arr([-2.0], F32), arr([3.0], F32)),
                           {"input_as_shape": True}, "min/max from inputs")]
            return lead + [
                Sample((src,), {"min": -3.0, "max": -1.0}, "shape of the input"),
                Sample((), {"shape": big, "min": 0.25, "max": 0.5}, "narrow range"),
                Sample((np.array([4, 5], np.int64), arr([2.0], F32), arr([1.0], F32)),
                       {"input_as_shape": True}, "min > max from inputs: empty dim 0"),
            ] + common
        if op == "GaussianFill":
            return [Sample((src,), {"mean": 3.0, "std": 0.5}, "shape of the input"),
                    Sample((), {"shape": big, "mean": -1.0, "std": 2.0}, "mean, std"),
                    Sample((), {"shape": [7], "mean": 2.0, "std": 0.0}, "std 0: the mean")
                    ] + common
        return [Sample((src,), {}, "shape of the input"),
                Sample((), {"shape": [100, 10, 10]}, "3-D")] + common

    return samples


def random_ref(inputs, args):
    return (np.empty(_filler_shape(inputs, args), F32),)


def _random_law(op, sample):
    """(lo, hi) support and (mean, std) of the distribution a sample asks for."""
    args, inputs = sample.args, sample.inputs
    shape = _filler_shape(inputs, args)
    if op == "UniformFill":
        if len(inputs) == 3:
            lo, hi = float(inputs[1][0]), float(inputs[2][0])
        else:
            lo, hi = args.get("min", 0.0), args.get("max", 1.0)
        return (lo, hi), ((lo + hi) / 2, (hi - lo) / np.sqrt(12))
    if op == "GaussianFill":
        mean, std = args.get("mean", 0.0), args.get("std", 1.0)
        return (-np.inf, np.inf), (mean, std)
    if op == "XavierFill":
        s = float(np.sqrt(np.float32(3.0) / np.float32(np.prod(shape) // shape[0])))
        return (-s, s), (0.0, s / np.sqrt(3))
    s = float(np.sqrt(np.float32(2.0) / np.float32(np.prod(shape) // shape[1])))
    return (-np.inf, np.inf), (0.0, s)


def random_compare(op):
    def compare(got, expected, sample, dtype, what):
        (g,), (e,) = got, expected
        g = np.asarray(g)
        if op == "UniformFill" and len(sample.inputs) == 3 and sample.inputs[1][0] > \
                sample.inputs[2][0]:
            e = np.empty((0,) + e.shape[1:], F32)
        assert g.dtype == F32 and g.shape == e.shape, f"{what}: {g.dtype}{g.shape} vs {e.shape}"
        if g.size == 0:
            return
        (lo, hi), (mean, std) = _random_law(op, sample)
        assert np.all(np.isfinite(g)), what
        assert np.all((g >= lo) & (g <= hi)), f"{what}: outside [{lo}, {hi}]"
        if std == 0:
            assert np.all(g == np.float32(mean)), what
        elif g.size >= 1000:
            n = g.size
            assert abs(g.mean() - mean) < 6 * std / np.sqrt(n), f"{what}: mean {g.mean()}"
            assert abs(g.std() - std) < 6 * std / np.sqrt(n) + 0.01 * std, f"{what}: {g.std()}"

    return compare


def random_bad(op):
    out = [
        BadInput((), {"shape": [2**30, 2**30]}, ValueError, (op, "shape"),
                 "beyond the allocation limit", via=("runtime",)),
        BadInput((), {"shape": [2, -3]}, ValueError, (op, "shape"), "negative dimension",
                 via=("runtime",)),
        BadInput((), {"input_as_shape": True}, ValueError, (op, "input_as_shape"),
                 "input_as_shape without an input", via=("runtime",)),
        BadInput((np.zeros((2, 2), F32),), {"shape": [2]}, ValueError, (op, "shape"),
                 "shape and an input", via=("runtime",)),
        BadInput((np.array([], np.int64),), {"input_as_shape": True}, ValueError,
                 (op, "input_as_shape"), "empty shape input", via=("runtime",)),
    ]
    if op == "UniformFill":
        out += [
            BadInput((), {"shape": [2], "min": 1.0, "max": 1.0}, ValueError, (op, "max"),
                     "min == max", via=("runtime",)),
            BadInput((np.array([2], np.int64), arr([0.0, 1.0], F32), arr([2.0], F32)),
                     {"input_as_shape": True}, ValueError, (op, "input 1"),
                     "two-element min blob", via=("runtime",)),
            BadInput((), {"shape": [2], "min": "a"}, TypeError, (op, "min"), "string min",
                     via=("runtime",)),
        ]
    if op in ("XavierFill", "MSRAFill"):
        out.append(BadInput((), {"shape": [3] if op == "MSRAFill" else []}, ValueError,
                            (op, "shape"), "too few dimensions for the fan", via=("runtime",)))
    return lambda: out


# --------------------------------------------------------------------------------------------
# The entries
# --------------------------------------------------------------------------------------------

INPLACE_X = frozenset({(0, 0)})
INPLACE_DY = frozenset({(1, 0)})


def _activation_entries():
    out = []
    for op, fwd, bwd, names, kinks in (
        ("Relu", c2.relu, c2.relu_gradient, ("X", "Y"), (0.0,)),
        ("Sigmoid", c2.sigmoid, c2.sigmoid_gradient, ("X", "Y"), ()),
        ("Tanh", c2.tanh, c2.tanh_gradient, ("input", "output"), ()),
    ):
        exact = op == "Relu"
        out.append(OpEntry(
            op, (names[0],), (names[1],), {"Relu": relu_ref, "Sigmoid": sigmoid_ref,
                                           "Tanh": tanh_ref}[op], act_samples, FLOATS,
            act_functional(fwd), exact=exact, compare=None if exact else act_compare,
            bad_inputs=act_bad(op), bad_dtypes=NON_FLOAT, grad_samples=act_grad_check(kinks),
            allow_inplace=INPLACE_X,
        ))
        out.append(OpEntry(
            f"{op}Gradient", ("Y", "dY"), ("dX",), act_grad_ref(op), act_grad_samples, FLOATS,
            act_grad_functional(bwd), bad_inputs=act_grad_bad(f"{op}Gradient"),
            bad_dtypes=NON_FLOAT, allow_inplace=INPLACE_DY,
        ))
    return out


def _sum_entries():
    out = []
    for op, fn, square, average_arg, fixed, grad in (
        ("SumElements", c2.sum_elements, False, True, None, "SumElementsGradient"),
        ("AveragedLoss", c2.averaged_loss, False, False, True, "AveragedLossGradient"),
        ("SumSqrElements", c2.sum_sqr_elements, True, True, None, None),
    ):
        out.append(OpEntry(
            op, ("X",), ("sum",), sum_ref(square, fixed), sum_samples(average_arg), FLOATS,
            sum_functional(fn, average_arg), exact=False, compare=sum_compare,
            bad_inputs=sum_bad(op, average_arg), bad_dtypes=NON_FLOAT,
            grad_samples=sum_grad_check if grad else None,
        ))
    for op, fn, average_arg, fixed in (
        ("SumElementsGradient", c2.sum_elements_gradient, True, None),
        ("AveragedLossGradient", c2.averaged_loss_gradient, False, True),
    ):
        out.append(OpEntry(
            op, ("X", "dSum"), ("dX",), sum_grad_ref(fixed), sum_grad_samples(average_arg),
            FLOATS, (lambda f, a: lambda i, args: (f(i[0], i[1], **(args if a else {})),))(
                fn, average_arg),
            bad_inputs=sum_grad_bad(op), bad_dtypes=NON_FLOAT,
        ))
    return out


def _filler_entries():
    out = [OpEntry("GivenTensorFill", ("input",), ("output",), given_ref(), given_samples(),
                   tuple(GIVEN_CODES), bad_inputs=given_bad("GivenTensorFill", False))]
    for op, dtype in (("GivenTensorIntFill", np.int32), ("GivenTensorInt64Fill", np.int64),
                      ("GivenTensorBoolFill", np.bool_)):
        d = np.dtype(dtype)
        out.append(OpEntry(op, ("input",), ("output",), given_ref(d), given_samples(d), (d,),
                           bad_inputs=given_bad(op, True)))
    for op in ("UniformFill", "GaussianFill", "XavierFill", "MSRAFill"):
        names = ("shape", "min", "max") if op == "UniformFill" else ("input",)
        out.append(OpEntry(op, names, ("output",), random_ref, random_samples(op), (F32,),
                           compare=random_compare(op), bad_inputs=random_bad(op)))
    return out


ENTRIES: list[OpEntry] = [
    OpEntry("FC", ("X", "W", "b"), ("Y",), fc_ref, fc_samples, FLOATS, fc_functional,
            exact=False, tol=FC_TOL, bad_inputs=fc_bad, bad_dtypes=NON_FLOAT,
            grad_samples=fc_grad_check),
    OpEntry("FCGradient", ("X", "W", "dY"), ("dW", "db", "dX"), fc_grad_ref, fc_grad_samples,
            FLOATS, fc_grad_functional, exact=False, tol=FC_TOL, bad_inputs=fc_grad_bad,
            bad_dtypes=NON_FLOAT),
    *_activation_entries(),
    OpEntry("SquaredL2Distance", ("X", "Y"), ("Z",), l2_ref, l2_samples, FLOATS,
            lambda i, a: (c2.squared_l2_distance(*i),), exact=False, compare=l2_compare,
            bad_inputs=l2_bad, bad_dtypes=NON_FLOAT,
            grad_samples=lambda d: [GradSample((uniform(250, (3, 4), dtype=d),
                                                uniform(251, (3, 4), dtype=d)), {}, (0, 1))]),
    OpEntry("SquaredL2DistanceGradient", ("X", "Y", "dDistance"), ("dX", "dY"), l2_grad_ref,
            l2_grad_samples, FLOATS, lambda i, a: c2.squared_l2_distance_gradient(*i),
            bad_inputs=l2_grad_bad, bad_dtypes=NON_FLOAT),
    *_sum_entries(),
    OpEntry("Max", ("X0", "X1", "X2"), ("M",), max_ref, max_samples, FLOATS,
            lambda i, a: (c2.elementwise_max(*i),), bad_inputs=max_bad,
            bad_dtypes=(np.bool_, np.complex64), grad_samples=max_grad_check,
            allow_inplace=INPLACE_X),
    OpEntry("MaxGradient", ("M", "dM", "X0", "X1"), ("dX0", "dX1"), max_grad_ref,
            max_grad_samples, FLOATS, lambda i, a: c2.elementwise_max_gradient(*i),
            bad_inputs=max_grad_bad, bad_dtypes=(np.bool_, np.complex64)),
    OpEntry("EnsureCPUOutput", ("input",), ("output",), copy_ref, copy_samples, COPY_DTYPES,
            lambda i, a: (c2.ensure_cpu_output(i[0]),), compare=copy_compare,
            bad_inputs=copy_bad("EnsureCPUOutput")),
    OpEntry("CopyFromCPUInput", ("input",), ("output",), copy_ref, copy_samples, COPY_DTYPES,
            compare=copy_compare),  # no functional form; FeedBlob refuses what it could refuse
    *_filler_entries(),
]

DENSE_OPS = frozenset(e.op for e in ENTRIES)
