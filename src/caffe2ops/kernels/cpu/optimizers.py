"""WeightedSum, SparseAdagrad, RowWiseSparseAdagrad and SparseAdam on the CPU (in place).

Preconditions as in :mod:`caffe2ops.kernels.cpu.sparse_lengths`. Duplicate indices: a serial
pass links each occurrence to the next occurrence of the same row (``_chains``); the parallel
loop then walks each row's chain in index order, which gives the serial (Caffe2) result bit for
bit, whatever the thread count. The three chain walks repeat one loop shape on purpose: their
row updates take different state and scalars, so a shared walker would need one declared
first-class-function signature per optimizer (what :mod:`caffe2ops.kernels.cpu._stream` does for
the unary/binary element-wise kernels) and would save nothing.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from caffe2ops.kernels.cpu._stream import PREFETCH, cast_like, flat, launch, prefetch_row
from caffe2ops.kernels.cpu.sparse_lengths import PAR_MIN_SPARSE


def _run(parallel, args: tuple, work: int) -> None:
    launch(None, parallel, args, work, minimum=PAR_MIN_SPARSE, chunks_per_thread=1)


def weighted_sum(x0: np.ndarray, w0: object, x1: np.ndarray, w1: object,
                 out: np.ndarray) -> np.ndarray:
    """``out = w0*x0 + w1*x1`` element-wise, each product rounded to the dtype, then the sum
    (WeightedSum's first two pairs in one pass). ``out`` may be ``x0`` or ``x1``. One thread:
    a memory-bound pass, which a second thread of the 2-core EPYC VM does not speed up (Clip on
    1e7 float32, caches evicted: 3.4 ms on one thread, 3.2-3.6 ms on two)."""
    t = out.dtype.type
    weighted_sum_s(flat(x0), t(w0), flat(x1), t(w1), flat(out))
    return out


def weighted_sum_add(y: np.ndarray, x: np.ndarray, w: object) -> np.ndarray:
    """``y = y + w*x`` in place (WeightedSum's further pairs), ``w*x`` rounded first."""
    weighted_sum_add_s(flat(y), flat(x), y.dtype.type(w))
    return y


def warm_up_calls(a: np.ndarray, b: np.ndarray, o: np.ndarray) -> dict:
    """One small call per dense entry point (``a``, ``b``, ``o``: 1-D arrays of one dtype)."""
    one = a.dtype.type(1)
    return {"weighted_sum": lambda: weighted_sum(a, one, b, one, o),
            "weighted_sum_add": lambda: weighted_sum_add(o, a, one)}


@njit(cache=True, nogil=True)
def weighted_sum_s(x0, w0, x1, w1, out):
    # Aliased arrays take a loop over the distinct ones (LLVM's runtime alias check would send
    # the overlapping pair to its scalar loop).
    if out.ctypes.data == x0.ctypes.data:
        for i in range(out.size):
            out[i] = w0 * out[i] + w1 * x1[i]
    elif out.ctypes.data == x1.ctypes.data:
        for i in range(out.size):
            out[i] = w0 * x0[i] + w1 * out[i]
    else:
        for i in range(out.size):
            out[i] = w0 * x0[i] + w1 * x1[i]
    return out


@njit(cache=True, nogil=True)
def weighted_sum_add_s(y, x, w):
    for i in range(y.size):
        y[i] = y[i] + w * x[i]
    return y


def sparse_adagrad(param: np.ndarray, moment: np.ndarray, idx: np.ndarray, grad: np.ndarray,
                   lr: object, eps: object) -> np.ndarray:
    """In place, per occurrence in index order: ``h += g*g; w += (lr*g) / (sqrt(h) + eps)``."""
    t = param.dtype.type
    _run(sparse_adagrad_p, (param, moment, idx, grad, t(lr), t(eps)), grad.size)
    return param


def rowwise_sparse_adagrad(param: np.ndarray, moment: np.ndarray, idx: np.ndarray,
                           grad: np.ndarray, lr: object, eps: object) -> np.ndarray:
    """In place, per occurrence: ``h[r] += (sum g*g, in order) / D;
    w += g * (lr / (sqrt(h[r]) + eps))``. ``moment`` is 1-D (one value per row)."""
    t = param.dtype.type
    _run(rowwise_sparse_adagrad_p, (param, moment, idx, grad, t(lr), t(eps), t(0)), grad.size)
    return param


def sparse_adam(param: np.ndarray, m1: np.ndarray, m2: np.ndarray, idx: np.ndarray,
                grad: np.ndarray, lr_corr: object, beta1: object, beta2: object,
                eps: object) -> np.ndarray:
    """In place, per occurrence: ``m = m*b1 + g*(1-b1); v = v*b2 + g*g*(1-b2);
    w = w + lr_corr*m / (sqrt(v) + eps)`` (all in the dtype)."""
    t = param.dtype.type
    b1, b2 = t(beta1), t(beta2)
    _run(sparse_adam_p, (param, m1, m2, idx, grad, t(lr_corr), b1, b2, t(1) - b1, t(1) - b2,
                         t(eps)), grad.size)
    return param


@njit(cache=True)
def _chains(idx, rows):
    """``(heads, nxt)``: the first occurrence of every distinct row, in index order, and for
    each occurrence the next occurrence of the same row (-1 at the end)."""
    k = idx.size
    last = np.empty(rows, np.int64)
    for i in range(k):
        last[idx[i]] = -1
    nxt = np.empty(k, np.int64)
    heads = np.empty(k, np.int64)
    nh = 0
    for i in range(k):
        r = idx[i]
        p = last[r]
        if p < 0:
            heads[nh] = i
            nh += 1
        else:
            nxt[p] = i
        last[r] = i
        nxt[i] = -1
    return heads[:nh], nxt


@njit(cache=True)
def _adagrad_row(w, h, g, lr, eps):
    for j in range(w.size):
        gj = g[j]
        hj = h[j] + gj * gj
        h[j] = hj
        w[j] = w[j] + (lr * gj) / (np.sqrt(hj) + eps)


@njit(parallel=True, cache=True)
def sparse_adagrad_p(param, moment, idx, grad, lr, eps, chunks):
    """Per occurrence k (in order for each row r = idx[k]): ``h = h + g*g``;
    ``w = w + (lr*g) / (sqrt(h) + eps)``."""
    heads, nxt = _chains(idx, param.shape[0])
    n = heads.size
    ch = (n + chunks - 1) // chunks
    for c in prange(chunks):
        hi = min(n, c * ch + ch)
        for t in range(min(n, c * ch), hi):
            if t + PREFETCH < hi:
                prefetch_row(param, idx[heads[t + PREFETCH]])
                prefetch_row(moment, idx[heads[t + PREFETCH]])
            k = heads[t]
            r = idx[k]
            w = param[r]
            h = moment[r]
            while k >= 0:
                _adagrad_row(w, h, grad[k], lr, eps)
                k = nxt[k]
    return param


@njit(cache=True)
def _rowwise_row(w, g, h0, lr, eps, zero):
    d = w.size
    hs = zero
    for j in range(d):  # sequential, as Caffe2 (its loop is not vectorised)
        hs += g[j] * g[j]
    hi = h0 + hs / cast_like(d, hs)
    if d == 1:  # Caffe2's scalar path
        w[0] = w[0] + (lr * g[0]) / (np.sqrt(hi) + eps)
        return hi
    step = lr / (np.sqrt(hi) + eps)
    for j in range(d):
        w[j] = w[j] + g[j] * step
    return hi


@njit(parallel=True, cache=True)
def rowwise_sparse_adagrad_p(param, moment, idx, grad, lr, eps, zero, chunks):
    """Per occurrence: ``h[r] += mean(g*g)`` (float sum in order); ``w += g * (lr /
    (sqrt(h[r]) + eps))``."""
    heads, nxt = _chains(idx, param.shape[0])
    n = heads.size
    ch = (n + chunks - 1) // chunks
    for c in prange(chunks):
        hi = min(n, c * ch + ch)
        for t in range(min(n, c * ch), hi):
            if t + PREFETCH < hi:
                prefetch_row(param, idx[heads[t + PREFETCH]])
            k = heads[t]
            r = idx[k]
            w = param[r]
            while k >= 0:
                moment[r] = _rowwise_row(w, grad[k], moment[r], lr, eps, zero)
                k = nxt[k]
    return param


@njit(cache=True)
def _adam_row(w, m, v, g, lr_corr, b1, b2, c1, c2, eps):
    for j in range(w.size):
        gj = g[j]
        mj = m[j] * b1 + gj * c1
        vj = v[j] * b2 + gj * gj * c2
        m[j] = mj
        v[j] = vj
        w[j] = w[j] + lr_corr * mj / (np.sqrt(vj) + eps)


@njit(parallel=True, cache=True)
def sparse_adam_p(param, m1, m2, idx, grad, lr_corr, b1, b2, c1, c2, eps, chunks):
    """Caffe2's SparseAdam per occurrence, rows' occurrences in order."""
    heads, nxt = _chains(idx, param.shape[0])
    n = heads.size
    ch = (n + chunks - 1) // chunks
    for c in prange(chunks):
        hi = min(n, c * ch + ch)
        for t in range(min(n, c * ch), hi):
            if t + PREFETCH < hi:
                prefetch_row(param, idx[heads[t + PREFETCH]])
                prefetch_row(m1, idx[heads[t + PREFETCH]])
                prefetch_row(m2, idx[heads[t + PREFETCH]])
            k = heads[t]
            r = idx[k]
            while k >= 0:
                _adam_row(param[r], m1[r], m2[r], grad[k], lr_corr, b1, b2, c1, c2, eps)
                k = nxt[k]
    return param
