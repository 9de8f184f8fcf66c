"""Deterministic CUDA reductions: LpNorm, SumElements, AveragedLoss, SumSqrElements,
SquaredL2Distance, and the clipping toolkit's fused multi-array norm and scale.

A sum over one array runs with a fixed launch shape (``REDUCE_BLOCKS`` blocks of ``THREADS``):
each thread accumulates its grid-stride slice in float64, each block reduces its threads in a
fixed tree, and one final block reduces the blocks' partials in a fixed tree. The order never
depends on timing, so a result is the same on every run; it differs from the CPU reference's
float64 order only in float64 rounding: for sums of non-negative terms (|x|, x², (x−y)²) the
relative difference is below ``n·2⁻⁵²``, which rounds to the same float32 except within 1 ulp of
a rounding boundary. Bound stated and tested: 1 ulp of the output dtype (plain sums of mixed
signs: ``n·2⁻⁵²·Σ|x|`` absolute, before rounding).
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
from numba import cuda, float64

from caffe2ops.kernels.cuda._launch import (
    REDUCE_BLOCKS,
    ROW_THREADS,
    THREADS,
    blocks,
    compute_type,
    empty,
    flat,
    rows2d,
)
from caffe2ops.kernels.cuda.rows import row_dots

VALUE, ABS, SQUARE, MAX_ABS = 0, 1, 2, 3


@cuda.jit(device=True)
def _term(v, mode):
    if mode == ABS:
        return abs(v)
    if mode == SQUARE:
        return v * v
    if mode == MAX_ABS:
        return abs(v)
    return v


@cuda.jit(device=True)
def _combine(a, b, mode):
    if mode == MAX_ABS:
        if a != a or b != b:
            return a + b  # NaN propagates
        return a if a > b else b
    return a + b


@cuda.jit(device=True)
def _tree(shared, t, acc, mode):
    """``shared[0]`` = the block's reduction of every thread's ``acc`` (a tree in shared memory,
    the same order whatever the grid)."""
    shared[t] = acc
    cuda.syncthreads()
    step = THREADS // 2
    while step > 0:
        if t < step:
            shared[t] = _combine(shared[t], shared[t + step], mode)
        cuda.syncthreads()
        step //= 2


@cuda.jit
def _partials(x, mode, partials, offset):
    """``partials[offset + block]`` = this block's float64 reduction of its slice of ``x``."""
    shared = cuda.shared.array(THREADS, float64)
    t = cuda.threadIdx.x
    acc = 0.0
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        acc = _combine(acc, _term(float64(x[i]), mode), mode)
    _tree(shared, t, acc, mode)
    if t == 0:
        partials[offset + cuda.blockIdx.x] = shared[0]


@cuda.jit
def _finish(partials, per_array, mode, divisors, totals):
    """Block ``b``: ``totals[b]`` = reduction of ``partials[b·per_array:(b+1)·per_array]``."""
    shared = cuda.shared.array(THREADS, float64)
    t = cuda.threadIdx.x
    b = cuda.blockIdx.x
    acc = 0.0
    for i in range(t, per_array, THREADS):
        acc = _combine(acc, partials[b * per_array + i], mode)
    _tree(shared, t, acc, mode)
    if t == 0:
        totals[b] = shared[0] / divisors[b]


def _reduce_into(arrays: list, mode: int, divisors: np.ndarray, totals) -> None:
    partials = empty((len(arrays) * REDUCE_BLOCKS,), np.float64)
    for k, x in enumerate(arrays):
        _partials[REDUCE_BLOCKS, THREADS](flat(x), np.int64(mode), partials,
                                          np.int64(k * REDUCE_BLOCKS))
    from caffe2ops.kernels.cuda._launch import to_device

    _finish[len(arrays), THREADS](partials, np.int64(REDUCE_BLOCKS), np.int64(mode),
                                  to_device(divisors.astype(np.float64)), totals)


def reduce(x, mode: int, divisor: float, out):
    """``out[0]`` = ``Σ term(x) / divisor`` (float64 throughout), rounded once into ``out``.
    An empty ``x`` gives 0 (the divisor is then ignored)."""
    divisor = divisor if x.size else 1
    if out.dtype == np.float64:
        _reduce_into([x], mode, np.array([divisor]), flat(out))
        return out
    total = empty((1,), np.float64)
    _reduce_into([x], mode, np.array([divisor]), total)
    _copy_scalar[1, 1](total, flat(out))
    return out


@cuda.jit
def _copy_scalar(src, dst):
    dst[0] = src[0]


def lp_norm(x, p: int, average: bool, out):
    return reduce(x, ABS if p == 1 else SQUARE, x.size if average else 1, out)


