"""Row kernels: CosineSimilarity and its gradient, SparseNormalize, sparse EnsureClipped,
Gather (axis 0), SparseLengths{Sum,WeightedSum,Mean} and their gradients, ScatterWeightedSum.

A row's dot products use one block and a fixed shared-memory tree in float64, rounded to the
compute dtype as the reference's float64 ``einsum`` is: equal to the reference except where the
two float64 summation orders round to different compute-dtype values (≤ 1 ulp of each dot).
Row updates by index follow a :class:`~caffe2ops.kernels.cuda.plan.RowPlan` (one block per
distinct row, occurrences in order): the same results as the reference's sequential loops.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
from numba import cuda, float64

from caffe2ops.kernels.cuda._launch import (
    ROW_THREADS,
    THREADS,
    blocks,
    compute_type,
    mul64,
    rounded_mul,
)

GRID_ROWS = 65535


def _grid(n: int) -> int:
    return max(1, min(n, GRID_ROWS))


@cuda.jit(device=True)
def _tree3(shared, t):
    step = ROW_THREADS // 2
    while step > 0:
        if t < step:
            shared[0, t] += shared[0, t + step]
            shared[1, t] += shared[1, t + step]
            shared[2, t] += shared[2, t + step]
        cuda.syncthreads()
        step //= 2


@cuda.jit(device=True)
def row_dots(X, Y, r, shared, t):
    """``shared[:, 0] = (Σ x², Σ y², Σ x·y)`` of row ``r`` in float64 (each thread a strided
    part, then a tree in shared memory; every thread of the block takes part)."""
    xx = 0.0
    yy = 0.0
    xy = 0.0
    for j in range(t, X.shape[1], ROW_THREADS):
        a = float64(X[r, j])
        b = float64(Y[r, j])
        xx += a * a
        yy += b * b
        xy += a * b
    shared[0, t] = xx
    shared[1, t] = yy
    shared[2, t] = xy
    cuda.syncthreads()
    _tree3(shared, t)


@cache
def _similarity(ct):
    mul = rounded_mul(ct)

    @cuda.jit
    def forward(X, Y, out):
        shared = cuda.shared.array((3, ROW_THREADS), float64)
        t = cuda.threadIdx.x
        eps = ct(1e-12)
        for r in range(cuda.blockIdx.x, X.shape[0], cuda.gridDim.x):
            row_dots(X, Y, r, shared, t)
            if t == 0:
                x2 = ct(shared[0, 0])
                y2 = ct(shared[1, 0])
                xy = ct(shared[2, 0])
                out[r] = xy / ct(math.sqrt(max(x2, eps) * max(y2, eps)))
            cuda.syncthreads()

    @cuda.jit
    def backward(X, Y, dz, dX, dY):
        shared = cuda.shared.array((3, ROW_THREADS), float64)
        t = cuda.threadIdx.x
        eps = ct(1e-12)
        for r in range(cuda.blockIdx.x, X.shape[0], cuda.gridDim.x):
            row_dots(X, Y, r, shared, t)
            x2 = ct(shared[0, 0])
            y2 = ct(shared[1, 0])
            xy = ct(shared[2, 0])
            cuda.syncthreads()
            g = ct(dz[r])
            xn = ct(math.sqrt(max(x2, eps)))
            yn = ct(math.sqrt(max(y2, eps)))
            xyn = xn * yn
            a = g / xyn
            bx = (g * xy) / (xn * xn * xyn)
            by = (g * xy) / (yn * yn * xyn)
            for j in range(t, X.shape[1], ROW_THREADS):
                xv = ct(X[r, j])
                yv = ct(Y[r, j])
                dX[r, j] = mul(a, yv) - mul(bx, xv)
                dY[r, j] = mul(a, xv) - mul(by, yv)

    return forward, backward


def cosine_similarity(X, Y, out):
    """``X, Y``: [N, D] device arrays; ``out``: [N]."""
    _similarity(compute_type(X.dtype))[0][_grid(X.shape[0]), ROW_THREADS](X, Y, out)
    return out


def cosine_similarity_gradient(X, Y, dz, dX, dY):
    _similarity(compute_type(X.dtype))[1][_grid(X.shape[0]), ROW_THREADS](X, Y, dz, dX, dY)
    return dX, dY


# -- SparseNormalize, sparse EnsureClipped --------------------------------------------------

@cache
def _normalize(ct):
    @cuda.jit
    def kernel(table, rows, groups, limit, use_max):
        shared = cuda.shared.array(ROW_THREADS, float64)
        t = cuda.threadIdx.x
        for g in range(cuda.blockIdx.x, groups, cuda.gridDim.x):
            r = rows[g]
            acc = 0.0
            for j in range(t, table.shape[1], ROW_THREADS):
                v = float64(table[r, j])
                acc += v * v
            shared[t] = acc
            cuda.syncthreads()
            step = ROW_THREADS // 2
            while step > 0:
                if t < step:
                    shared[t] += shared[t + step]
                cuda.syncthreads()
                step //= 2
            n = ct(math.sqrt(shared[0]))
            cuda.syncthreads()
            if (not use_max) or (not n <= limit):
                scale = ct(limit / (n + ct(1e-12)))
                for j in range(t, table.shape[1], ROW_THREADS):
                    table[r, j] = ct(table[r, j]) * scale

    return kernel


def sparse_normalize(table, plan, norm: float, use_max: bool):
    """``table``: [rows, D] device array, updated in place on ``plan``'s distinct rows."""
    if plan.groups == 0 or table.shape[1] == 0:
        return table
    ct = compute_type(table.dtype)
    cdt = np.dtype(ct.name)
    _normalize(ct)[_grid(plan.groups), ROW_THREADS](
        table, plan.rows, np.int64(plan.groups), cdt.type(norm), bool(use_max))
    return table


