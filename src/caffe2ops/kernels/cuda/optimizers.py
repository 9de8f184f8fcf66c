"""Optimizer kernels: Adagrad, SparseAdagrad, RowWiseSparseAdagrad, Adam, in place.

The arithmetic is the reference's, operation by operation, in the parameter's dtype (float16
in float32); ``lr`` stays on the device (a 1-element array read by every thread). Sparse updates
follow a :class:`~caffe2ops.kernels.cuda.plan.RowPlan`: one block per distinct row, its
occurrences in index order, as the reference's sequential loop.
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
    flat,
    rounded_mul,
)

GRID_ROWS = 65535


@cache
def _kernels(ct):
    mul = rounded_mul(ct)

    @cuda.jit
    def adagrad(param, moment, grad, lr, eps, decay):
        rate = ct(lr[0])
        for i in range(cuda.grid(1), param.size, cuda.gridsize(1)):
            g = ct(grad[i])
            h = mul(decay, ct(moment[i])) + mul(g, g)
            moment[i] = h
            param[i] = ct(param[i]) + (rate * g) / (ct(math.sqrt(h)) + eps)

    @cuda.jit
    def adagrad_updates(param, moment, grad, lr, eps, decay, effective, update):
        rate = ct(lr[0])
        for i in range(cuda.grid(1), param.size, cuda.gridsize(1)):
            g = ct(grad[i])
            h = mul(decay, ct(moment[i])) + mul(g, g)
            moment[i] = h
            e = rate / (ct(math.sqrt(h)) + eps)
            u = mul(e, g)
            effective[i] = e
            update[i] = u
            param[i] = ct(param[i]) + u

    @cuda.jit
    def sparse_adagrad(table, hist, rows, starts, order, groups, g2d, lr, eps):
        rate = ct(lr[0])
        for grp in range(cuda.blockIdx.x, groups, cuda.gridDim.x):
            r = rows[grp]
            for j in range(cuda.threadIdx.x, table.shape[1], cuda.blockDim.x):
                p = ct(table[r, j])
                h = ct(hist[r, j])
                for q in range(starts[grp], starts[grp + 1]):
                    g = ct(g2d[order[q], j])
                    h = h + mul(g, g)
                    p = p + (rate * g) / (ct(math.sqrt(h)) + eps)
                hist[r, j] = h
                table[r, j] = p

    @cuda.jit
    def rowwise_sparse_adagrad(table, hist, rows, starts, order, groups, g2d, lr, eps):
        shared = cuda.shared.array(1, dtype=ct)
        rate = ct(lr[0])
        d = table.shape[1]
        t = cuda.threadIdx.x
        for grp in range(cuda.blockIdx.x, groups, cuda.gridDim.x):
            r = rows[grp]
            for q in range(starts[grp], starts[grp + 1]):
                k = order[q]
                if t == 0:  # Σ g·g in order, in the dtype (the reference's cumsum)
                    s = ct(0)
                    for j in range(d):
                        g = ct(g2d[k, j])
                        s = s + mul(g, g)
                    mean = s / ct(d) if d else s
                    h = ct(hist[r]) + mean
                    hist[r] = h
                    shared[0] = h
                cuda.syncthreads()
                root = ct(math.sqrt(shared[0])) + eps
                for j in range(t, d, cuda.blockDim.x):
                    g = ct(g2d[k, j])
                    if d == 1:
                        table[r, j] = ct(table[r, j]) + (rate * g) / root
                    else:
                        table[r, j] = ct(table[r, j]) + mul(g, rate / root)
                cuda.syncthreads()

    @cuda.jit
    def adam(param, m1, m2, grad, lr, corr, b1, b2, one_minus_b1, one_minus_b2, eps,
             effective, with_effective):
        rate = ct(lr[0])
        for i in range(cuda.grid(1), param.size, cuda.gridsize(1)):
            g = ct(grad[i])
            m = mul(ct(m1[i]), b1) + mul(g, one_minus_b1)
            v = mul(ct(m2[i]), b2) + mul(mul(g, g), one_minus_b2)
            m1[i] = m
            m2[i] = v
            if with_effective:
                e = corr * m / (ct(math.sqrt(v)) + eps)
                effective[i] = e
                param[i] = ct(param[i]) + mul(rate, e)
            else:
                param[i] = ct(param[i]) + (rate * corr) * m / (ct(math.sqrt(v)) + eps)

    return {"adagrad": adagrad, "adagrad_updates": adagrad_updates,
            "sparse_adagrad": sparse_adagrad, "rowwise_sparse_adagrad": rowwise_sparse_adagrad,
            "adam": adam}


def _c(dtype, value):
    return np.dtype(compute_type(dtype).name).type(value)


def adagrad(param, moment, grad, lr, eps, decay, effective=None, update=None):
    k = _kernels(compute_type(param.dtype))
    args = (flat(param), flat(moment), flat(grad), flat(lr), _c(param.dtype, eps),
            _c(param.dtype, decay))
    if effective is None:
        k["adagrad"][blocks(param.size), THREADS](*args)
    else:
        k["adagrad_updates"][blocks(param.size), THREADS](*args, flat(effective), flat(update))
    return param


def sparse_adagrad(table, hist, plan, g2d, lr, eps, rowwise: bool):
    """``table`` [rows, D]; ``hist`` [rows, D] (or [rows] if ``rowwise``); ``g2d`` [n, D]."""
    if plan.groups == 0:
        return table
    name = "rowwise_sparse_adagrad" if rowwise else "sparse_adagrad"
    kernel = _kernels(compute_type(table.dtype))[name]
    kernel[max(1, min(plan.groups, GRID_ROWS)), ROW_THREADS](
        table, hist, plan.rows, plan.starts, plan.order, np.int64(plan.groups), g2d, flat(lr),
        _c(table.dtype, eps))
    return table


def adam(param, m1, m2, grad, lr, corr, b1, b2, eps, effective=None):
    """``corr``, ``b1``, ``b2``, ``eps``: host scalars already rounded to the dtype."""
    dt = np.dtype(compute_type(param.dtype).name).type
    k = _kernels(compute_type(param.dtype))["adam"]
    c = param.dtype
    k[blocks(param.size), THREADS](
        flat(param), flat(m1), flat(m2), flat(grad), flat(lr), _c(c, corr), _c(c, b1),
        _c(c, b2), _c(c, dt(1) - dt(b1)), _c(c, dt(1) - dt(b2)), _c(c, eps),
        flat(effective) if effective is not None else flat(param), effective is not None)
    return param


@cache
def _sparse_adam(ct):
    mul = rounded_mul(ct)

    @cuda.jit
    def kernel(table, t1, t2, rows, starts, order, groups, g2d, lr, lr_corr, corr64, b1, b2,
               one_minus_b1, one_minus_b2, eps):
        """Adam per occurrence, in index order, one block per row; d == 1 is Caffe2's scalar
        path (the update in float64, rounded once), as the reference."""
        d = table.shape[1]
        for grp in range(cuda.blockIdx.x, groups, cuda.gridDim.x):
            r = rows[grp]
            for j in range(cuda.threadIdx.x, d, cuda.blockDim.x):
                p = ct(table[r, j])
                m = ct(t1[r, j])
                v = ct(t2[r, j])
                for q in range(starts[grp], starts[grp + 1]):
                    g = ct(g2d[order[q], j])
                    m = mul(m, b1) + mul(g, one_minus_b1)
                    v = mul(v, b2) + mul(mul(g, g), one_minus_b2)
                    root = ct(math.sqrt(v)) + eps
                    if d == 1:
                        p = ct(float64(p) + float64(lr[0]) * corr64 * float64(m) / float64(root))
                    else:
                        p = p + (lr_corr * m) / root
                t1[r, j] = m
                t2[r, j] = v
                table[r, j] = p

    return kernel


def sparse_adam(table, t1, t2, plan, g2d, lr, lr_corr, corr64, b1, b2, eps):
    """``lr_corr`` = fl(lr·fl(corr)) (host scalar); the other scalars rounded to the dtype."""
    if plan.groups == 0:
        return table
    c = table.dtype
    dt = np.dtype(compute_type(c).name).type
    _sparse_adam(compute_type(c))[max(1, min(plan.groups, GRID_ROWS)), ROW_THREADS](
        table, t1, t2, plan.rows, plan.starts, plan.order, np.int64(plan.groups), g2d, flat(lr),
        _c(c, lr_corr), np.float64(corr64), _c(c, b1), _c(c, b2), _c(c, dt(1) - dt(b1)),
        _c(c, dt(1) - dt(b2)), _c(c, eps))
    return table
