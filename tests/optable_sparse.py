"""Operator-table entries for the sparse lookups, counters and optimizers (``ENTRIES``).

References are written here from Caffe2's formulas (checked bit for bit against real Caffe2 in
``tests/parity/test_sparse_ops.py``), never imported from the library: NumPy in the operator's
dtype, each operation rounded as Caffe2 rounds it; float32 fused multiply-adds emulated through
float64 (exact product, one rounding of the sum to float64, then to float32).
"""

from __future__ import annotations

import numpy as np
from optable import F16, F32, F64, FLOATS, BadInput, GradSample, OpEntry, Sample, arr, uniform

import caffe2ops as c2

I64 = np.dtype(np.int64)
F3264 = (F32, F64)


def _i(*v, dtype=np.int64):
    return np.array(v, dtype)


def _ct(dtype):
    return F32 if np.dtype(dtype) == F16 else np.dtype(dtype)


# --------------------------------------------------------------------------------------------
# Gather / SparseToDense


def gather_ref(inputs, args):
    data, idx = inputs
    axis = args.get("axis", 0)
    n = data.shape[axis]
    idx = np.where(idx < 0, idx + n, idx)
    return (np.take(data, idx, axis=axis),)


def gather_samples(dtype):
    d = uniform(70, (5, 3), dtype=dtype)
    return [
        Sample((d, _i(4, 0, 0, 2)), {}, "rows, duplicates"),
        Sample((d, _i(-1, -5, 3, dtype=np.int32)), {}, "negative indices wrap, int32"),
        Sample((d, _i(1, 2, 1, 0).reshape(2, 2)), {}, "2-D indices"),
        Sample((d, _i(2, 0)), {"axis": 1}, "axis 1"),
        Sample((d, np.zeros(0, np.int64)), {}, "no indices"),
    ]


def gather_bad():
    d = arr([[1.0, 2.0], [3.0, 4.0]], F32)
    return [
        BadInput((d, _i(2)), {}, IndexError, ("Gather", "INDICES", "2"), "index == rows"),
        BadInput((d, _i(-3)), {}, IndexError, ("Gather", "INDICES", "-3"), "index < -rows"),
        BadInput((d, np.array([0.0])), {}, TypeError, ("Gather", "INDICES"), "float indices"),
        BadInput((d, _i(0)), {"axis": 2}, ValueError, ("Gather", "axis"), "axis out of range"),
        BadInput((arr(1.0, F32), _i(0)), {}, ValueError, ("Gather", "DATA"), "0-d data"),
    ]


def gather_grad_samples(dtype):
    d = uniform(71, (5, 3), dtype=dtype)
    return [GradSample((d, _i(4, 1, 4)), {}, (0,), "GradientSlice, duplicate rows")]


def std_ref(inputs, args):
    idx, values = inputs[:2]
    n = inputs[2].shape[0] if len(inputs) > 2 else (int(idx.max()) + 1 if idx.size else 0)
    out = np.zeros((n, *values.shape[1:]), values.dtype)
    for k, i in enumerate(idx):
        out[i] = out[i] + values[k]
    return (out,)


def std_samples(dtype):
    v = uniform(72, (4, 2), dtype=dtype)
    return [
        Sample((_i(3, 0, 3, 1), v, np.zeros((6, 2), dtype)), {}, "dim from the third input"),
        Sample((_i(3, 0, 3, 1), v), {}, "dim from max index + 1"),
    ]


def std_bad():
    v = arr([[1.0], [2.0]], F32)
    op = "SparseToDense"
    return [
        BadInput((_i(0, 3), v, np.zeros((3, 1), F32)), {}, IndexError, (op, "INDICES", "3"),
                 "index beyond the inferred dim"),
        BadInput((_i(0), v), {}, ValueError, (op, "INDICES"), "one index for two rows"),
    ]


# --------------------------------------------------------------------------------------------
# SparseLengths*


def _fma32(w, x, acc):
    return (np.float64(w) * x.astype(np.float64) + acc.astype(np.float64)).astype(F32)


def _segments_ref(data, idx, lengths, weights=None, mean=False):
    ct = _ct(data.dtype)
    d = data.reshape(data.shape[0], -1) if data.ndim > 1 else data.reshape(-1, 1)
    out = np.zeros((len(lengths), d.shape[1]), ct)
    pos = 0
    for s, n in enumerate(lengths):
        acc = np.zeros(d.shape[1], ct)
        for k in range(pos, pos + int(n)):
            row = d[idx[k]].astype(ct)
            if weights is None:
                acc = acc + row
            elif ct == F32:
                acc = _fma32(weights[k], row, acc)
            else:
                acc = acc + ct.type(weights[k]) * row
        if mean and n:
            acc = acc * (ct.type(1) / ct.type(n))
        out[s] = acc
        pos += int(n)
    return out.astype(data.dtype).reshape((len(lengths), *data.shape[1:]))


