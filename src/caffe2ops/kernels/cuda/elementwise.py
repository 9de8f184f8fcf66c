"""Element-wise CUDA kernels: grid-stride loops, one write per output element.

Each public function has the signature of the operator's NumPy reference kernel (``ops/``) and
takes C-contiguous device arrays of one shape. Compute dtype: float32 for float16/float32,
float64 for float64; results round once into the output dtype. Bit-exact with the reference
where the formula is (Clip, ThresholdedRelu, Relu, the gradients' masks, Scale, Add, Mul,
WeightedSum, CosineEmbeddingCriterion and its gradient, LpNormGradient, the scaling of
ClipTensorByScaling); Cos/Sin, Sigmoid and Tanh evaluate the function in float64 and round
once (within 2.5e-7 of the reference, which is within that of float64).
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import numpy as np
from numba import cuda, float32, float64

from caffe2ops.kernels.cuda._launch import THREADS, blocks, compute_type, flat, rounded_mul


def _scalar(dtype: np.dtype, value: Any):
    """A bound or factor as a kernel argument that compares/multiplies exactly."""
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        return np.int64(value) if dtype.kind == "i" else np.uint64(value)
    return np.float64(value) if dtype == np.float64 else np.float32(value)


def _launch(kernel, n: int, *args) -> None:
    kernel[blocks(n), THREADS](*args)


# -- Clip / EnsureClipped (dense) -----------------------------------------------------------

@cuda.jit
def _clip(x, lo, hi, out):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        v = x[i]
        m = lo if v < lo else v
        out[i] = hi if hi < m else m


@cuda.jit
def _clip_gradient(y, dy, lo, hi, out):
    for i in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        v = y[i]
        out[i] = dy[i] if (lo < v and v < hi) else dy[i] * 0


def clip(x, lo, hi, out):
    _launch(_clip, x.size, flat(x), _scalar(x.dtype, lo), _scalar(x.dtype, hi), flat(out))
    return out


def clip_gradient(y, dy, lo, hi, out):
    _launch(_clip_gradient, y.size, flat(y), flat(dy), _scalar(y.dtype, lo),
            _scalar(y.dtype, hi), flat(out))
    return out


# -- ThresholdedRelu, Relu -----------------------------------------------------------------

@cuda.jit
def _keep_greater(x, alpha, src, out):
    """``out = src`` where ``x > alpha``, else +0."""
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        out[i] = src[i] if x[i] > alpha else 0


def thresholded_relu(x, alpha, out):
    _launch(_keep_greater, x.size, flat(x), _scalar(x.dtype, alpha), flat(x), flat(out))
    return out


def thresholded_relu_gradient(y, dy, out):
    _launch(_keep_greater, y.size, flat(y), _scalar(y.dtype, 0), flat(dy), flat(out))
    return out


def thresholded_relu_gradient_from_x(x, dy, alpha, out):
    _launch(_keep_greater, x.size, flat(x), _scalar(x.dtype, alpha), flat(dy), flat(out))
    return out


@cuda.jit
def _relu(x, out):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        v = x[i]
        out[i] = 0 if v < 0 else v


def relu(x, out):
    _launch(_relu, x.size, flat(x), flat(out))
    return out


def relu_gradient(y, dy, out):
    return thresholded_relu_gradient(y, dy, out)


# -- functions evaluated in float64, rounded once --------------------------------------------

@cuda.jit(device=True)
def _finite(v):
    return v - v == 0


# Non-finite arguments are handled before the libm call: the values are what CUDA's libdevice
# returns, and the simulator (Python's math module) would raise instead.
@cuda.jit(device=True)
def _cos64(v):
    return math.cos(v) if _finite(v) else math.nan


@cuda.jit(device=True)
def _sin64(v):
    return math.sin(v) if _finite(v) else math.nan


@cuda.jit(device=True)
def _sigmoid64(v):
    if v != v:
        return v
    if v < -745.0:
        return 0.0
    return 1.0 / (1.0 + math.exp(-v))


@cuda.jit
def _cos(x, out):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        out[i] = _cos64(float64(x[i]))


@cuda.jit
def _sigmoid(x, out):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        out[i] = _sigmoid64(float64(x[i]))


@cuda.jit
def _tanh(x, out):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        out[i] = math.tanh(float64(x[i]))


def cos(x, out):
    _launch(_cos, x.size, flat(x), flat(out))
    return out


def sigmoid(x, out):
    _launch(_sigmoid, x.size, flat(x), flat(out))
    return out


def tanh(x, out):
    _launch(_tanh, x.size, flat(x), flat(out))
    return out


@cache
def _gradients(ct):
    """Gradient kernels computing in ``ct``, with the reference's operation order."""
    mul = rounded_mul(ct)

    @cuda.jit
    def cos_gradient(x, dy, out):  # (-dY)·fl(sin X)
        for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
            s = ct(_sin64(float64(x[i])))
            out[i] = (-ct(dy[i])) * s

    @cuda.jit
    def sigmoid_gradient(y, dy, out):  # (dY·Y)·(1−Y)
        for i in range(cuda.grid(1), y.size, cuda.gridsize(1)):
            v = ct(y[i])
            out[i] = (ct(dy[i]) * v) * (ct(1) - v)

    @cuda.jit
    def tanh_gradient(y, dy, out):  # dY·(1−Y·Y)
        for i in range(cuda.grid(1), y.size, cuda.gridsize(1)):
            v = ct(y[i])
            out[i] = ct(dy[i]) * (ct(1) - mul(v, v))

    return {"cos": cos_gradient, "sigmoid": sigmoid_gradient, "tanh": tanh_gradient}