@cuda.jit
def _clip_rows(table, rows, lo, hi, total):
    d = table.shape[1]
    for i in range(cuda.grid(1), total, cuda.gridsize(1)):
        r = rows[i // d]
        v = table[r, i % d]
        m = lo if v < lo else v
        table[r, i % d] = hi if hi < m else m


def ensure_clipped_rows(table, plan, lo, hi):
    """Clip ``plan``'s distinct rows of ``table`` ([rows, D]) in place."""
    total = plan.groups * table.shape[1]
    if total == 0:
        return table
    from caffe2ops.kernels.cuda.elementwise import _scalar

    _clip_rows[blocks(total), THREADS](table, plan.rows, _scalar(table.dtype, lo),
                                       _scalar(table.dtype, hi), np.int64(total))
    return table


# -- Gather, SparseLengths* ----------------------------------------------------------------

@cuda.jit
def _gather_rows(data, idx, out, total):
    d = data.shape[1]
    for i in range(cuda.grid(1), total, cuda.gridsize(1)):
        out[i // d, i % d] = data[idx[i // d], i % d]


def gather_rows(data2d, idx, out2d):
    """``out2d[k] = data2d[idx[k]]`` (``idx``: checked, wrapped int64 device indices)."""
    total = out2d.shape[0] * out2d.shape[1]
    if total:
        _gather_rows[blocks(total), THREADS](data2d, idx, out2d, np.int64(total))
    return out2d


@cache
def _segments(ct):
    @cuda.jit
    def forward(data, idx, offsets, weights, weighted, mean, out):
        """Block per segment, thread per column; positions combined left to right."""
        d = data.shape[1]
        for s in range(cuda.blockIdx.x, out.shape[0], cuda.gridDim.x):
            lo = offsets[s]
            hi = offsets[s + 1]
            for j in range(cuda.threadIdx.x, d, cuda.blockDim.x):
                acc = ct(0)
                for p in range(lo, hi):
                    v = ct(data[idx[p], j])
                    if weighted:
                        # the reference's float32 fused multiply-add, emulated in float64
                        acc = ct(mul64(float64(ct(weights[p])), float64(v)) + float64(acc))
                    else:
                        acc = acc + v
                if mean and hi > lo:
                    acc = acc * (ct(1) / ct(hi - lo))
                out[s, j] = acc

    @cuda.jit
    def backward(dy, seg, offsets, weights, weighted, mean, out, total):
        d = dy.shape[1]
        for i in range(cuda.grid(1), total, cuda.gridsize(1)):
            p = i // d
            j = i % d
            s = seg[p]
            if weighted:
                out[p, j] = dy[s, j] * weights[p]
            elif mean:
                out[p, j] = ct(dy[s, j]) * (ct(1) / ct(offsets[s + 1] - offsets[s]))
            else:
                out[p, j] = dy[s, j]

    return forward, backward


def segment_reduce(data2d, idx, offsets, weights, mean: bool, out2d):
    """SparseLengths{Sum,WeightedSum,Mean}: ``out2d[s]`` combines rows ``idx[offsets[s]:
    offsets[s+1]]``; device arrays (``weights`` may be None)."""
    if out2d.shape[0] == 0:
        return out2d
    kernel = _segments(compute_type(data2d.dtype))[0]
    weighted = weights is not None
    kernel[_grid(out2d.shape[0]), ROW_THREADS](
        data2d, idx, offsets, weights if weighted else idx, weighted, bool(mean), out2d)
    return out2d


def segment_gradient(dy2d, seg, offsets, weights, mean: bool, out2d):
    total = out2d.shape[0] * out2d.shape[1]
    if total:
        kernel = _segments(compute_type(dy2d.dtype))[1]
        weighted = weights is not None
        kernel[blocks(total), THREADS](dy2d, seg, offsets, weights if weighted else seg,
                                       weighted, bool(mean), out2d, np.int64(total))
    return out2d


# -- ScatterWeightedSum --------------------------------------------------------------------

@cache
def _scatter(ct):
    mul = rounded_mul(ct)

    @cuda.jit
    def scale_rows(table, rows, starts, groups, w0):
        """Row ``rows[g]`` times ``w0``, once per occurrence, rounding each time."""
        w = ct(w0[0])
        for g in range(cuda.blockIdx.x, groups, cuda.gridDim.x):
            r = rows[g]
            count = starts[g + 1] - starts[g]
            for j in range(cuda.threadIdx.x, table.shape[1], cuda.blockDim.x):
                v = ct(table[r, j])
                for _ in range(count):
                    v = v * w
                table[r, j] = v

    @cuda.jit
    def add_rows(table, rows, starts, order, groups, values, wk):
        """``table[r] = table[r] + wk·values[k]`` for the occurrences k of r, in order."""
        w = ct(wk[0])
        for g in range(cuda.blockIdx.x, groups, cuda.gridDim.x):
            r = rows[g]
            for j in range(cuda.threadIdx.x, table.shape[1], cuda.blockDim.x):
                v = ct(table[r, j])
                for q in range(starts[g], starts[g + 1]):
                    v = v + mul(w, ct(values[order[q], j]))
                table[r, j] = v

    return scale_rows, add_rows


def scatter_weighted_sum(table, w0, plan, values: list, weights: list):
    """In place on ``table`` ([rows, D]): ``table[i] *= w0`` per occurrence, then per pair
    ``table[idx[k]] += wk·Xk[k]`` in order (``values``: [n, D] device arrays)."""
    if plan.groups == 0 or table.shape[1] == 0:
        return table
    scale_rows, add_rows = _scatter(compute_type(table.dtype))
    grid = _grid(plan.groups)
    scale_rows[grid, ROW_THREADS](table, plan.rows, plan.starts, np.int64(plan.groups), w0)
    for x, w in zip(values, weights, strict=True):
        add_rows[grid, ROW_THREADS](table, plan.rows, plan.starts, plan.order,
                                    np.int64(plan.groups), x, w)
    return table