def sls_ref(inputs, args):
    return (_segments_ref(inputs[0], inputs[1], inputs[2]),)


def slm_ref(inputs, args):
    return (_segments_ref(inputs[0], inputs[1], inputs[2], mean=True),)


def slws_ref(inputs, args):
    return (_segments_ref(inputs[0], inputs[2], inputs[3], weights=inputs[1]),)


def _sls_data(dtype):
    data = uniform(73, (6, 4), dtype=dtype)
    idx = _i(5, 0, 0, 2, 3, 5, 1)
    lengths = _i(3, 0, 4, dtype=np.int32)
    return data, idx, lengths


def sls_samples(dtype, weighted=False):
    data, idx, lengths = _sls_data(dtype)
    w = uniform(74, (7,), dtype=dtype)
    d3 = uniform(75, (3, 2, 2), dtype=dtype)

    def s(d, i, n, desc):
        ins = (d, w[: i.size], i, n) if weighted else (d, i, n)
        return Sample(ins, {}, desc)

    return [
        s(data, idx, lengths, "segments with an empty one, duplicates"),
        s(data, idx.astype(np.int32), lengths.astype(np.int64), "int32 indices, int64 lengths"),
        s(d3, _i(2, 0), _i(1, 1, dtype=np.int32), "3-D data: rows of 2x2"),
        s(data, np.zeros(0, np.int64), _i(0, 0, dtype=np.int32), "no indices"),
        s(data, np.zeros(0, np.int64), np.zeros(0, np.int32), "no segments"),
    ]


def sls_bad(op, weighted=False):
    data, idx, lengths = _sls_data(F32)
    w = arr(np.ones(7), F32)

    def b(d, i, n, exc, frags, desc, ww=None):
        ins = (d, (w if ww is None else ww), i, n) if weighted else (d, i, n)
        return BadInput(ins, {}, exc, (op, *frags), desc)

    out = [
        b(data, _i(0, 6), _i(2, dtype=np.int32), IndexError, ("INDICES", "6"), "index == rows",
          ww=w[:2]),
        b(data, _i(-1, 0), _i(2, dtype=np.int32), IndexError, ("INDICES", "-1"), "negative",
          ww=w[:2]),
        b(data, idx, _i(3, 0, 3, dtype=np.int32), ValueError, ("LENGTHS", "7"),
          "lengths sum to 6, 7 indices"),
        b(data, idx, _i(8, -1, dtype=np.int32), ValueError, ("LENGTHS", "negative"),
          "negative length"),
        b(data, idx, lengths.astype(np.float32), TypeError, ("LENGTHS",), "float lengths"),
        b(data, idx.reshape(7, 1), lengths, ValueError, ("INDICES", "1-D"), "2-D indices"),
        b(arr(1.0, F32), idx, lengths, ValueError, ("DATA",), "0-d data"),
    ]
    if weighted:
        out.append(BadInput((data, w[:3], idx, lengths), {}, ValueError, (op, "SCALARS"),
                            "one weight per index"))
    return out


def sls_grad_samples(weighted=False):
    def samples(dtype):
        data, idx, lengths = _sls_data(dtype)
        if weighted:
            w = uniform(76, (7,), dtype=dtype)
            return [GradSample((data, w, idx, lengths), {}, (0,), "data: GradientSlice"),
                    GradSample((data, w, idx, lengths), {"grad_on_weights": True}, (0, 1),
                               "grad_on_weights")]
        return [GradSample((data, idx, lengths), {}, (0,), "data: GradientSlice")]

    return samples


def _seg_of(lengths):
    return np.repeat(np.arange(len(lengths)), lengths)


def gsum_ref(inputs, args):
    dy, lengths = inputs[:2]
    return (dy[_seg_of(lengths)].copy(),)


def gmean_ref(inputs, args):
    dy, lengths = inputs[:2]
    ct = _ct(dy.dtype)
    seg = _seg_of(lengths)
    with np.errstate(divide="ignore"):  # empty segments have no rows
        inv = (ct.type(1) / np.asarray(lengths).astype(ct))[seg]
    return ((dy[seg].astype(ct) * inv.reshape((-1,) + (1,) * (dy.ndim - 1))).astype(dy.dtype),)


def gwsum_ref(inputs, args):
    w, dy, lengths = inputs[:3]
    seg = _seg_of(lengths)
    return (dy[seg] * w.reshape((-1,) + (1,) * (dy.ndim - 1)),)