# -- the clipping toolkit ------------------------------------------------------------------

def norms(arrays: list, ord: float):
    """Per-array norms, a float64 device array: ``sqrt(Σx²)`` (ord 2), ``Σ|x|`` (ord 1),
    ``max|x|`` (ord inf); one pass over each array, no host synchronisation. Empty arrays give 0."""
    mode = {1.0: ABS, 2.0: SQUARE, math.inf: MAX_ABS}[float(ord)]
    totals = empty((len(arrays),), np.float64)
    _reduce_into(arrays, mode, np.ones(len(arrays)), totals)
    if mode == SQUARE:
        _sqrt_each[1, THREADS](totals)
    return totals


@cuda.jit
def _sqrt_each(v):
    for i in range(cuda.threadIdx.x, v.size, cuda.blockDim.x):
        v[i] = math.sqrt(v[i])


@cuda.jit
def _total_norm(norms_, ord_code, out):
    """One thread, in array order: ``sqrt(Σ n²)`` / ``Σ n`` / ``max n``."""
    if cuda.grid(1) == 0:
        acc = 0.0
        for i in range(norms_.size):
            n = norms_[i]
            if ord_code == SQUARE:
                acc += n * n
            elif ord_code == ABS:
                acc += n
            elif n != n or acc != acc:
                acc = acc + n
            elif n > acc:
                acc = n
        out[0] = math.sqrt(acc) if ord_code == SQUARE else acc


def total_norm(norms_, ord: float):
    """The global norm of per-array norms (a 1-element float64 device array)."""
    code = {1.0: ABS, 2.0: SQUARE, math.inf: MAX_ABS}[float(ord)]
    out = empty((1,), np.float64)
    _total_norm[1, 1](norms_, np.int64(code), out)
    return out


@cache
def _scale_by(ct):
    @cuda.jit
    def kernel(x, total, max_norm, eps, out):
        """``out = x · (max_norm / (total + eps))`` when ``total > max_norm``, else ``x``."""
        t = total[0]
        clip = t > max_norm
        factor = ct(max_norm / (t + eps))
        for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
            out[i] = ct(x[i]) * factor if clip else x[i]

    return kernel


def scale_all(arrays: list, total, max_norm: float, eps: float, outs: list) -> list:
    """The toolkit's scale pass, on the device: no host read of ``total``."""
    for x, out in zip(arrays, outs, strict=True):
        kernel = _scale_by(compute_type(x.dtype))
        kernel[blocks(x.size), THREADS](flat(x), total, np.float64(max_norm), np.float64(eps),
                                        flat(out))
    return outs


# -- SquaredL2Distance: one block per row -------------------------------------------------

@cache
def _row_squared_distance(ct):
    @cuda.jit
    def kernel(x, y, out):
        """Row r: ``fl(fl(xx + yy)·0.5 − xy)`` with ``xx, yy, xy`` float64 dots rounded to ``ct``,
        as the reference."""
        shared = cuda.shared.array((3, ROW_THREADS), float64)
        t = cuda.threadIdx.x
        for r in range(cuda.blockIdx.x, x.shape[0], cuda.gridDim.x):
            row_dots(x, y, r, shared, t)
            if t == 0:
                s = ct(ct(shared[0, 0]) + ct(shared[1, 0]))
                out[r] = float64(s) * 0.5 - float64(ct(shared[2, 0]))
            cuda.syncthreads()

    return kernel


def squared_l2_distance(x, y, out):
    rows = x.shape[0] if x.ndim else 1
    kernel = _row_squared_distance(compute_type(x.dtype))
    kernel[max(1, min(rows, 65535)), ROW_THREADS](rows2d(x, rows), rows2d(y, rows), flat(out))
    return out


@cache
def _sum_finish(ct):
    @cuda.jit
    def kernel(total, inv, average, out):
        """``fl(total)``, then ``fl(v · inv)`` with ``average`` (the reference's rounding)."""
        v = ct(total[0])
        if average:
            v = ct(v * inv)
        out[0] = v

    return kernel


def sum_of(x, average: bool, square: bool, out):
    """SumElements / SumSqrElements / AveragedLoss: ``Σx`` (or ``Σx²``) in float64, rounded to
    the compute dtype, times ``fl(1/numel)`` when averaging; ``out`` has one element."""
    total = empty((1,), np.float64)
    _reduce_into([x], SQUARE if square else VALUE, np.ones(1), total)
    ct = compute_type(x.dtype)
    cdt = np.dtype(ct.name)
    inv = cdt.type(cdt.type(1) / cdt.type(x.size)) if x.size else cdt.type(1)
    _sum_finish(ct)[1, 1](total, inv, bool(average and x.size), flat(out))
    return out