def cos_gradient(x, dy, out):
    _launch(_gradients(compute_type(x.dtype))["cos"], x.size, flat(x), flat(dy), flat(out))
    return out


def sigmoid_gradient(y, dy, out):
    _launch(_gradients(compute_type(y.dtype))["sigmoid"], y.size, flat(y), flat(dy), flat(out))
    return out


def tanh_gradient(y, dy, out):
    _launch(_gradients(compute_type(y.dtype))["tanh"], y.size, flat(y), flat(dy), flat(out))
    return out


# -- arithmetic ----------------------------------------------------------------------------

@cache
def _arithmetic(ct):
    rounded = rounded_mul(ct)

    @cuda.jit
    def scale(x, s, out):
        for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
            out[i] = ct(x[i]) * s

    @cuda.jit
    def add(a, b, out):
        for i in range(cuda.grid(1), a.size, cuda.gridsize(1)):
            out[i] = ct(a[i]) + ct(b[i])

    @cuda.jit
    def mul(a, b, out):
        for i in range(cuda.grid(1), a.size, cuda.gridsize(1)):
            out[i] = ct(a[i]) * ct(b[i])

    @cuda.jit
    def axpy(acc, w, x, first, out):
        """``out = w·x`` (first) or ``out = acc + w·x``, rounded after the product."""
        for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
            p = rounded(ct(w[0]), ct(x[i]))
            if first:
                out[i] = p
            else:
                out[i] = ct(acc[i]) + ct(p)

    return {"scale": scale, "add": add, "mul": mul, "axpy": axpy}


def scale(x, factor, out):
    """``out = x·factor`` (ClipTensorByScaling's scaling, Scale); ``factor`` a host scalar."""
    ct = compute_type(x.dtype)
    _launch(_arithmetic(ct)["scale"], x.size, flat(x), _scalar(np.dtype(ct.name), factor),
            flat(out))
    return out


def add(a, b, out):
    _launch(_arithmetic(compute_type(a.dtype))["add"], a.size, flat(a), flat(b), flat(out))
    return out


def mul(a, b, out):
    _launch(_arithmetic(compute_type(a.dtype))["mul"], a.size, flat(a), flat(b), flat(out))
    return out


def sum_arrays(arrays: list, out):
    """Caffe2's Sum: ``out = x0 + x1``, then ``out = out + xk`` in order."""
    if len(arrays) == 1:
        scale(arrays[0], 1, out)
        return out
    add(arrays[0], arrays[1], out)
    for x in arrays[2:]:
        add(out, x, out)
    return out


def weighted_sum(xs: list, ws: list, out):
    """``y = w0·X0; y = y + wk·Xk`` (each ``wk`` a 1-element device array)."""
    kernel = _arithmetic(compute_type(xs[0].dtype))["axpy"]
    for k, (x, w) in enumerate(zip(xs, ws, strict=True)):
        _launch(kernel, x.size, flat(out), flat(w), flat(x), k == 0, flat(out))
    return out


# -- CosineEmbeddingCriterion --------------------------------------------------------------

@cuda.jit
def _criterion(s, label, margin, out):
    for i in range(cuda.grid(1), s.size, cuda.gridsize(1)):
        v = s[i]
        if label[i] == 1:
            out[i] = 1 - v
        else:
            d = v - margin
            out[i] = d if d > 0 else 0


@cuda.jit
def _criterion_gradient(s, label, dloss, margin, out):
    for i in range(cuda.grid(1), s.size, cuda.gridsize(1)):
        if label[i] == 1:
            out[i] = -dloss[i]
        else:
            out[i] = dloss[i] * (1 if s[i] >= margin else 0)


def cosine_embedding_criterion(s, label, margin, out):
    _launch(_criterion, s.size, flat(s), flat(label), s.dtype.type(margin), flat(out))
    return out