def gwsum_main_ref(inputs, args):
    w, dy, lengths, data, idx = inputs
    seg = _seg_of(lengths)
    values = dy[seg] * w.reshape((-1,) + (1,) * (dy.ndim - 1))
    dw = np.array([np.dot(dy[s].astype(np.float64).ravel(), data[i].astype(np.float64).ravel())
                   for s, i in zip(seg, idx, strict=True)]).astype(dy.dtype)
    return (values, dw)


def gwsum_main_compare(got, expected, sample, dtype, what):
    """values bit for bit; the weight gradient (a dot product) within 2 ulp of its magnitude."""
    from optable import assert_same

    assert_same(got[0], expected[0], f"{what} values")
    g, e = np.asarray(got[1]), np.asarray(expected[1])
    assert g.dtype == e.dtype and g.shape == e.shape, what
    w, dy, lengths, data, idx = sample.inputs
    scale = np.array([np.sum(np.abs(dy[s].astype(np.float64) * data[i]))
                      for s, i in zip(_seg_of(lengths), idx, strict=True)])
    assert np.all(np.abs(g.astype(np.float64) - e) <= 2 * np.spacing(scale.astype(g.dtype))), what


def grad_samples_for(kind):
    def samples(dtype):
        data, idx, lengths = _sls_data(dtype)
        dy = uniform(77, (3, 4), dtype=dtype)
        w = uniform(78, (7,), dtype=dtype)
        if kind == "plain":
            return [Sample((dy, lengths, idx), {}, "segments with an empty one"),
                    Sample((dy[:0], np.zeros(0, np.int32), np.zeros(0, np.int64)), {},
                           "no segments")]
        if kind == "weighted":
            return [Sample((w, dy, lengths, idx), {}, "weighted")]
        return [Sample((w, dy, lengths, data, idx), {"grad_on_weights": True}, "with DATA")]

    return samples


def grad_bad(op, kind):
    data, idx, lengths = _sls_data(F32)
    dy = arr(np.ones((3, 4)), F32)
    w = arr(np.ones(7), F32)
    if kind == "plain":
        return [
            BadInput((dy, _i(3, 0, 3, dtype=np.int32), idx), {}, ValueError, (op, "LENGTHS"),
                     "lengths do not sum to the indices"),
            BadInput((dy[:2], lengths, idx), {}, ValueError, (op, "dY"), "one row per segment"),
        ]
    if kind == "weighted":
        return [BadInput((w[:2], dy, lengths, idx), {}, ValueError, (op, "SCALARS"),
                         "one weight per index")]
    return [BadInput((w, dy, lengths, data, _i(0, 1, 2, 3, 4, 5, 6)), {}, IndexError,
                     (op, "INDICES", "6"), "index == rows of DATA")]


# --------------------------------------------------------------------------------------------
# counters and LearningRate


def iter_ref(inputs, args):
    return (inputs[0] + 1,)


def iter_samples(dtype):
    return [Sample((_i(0),), {}, "0 -> 1"), Sample((_i(41),), {}, "41 -> 42")]


def iter_bad(op, mutex=False):
    pre = (c2.create_mutex(),) if mutex else ()
    return [
        BadInput((*pre, np.array([1], np.int32)), {}, TypeError, (op, "iter"), "int32 counter"),
        BadInput((*pre, _i(1, 2)), {}, ValueError, (op, "iter"), "two elements"),
        BadInput((*pre, _i(np.iinfo(np.int64).max)), {}, ValueError, (op, "iter", "overflow"),
                 "overflow"),
    ]


def atomic_samples(dtype):
    return [Sample((c2.create_mutex(), _i(7)), {}, "7 -> 8")]


def mutex_compare(got, expected, sample, dtype, what):
    (g,) = got
    obj = g.reshape(-1)[0] if isinstance(g, np.ndarray) else g
    assert type(obj).__name__ == "Mutex", f"{what}: {type(obj)}"


def _libm_powf(x, y):
    """C's powf, which Caffe2's std::pow(float, float) calls (NumPy's float32 power may not)."""
    import ctypes
    import ctypes.util

    fn = ctypes.CDLL(ctypes.util.find_library("m")).powf
    fn.restype = ctypes.c_float
    fn.argtypes = [ctypes.c_float, ctypes.c_float]
    return np.float32(fn(x, y))


def lr_ref(inputs, args):
    it = int(inputs[0][0])
    f32 = np.float32
    base = f32(args["base_lr"])
    gamma = f32(args.get("gamma", 1.0))
    power = f32(args.get("power", 1.0))
    policy = args["policy"]
    if policy == "fixed":
        m = f32(1)
    elif policy == "step":
        m = _libm_powf(gamma, f32(it // args["stepsize"]))
    elif policy == "exp":
        m = _libm_powf(gamma, f32(it))
    elif policy == "inv":
        m = _libm_powf(f32(1) + gamma * f32(it), -power)
    else:
        m = _libm_powf(gamma, f32(sum(it >= s for s in args["stepsizes"])))
    return (np.array(base * m, F32),)


def lr_samples(dtype):
    out = []
    for it in (0, 7, 123):
        t = _i(it)
        out += [
            Sample((t,), {"base_lr": -0.037, "policy": "fixed"}, f"fixed @{it}"),
            Sample((t,), {"base_lr": -0.037, "policy": "step", "stepsize": 7, "gamma": 0.93},
                   f"step @{it}"),
            Sample((t,), {"base_lr": 0.5, "policy": "exp", "gamma": 0.999}, f"exp @{it}"),
            Sample((t,), {"base_lr": 0.5, "policy": "inv", "gamma": 1e-3, "power": 0.75},
                   f"inv @{it}"),
            Sample((t,), {"base_lr": 0.5, "policy": "multistep", "stepsizes": [5, 100],
                          "gamma": 0.5}, f"multistep @{it}"),
        ]
    return out


def lr_functional(inputs, args):
    return (c2.learning_rate(inputs[0], **args),)


def lr_bad():
    t = _i(3)
    return [
        BadInput((t,), {"base_lr": 0.1, "policy": "cosine_wave"}, ValueError,
                 ("LearningRate", "policy"), "unknown policy"),
        BadInput((t,), {"base_lr": 0.1, "policy": "step"}, ValueError,
                 ("LearningRate", "stepsize"), "step without stepsize"),
        BadInput((np.array([3], np.int32),), {"base_lr": 0.1, "policy": "fixed"}, TypeError,
                 ("LearningRate", "iter"), "int32 iter"),
    ]


# --------------------------------------------------------------------------------------------
# WeightedSum, WeightedSumGradient, ScatterWeightedSum


def _w(v, dtype):
    return arr([v], dtype)


def wsum_ref(inputs, args):
    y = inputs[1][0] * inputs[0]
    for k in range(2, len(inputs), 2):
        y = y + inputs[k + 1][0] * inputs[k]
    return (y,)


def wsum_samples(dtype):
    x = [uniform(80 + k, (3, 4), dtype=dtype) for k in range(3)]
    return [
        Sample((x[0], _w(0.7, dtype), x[1], _w(-1.3, dtype), x[2], _w(0.1, dtype)), {},
               "three terms"),
        Sample((x[0], _w(0.7, dtype), x[1], _w(-1.3, dtype)), {}, "two terms"),
        Sample((x[0], _w(2.0, dtype)), {}, "one term"),
    ]


def wsum_bad():
    x = arr(np.ones((2, 2)), F32)
    return [
        BadInput((x, _w(1.0, F32), arr(np.ones(3), F32), _w(1.0, F32)), {}, ValueError,
                 ("WeightedSum", "X1"), "shape differs"),
        BadInput((x, arr([1.0, 2.0], F32)), {}, ValueError, ("WeightedSum", "w0"),
                 "two-element weight"),
        BadInput((x, _w(1.0, F32), x), {}, ValueError, ("WeightedSum", "even"),
                 "odd input count"),
    ]


def wsum_grad_ref(inputs, args):
    dy = inputs[0]
    return tuple(inputs[k + 1][0] * dy for k in range(1, len(inputs), 2))


def wsum_grad_samples(dtype):
    dy, x0, x1 = (uniform(84 + k, (3, 2), dtype=dtype) for k in range(3))
    return [Sample((dy, x0, _w(0.5, dtype), x1, _w(-2.0, dtype)), {}, "two terms")]


def wsum_grad_bad():
    dy = arr(np.ones((2, 2)), F32)
    return [BadInput((dy, arr(np.ones(3), F32), _w(1.0, F32), dy, _w(1.0, F32)), {},
                     ValueError, ("WeightedSumGradient", "X0"), "shape differs",
                     via=("runtime",))]


def wsum_grad_samples_check(dtype):
    x0, x1 = uniform(86, (2, 3), dtype=dtype), uniform(87, (2, 3), dtype=dtype)
    return [GradSample((x0, _w(0.5, dtype), x1, _w(-2.0, dtype)), {}, (0, 2), "X0 and X1")]


def scatter_ref(inputs, args):
    x0, w0, idx = inputs[:3]
    x = x0.copy()
    for i in idx:
        x[i] = w0[0] * x[i]
    for k in range(3, len(inputs), 2):
        xs, wk = inputs[k], inputs[k + 1]
        for j, i in enumerate(idx):
            x[i] = x[i] + wk[0] * xs[j]
    return (x,)


def scatter_samples(dtype):
    x0 = uniform(88, (5, 3), dtype=dtype)
    s = uniform(89, (4, 3), dtype=dtype)
    idx = _i(3, 0, 3, 1)
    return [
        Sample((x0, _w(0.9, dtype), idx, s, _w(-0.5, dtype)), {}, "duplicates scaled twice"),
        Sample((x0, _w(1.0, dtype), idx.astype(np.int32), s, _w(2.0, dtype)), {}, "w0 = 1"),
    ]


def scatter_bad():
    x0 = arr(np.ones((3, 2)), F32)
    s = arr(np.ones((2, 2)), F32)
    op = "ScatterWeightedSum"
    return [
        BadInput((x0, _w(1.0, F32), _i(0, 3), s, _w(1.0, F32)), {}, IndexError,
                 (op, "INDICES", "3"), "index == rows"),
        BadInput((x0, _w(1.0, F32), _i(0), s, _w(1.0, F32)), {}, ValueError, (op, "X_1"),
                 "slice rows != indices"),
    ]


def scatter_functional(inputs, args):
    return (c2.scatter_weighted_sum(*inputs),)


# --------------------------------------------------------------------------------------------
# Adagrad family, Adam family


def _eps(args, dtype, default=1e-5):
    return np.dtype(dtype).type(args.get("epsilon", default))


def adagrad_ref(inputs, args):
    p, h, g, lr = (x.copy() for x in inputs)
    t = p.dtype.type
    with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 = NaN is a sample
        h = t(args.get("decay", 1.0)) * h + g * g
        p = p + (lr[0] * g) / (np.sqrt(h) + _eps(args, p.dtype))
    return (p, h)


def _state(dtype, shape, seed):
    p = uniform(seed, shape, dtype=dtype)
    h = np.abs(uniform(seed + 1, shape, dtype=dtype))
    return p, h


def adagrad_samples(dtype):
    p, h = _state(dtype, (4, 3), 90)
    g = uniform(92, (4, 3), dtype=dtype)
    lr = _w(-0.1, dtype)
    return [
        Sample((p, h, g, lr), {}, "defaults"),
        Sample((p, h, g, lr), {"epsilon": 1e-3, "decay": 0.9}, "epsilon, decay"),
        Sample((p, np.zeros_like(h), np.zeros_like(g), lr), {"epsilon": 0.0},
               "zero moment and gradient, epsilon 0: 0/0 = NaN, as Caffe2"),
    ]


def _opt_bad(op, make):
    return make(op)


def adagrad_bad():
    p = arr(np.ones((2, 2)), F32)
    op = "Adagrad"
    return [
        BadInput((p, p.copy(), arr(np.ones(3), F32), _w(0.1, F32)), {}, ValueError, (op, "grad"),
                 "grad shape"),
        BadInput((p, arr(np.ones((2, 2)), F64), p.copy(), _w(0.1, F32)), {}, TypeError,
                 (op, "moment"), "moment dtype"),
        BadInput((p, p.copy(), p.copy(), arr([0.1, 0.2], F32)), {}, ValueError, (op, "lr"),
                 "two-element lr"),
    ]


def adagrad_functional(inputs, args):
    return c2.adagrad(*inputs, **args)


def sparse_adagrad_ref(inputs, args, rowwise=False):
    p, h, idx, g, lr = (x.copy() for x in inputs)
    eps = _eps(args, p.dtype)
    d = p.size // p.shape[0]
    g = g.reshape(len(idx), *p.shape[1:])
    t = p.dtype.type
    for k, r in enumerate(idx.reshape(-1)):
        if rowwise:
            hs = t(0)
            for v in g[k].reshape(-1):
                hs = t(hs + v * v)
            h[r] = h[r] + hs / t(d)
            if d == 1:
                p[r] = p[r] + (lr[0] * g[k]) / (np.sqrt(h[r]) + eps)
            else:
                p[r] = p[r] + g[k] * (lr[0] / (np.sqrt(h[r]) + eps))
        else:
            h[r] = h[r] + g[k] * g[k]
            p[r] = p[r] + (lr[0] * g[k]) / (np.sqrt(h[r]) + eps)
    return (p, h)


def sparse_adagrad_samples(rowwise=False):
    def samples(dtype):
        p, h = _state(dtype, (6, 3), 93)
        if rowwise:
            h = np.abs(uniform(95, (6,), dtype=dtype))
        g = uniform(96, (4, 3), dtype=dtype)
        lr = _w(-0.1, dtype)
        p1, h1 = _state(dtype, (5,), 97)
        if rowwise:
            h1 = np.abs(uniform(98, (5,), dtype=dtype))
        return [
            Sample((p, h, _i(4, 0, 4, 2), g, lr), {}, "duplicates in order"),
            Sample((p, h, _i(1, 3, 5, 0, dtype=np.int32), g, lr), {"epsilon": 1e-3},
                   "int32 indices, epsilon"),
            Sample((p1, h1, _i(0, 4, 0), uniform(99, (3,), dtype=dtype), lr), {},
                   "1-element rows"),
            Sample((p, h, np.zeros(0, np.int64), g[:0], lr), {}, "no indices"),
        ]

    return samples


def sparse_adagrad_bad(op, rowwise=False):
    p = arr(np.ones((3, 2)), F32)
    h = arr(np.ones(3), F32) if rowwise else p.copy()
    g = arr(np.ones((2, 2)), F32)
    return [
        BadInput((p, h, _i(0, 3), g, _w(0.1, F32)), {}, IndexError, (op, "indices", "3"),
                 "index == rows"),
        BadInput((p, h, _i(0), g, _w(0.1, F32)), {}, ValueError, (op, "grad"),
                 "grad rows != indices"),
        BadInput((p, arr(np.ones(4), F32), _i(0, 1), g, _w(0.1, F32)), {}, ValueError,
                 (op, "moment"), "moment size"),
        BadInput((p, h, np.array([0.0, 1.0]), g, _w(0.1, F32)), {}, TypeError,
                 (op, "indices"), "float indices"),
    ]


def _corr(t, b1, b2):
    return np.sqrt(1.0 - np.float64(b1 * 0 + b2) ** t) / (1.0 - np.float64(b1) ** t)


def adam_ref(inputs, args):
    p, m, v, g, lr, it = (x.copy() for x in inputs)
    t = p.dtype.type
    b1, b2 = t(args.get("beta1", 0.9)), t(args.get("beta2", 0.999))
    eps = _eps(args, p.dtype)
    corr = t(_corr(int(it[0]) + 1, b1, b2))
    m = m * b1 + g * (t(1) - b1)
    v = v * b2 + g * g * (t(1) - b2)
    p = p + (lr[0] * corr) * m / (np.sqrt(v) + eps)
    return (p, m, v)


def adam_samples(dtype):
    p, m = _state(dtype, (4, 3), 100)
    v = np.abs(uniform(102, (4, 3), dtype=dtype))
    g = uniform(103, (4, 3), dtype=dtype)
    lr = _w(-0.01, dtype)
    return [
        Sample((p, m, v, g, lr, _i(0)), {}, "first step"),
        Sample((p, m, v, g, lr, _i(999)), {"beta1": 0.8, "beta2": 0.99, "epsilon": 1e-7},
               "later step, arguments"),
    ]


def adam_bad():
    p = arr(np.ones((2, 2)), F32)
    op = "Adam"
    return [
        BadInput((p, p.copy(), p.copy(), arr(np.ones(3), F32), _w(0.1, F32), _i(0)), {},
                 ValueError, (op, "grad"), "grad shape"),
        BadInput((p, p.copy(), p.copy(), p.copy(), _w(0.1, F32), np.array([0], np.int32)), {},
                 TypeError, (op, "iter"), "int32 iter"),
    ]


def adam_functional(inputs, args):
    return c2.adam(*inputs, **args)


def sparse_adam_ref(inputs, args):
    p, m, v, idx, g, lr, it = (x.copy() for x in inputs)
    t = p.dtype.type
    b1, b2 = t(args.get("beta1", 0.9)), t(args.get("beta2", 0.999))
    eps = _eps(args, p.dtype)
    corr64 = _corr(int(it[0]) + 1, b1, b2)
    d = p.size // p.shape[0]
    g = g.reshape(len(idx), *p.shape[1:])
    for k, r in enumerate(idx.reshape(-1)):
        m[r] = m[r] * b1 + g[k] * (t(1) - b1)
        v[r] = v[r] * b2 + g[k] * g[k] * (t(1) - b2)
        if d == 1:
            p[r] = t(np.float64(p[r]) + np.float64(lr[0]) * corr64 * np.float64(m[r])
                     / np.float64(np.sqrt(v[r]) + eps))
        else:
            p[r] = p[r] + (lr[0] * t(corr64)) * m[r] / (np.sqrt(v[r]) + eps)
    return (p, m, v)


def sparse_adam_samples(dtype):
    p, m = _state(dtype, (6, 3), 104)
    v = np.abs(uniform(106, (6, 3), dtype=dtype))
    g = uniform(107, (4, 3), dtype=dtype)
    p1, m1 = _state(dtype, (5,), 108)
    lr = _w(-0.01, dtype)
    return [
        Sample((p, m, v, _i(4, 0, 4, 2), g, lr, _i(3)), {}, "duplicates in order"),
        Sample((p1, m1, np.abs(m1), _i(0, 3, 0), uniform(109, (3,), dtype=dtype), lr, _i(0)), {},
               "1-element rows: Caffe2's float64 scalar path"),
    ]


def sparse_adam_bad():
    p = arr(np.ones((3, 2)), F32)
    op = "SparseAdam"
    g = arr(np.ones((2, 2)), F32)
    return [
        BadInput((p, p.copy(), p.copy(), _i(0, 3), g, _w(0.1, F32), _i(0)), {}, IndexError,
                 (op, "indices", "3"), "index == rows"),
        BadInput((p, p.copy(), p.copy(), _i(0, 1), g, _w(0.1, F32), _i(0)),
                 {"enableRAdam": True}, ValueError, (op, "enableRAdam"), "RAdam",
                 via=("runtime",)),
    ]


# --------------------------------------------------------------------------------------------
# the entries

GRAD_SUM = "SparseLengthsIndicesInGradientSumGradient"
GRAD_MEAN = "SparseLengthsIndicesInGradientMeanGradient"
GRAD_WSUM = "SparseLengthsIndicesInGradientWeightedSumGradient"
GRAD_WSUM_MAIN = "SparseLengthsIndicesInGradientWeightedSumWithMainInputGradient"

ENTRIES: list[OpEntry] = [
    OpEntry("Gather", ("DATA", "INDICES"), ("OUTPUT",), gather_ref, gather_samples,
            FLOATS + (np.dtype(np.int32),), lambda i, a: (c2.gather(*i, **a),),
            bad_inputs=gather_bad, grad_samples=gather_grad_samples),
    OpEntry("SparseToDense", ("INDICES", "VALUES", "DATA_TO_INFER_DIM"), ("OUTPUT",), std_ref,
            std_samples, F3264, lambda i, a: (c2.sparse_to_dense(*i),), bad_inputs=std_bad),
    OpEntry("SparseLengthsSum", ("DATA", "INDICES", "LENGTHS"), ("OUTPUT",), sls_ref,
            sls_samples, FLOATS, lambda i, a: (c2.sparse_lengths_sum(*i),),
            bad_inputs=lambda: sls_bad("SparseLengthsSum"),
            bad_dtypes=(np.int32, np.bool_), grad_samples=sls_grad_samples()),
    OpEntry("SparseLengthsMean", ("DATA", "INDICES", "LENGTHS"), ("OUTPUT",), slm_ref,
            sls_samples, FLOATS, lambda i, a: (c2.sparse_lengths_mean(*i),),
            bad_inputs=lambda: sls_bad("SparseLengthsMean"), bad_dtypes=(np.int32,),
            grad_samples=sls_grad_samples()),
    OpEntry("SparseLengthsWeightedSum", ("DATA", "SCALARS", "INDICES", "LENGTHS"), ("OUTPUT",),
            slws_ref, lambda d: sls_samples(d, weighted=True), FLOATS,
            lambda i, a: (c2.sparse_lengths_weighted_sum(*i),),
            bad_inputs=lambda: sls_bad("SparseLengthsWeightedSum", weighted=True),
            bad_dtypes=(np.int32,), grad_samples=sls_grad_samples(weighted=True)),
    OpEntry(GRAD_SUM, ("dY", "LENGTHS", "INDICES"), ("values",), gsum_ref,
            grad_samples_for("plain"), FLOATS,
            lambda i, a: (c2.sparse_lengths_sum_gradient(*i),),
            bad_inputs=lambda: grad_bad(GRAD_SUM, "plain"), bad_dtypes=(np.int32,)),
    OpEntry(GRAD_MEAN, ("dY", "LENGTHS", "INDICES"), ("values",), gmean_ref,
            grad_samples_for("plain"), FLOATS,
            lambda i, a: (c2.sparse_lengths_mean_gradient(*i),),
            bad_inputs=lambda: grad_bad(GRAD_MEAN, "plain"), bad_dtypes=(np.int32,)),
    OpEntry(GRAD_WSUM, ("SCALARS", "dY", "LENGTHS", "INDICES"), ("values",), gwsum_ref,
            grad_samples_for("weighted"), FLOATS,
            lambda i, a: (c2.sparse_lengths_weighted_sum_gradient(*i),),
            bad_inputs=lambda: grad_bad(GRAD_WSUM, "weighted")),
    OpEntry(GRAD_WSUM_MAIN, ("SCALARS", "dY", "LENGTHS", "DATA", "INDICES"),
            ("values", "SCALARS_grad"), gwsum_main_ref, grad_samples_for("main"), F3264,
            lambda i, a: c2.sparse_lengths_weighted_sum_gradient(i[0], i[1], i[2], i[4],
                                                                 data=i[3]),
            compare=gwsum_main_compare, bad_inputs=lambda: grad_bad(GRAD_WSUM_MAIN, "main")),
    OpEntry("Iter", ("iter",), ("iter",), iter_ref, iter_samples, (I64,),
            lambda i, a: (c2.iter(i[0]),), bad_inputs=lambda: iter_bad("Iter"),
            enforce_inplace=frozenset({(0, 0)}), mutates=(0,)),
    OpEntry("CreateMutex", (), ("mutex",), lambda i, a: (None,),
            lambda d: [Sample((), {}, "a new mutex")], (I64,), None, compare=mutex_compare,
            bad_inputs=lambda: []),  # no inputs, no arguments: nothing to refuse
    OpEntry("AtomicIter", ("mutex", "iter"), ("iter",), lambda i, a: (i[1] + 1,),
            atomic_samples, (I64,), lambda i, a: (c2.atomic_iter(*i),),
            bad_inputs=lambda: iter_bad("AtomicIter", mutex=True) + [
                BadInput((np.zeros(1), _i(1)), {}, TypeError, ("AtomicIter", "mutex"),
                         "not a mutex")],
            enforce_inplace=frozenset({(1, 0)}), mutates=(1,)),
    OpEntry("LearningRate", ("iter",), ("lr",), lr_ref, lr_samples, (F32,), lr_functional,
            bad_inputs=lr_bad),
    OpEntry("WeightedSum", ("X0", "w0", "X1", "w1", "X2", "w2"), ("output",), wsum_ref,
            wsum_samples, FLOATS, lambda i, a: (c2.weighted_sum(*i),), bad_inputs=wsum_bad,
            bad_dtypes=(np.int32,), grad_samples=wsum_grad_samples_check,
            allow_inplace=frozenset({(0, 0)})),
    OpEntry("WeightedSumGradient", ("dY", "X0", "w0", "X1", "w1"), ("dX0", "dX1"),
            wsum_grad_ref, wsum_grad_samples, FLOATS,
            lambda i, a: tuple(c2.weighted_sum_gradient(*i)), bad_inputs=wsum_grad_bad),
    OpEntry("ScatterWeightedSum", ("X_0", "Weight_0", "INDICES", "X_1", "Weight_1"), ("X_0",),
            scatter_ref, scatter_samples, FLOATS, scatter_functional, bad_inputs=scatter_bad,
            bad_dtypes=(np.int32,), enforce_inplace=frozenset({(0, 0)}), mutates=(0,)),
    OpEntry("Adagrad", ("param", "moment", "grad", "lr"), ("param", "moment"), adagrad_ref,
            adagrad_samples, FLOATS, adagrad_functional, bad_inputs=adagrad_bad,
            bad_dtypes=(np.int32,), allow_inplace=frozenset({(0, 0), (1, 1)}), mutates=(0, 1)),
    OpEntry("SparseAdagrad", ("param", "moment", "indices", "grad", "lr"), ("param", "moment"),
            sparse_adagrad_ref, sparse_adagrad_samples(), FLOATS,
            lambda i, a: c2.sparse_adagrad(*i, **a),
            bad_inputs=lambda: sparse_adagrad_bad("SparseAdagrad"), bad_dtypes=(np.int32,),
            enforce_inplace=frozenset({(0, 0), (1, 1)}), mutates=(0, 1)),
    OpEntry("RowWiseSparseAdagrad", ("param", "moment", "indices", "grad", "lr"),
            ("param", "moment"), lambda i, a: sparse_adagrad_ref(i, a, rowwise=True),
            sparse_adagrad_samples(rowwise=True), FLOATS,
            lambda i, a: c2.rowwise_sparse_adagrad(*i, **a),
            bad_inputs=lambda: sparse_adagrad_bad("RowWiseSparseAdagrad", rowwise=True),
            bad_dtypes=(np.int32,), enforce_inplace=frozenset({(0, 0), (1, 1)}),
            mutates=(0, 1)),
    OpEntry("Adam", ("param", "moment_1", "moment_2", "grad", "lr", "iter"),
            ("param", "moment_1", "moment_2"), adam_ref, adam_samples, FLOATS, adam_functional,
            bad_inputs=adam_bad, bad_dtypes=(np.int32,),
            allow_inplace=frozenset({(0, 0), (1, 1), (2, 2)}), mutates=(0, 1, 2)),
    OpEntry("SparseAdam", ("param", "moment_1", "moment_2", "indices", "grad", "lr", "iter"),
            ("param", "moment_1", "moment_2"), sparse_adam_ref, sparse_adam_samples, F3264,
            lambda i, a: c2.sparse_adam(*i, **a), bad_inputs=sparse_adam_bad,
            bad_dtypes=(np.int32,), enforce_inplace=frozenset({(0, 0), (1, 1), (2, 2)}),
            mutates=(0, 1, 2)),
]