def cosine_embedding_criterion_gradient(s, label, dloss, margin, out):
    _launch(_criterion_gradient, s.size, flat(s), flat(label), flat(dloss),
            s.dtype.type(margin), flat(out))
    return out


# -- LpNormGradient ------------------------------------------------------------------------

@cache
def _lp_gradient(ct):
    @cuda.jit
    def kernel(x, s, p, eps, out):
        for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
            v = ct(x[i])
            if p == 2:
                out[i] = (v * ct(2)) * s
            else:
                sign = ct(1) if v > eps else (ct(-1) if v < -eps else ct(0))
                out[i] = sign * s

    return kernel


def lp_norm_gradient(x, s, p: int, out):
    """``(2x)·s`` (p=2) or ``sign_eps(x)·s`` (p=1); ``s = dN/size`` already rounded (host)."""
    ct = compute_type(x.dtype)
    cdt = np.dtype(ct.name)
    _launch(_lp_gradient(ct), x.size, flat(x), cdt.type(s), np.int64(p), cdt.type(1e-12),
            flat(out))
    return out


_ = float32  # re-exported for the kernels' closures


# -- loss gradients ------------------------------------------------------------------------

@cache
def _loss_gradients(ct):
    @cuda.jit
    def fill_from(ds, divisor, average, out):
        """``out[:] = fl(dS)`` or ``fl(fl(dS)/n)`` (SumElementsGradient, AveragedLossGradient)."""
        g = ct(ds[0])
        if average:
            g = ct(g / divisor)
        for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
            out[i] = g

    @cuda.jit
    def squared_l2(x, y, dz, d, dx, dy):
        """``dX = (X − Y)·dZ[row]``, ``dY = −dX``, in the dtype."""
        for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
            v = (x[i] - y[i]) * dz[i // d]
            dx[i] = v
            dy[i] = -v

    return fill_from, squared_l2


def fill_from(ds, average: bool, out):
    ct = compute_type(out.dtype)
    n = out.size if average and out.size else 1
    _launch(_loss_gradients(ct)[0], out.size, flat(ds), np.dtype(ct.name).type(n),
            bool(average), flat(out))
    return out


def squared_l2_distance_gradient(x, y, dz, dx, dy):
    d = x.size // max(1, dz.size)
    _launch(_loss_gradients(compute_type(x.dtype))[1], x.size, flat(x), flat(y), flat(dz),
            np.int64(max(d, 1)), flat(dx), flat(dy))
    return dx, dy


# -- Sub, Log, Copy ------------------------------------------------------------------------

@cache
def _sub(ct):
    @cuda.jit
    def kernel(a, b, out):
        for i in range(cuda.grid(1), a.size, cuda.gridsize(1)):
            out[i] = ct(a[i]) - ct(b[i])

    return kernel


def sub(a, b, out):
    _launch(_sub(compute_type(a.dtype)), a.size, flat(a), flat(b), flat(out))
    return out


@cuda.jit(device=True)
def _log64(v):
    if v > 0.0:
        return math.log(v) if _finite(v) else v
    if v == 0.0:
        return -math.inf
    return math.nan  # negative or NaN


@cuda.jit
def _log(x, out):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        out[i] = _log64(float64(x[i]))


def log(x, out):
    """``fl(log(double x))``: ``log(0) = -inf``, ``log(x < 0) = NaN``."""
    _launch(_log, x.size, flat(x), flat(out))
    return out


@cuda.jit
def _copy(x, out):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        out[i] = x[i]


def copy(x, out):
    """``out = x`` element by element (any dtype)."""
    if x.size:
        _launch(_copy, x.size, flat(x), flat(out))
    return out


# -- Max, MaxGradient ----------------------------------------------------------------------

@cuda.jit
def _max_into(out, x):
    """``m = m < x ? x : m``: a NaN already in m stays, a later NaN is skipped."""
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        if out[i] < x[i]:
            out[i] = x[i]


@cuda.jit
def _max_gradient(m, dm, x, out):
    for i in range(cuda.grid(1), m.size, cuda.gridsize(1)):
        out[i] = dm[i] * (1 if x[i] == m[i] else 0)


def elementwise_max(arrays: list, out):
    """Caffe2's Max folded left to right (``out`` must not overlap ``arrays[1:]``)."""
    if out is not arrays[0]:
        copy(arrays[0], out)
    for x in arrays[1:]:
        _launch(_max_into, x.size, flat(out), flat(x))
    return out


def elementwise_max_gradient(m, dm, x, out):
    _launch(_max_gradient, m.size, flat(m), flat(dm), flat(x), flat(out))
    return out
