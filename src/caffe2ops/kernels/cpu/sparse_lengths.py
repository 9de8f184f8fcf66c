"""SparseLengthsSum / WeightedSum / Mean and their gradients on the CPU.

Preconditions (the operators check them; the kernels do not): float arrays C-contiguous, 2-D
``(rows, D)``, one dtype (float32 or float64); ``idx`` int64, in range, a private copy;
``offsets`` int64 prefix sums of the (non-negative) lengths, ``offsets[-1] == idx.size``.
Every output row (a segment) is computed by one thread, in index order, with the same
instructions whatever the thread count; the parallel loops split segments into contiguous chunks.

>>> import numpy as np
>>> from caffe2ops.kernels.cpu import sparse_lengths
>>> data = np.arange(6, dtype=np.float32).reshape(3, 2)
>>> offsets = np.array([0, 2, 3]); idx = np.array([0, 2, 1])
>>> sparse_lengths.sparse_lengths_sum(data, idx, offsets, False, np.empty((2, 2), np.float32))
array([[4., 6.],
       [2., 3.]], dtype=float32)
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from caffe2ops.kernels.cpu._stream import PREFETCH, cast_like, fma, launch, prefetch_row

#: Elements (rows x D) from which a call uses several threads.
PAR_MIN_SPARSE = 1 << 14


def sparse_lengths_sum(data: np.ndarray, idx: np.ndarray, offsets: np.ndarray, mean: bool,
                       out: np.ndarray) -> np.ndarray:
    """``out[s] = data[idx[a]] + ... + data[idx[e-1]]`` for segment ``s = [a, e)``, left to
    right from +0; with ``mean`` then ``*= 1/len`` (the reciprocal rounded to the dtype)."""
    launch(None, sparse_lengths_sum_p, (data, idx, offsets, out, bool(mean), data.dtype.type(1)),
           idx.size * out.shape[1], minimum=PAR_MIN_SPARSE, chunks_per_thread=1)
    return out


def sparse_lengths_weighted_sum(data: np.ndarray, weights: np.ndarray, idx: np.ndarray,
                                offsets: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``acc = fma(w[k], data[idx[k]], acc)`` left to right from +0 for float32 (Caffe2's AVX2
    FMA kernels); ``acc = acc + w*x`` for float64."""
    fused = data.dtype == np.float32
    launch(None, sparse_lengths_weighted_sum_p, (data, weights, idx, offsets, out, fused),
           idx.size * out.shape[1], minimum=PAR_MIN_SPARSE, chunks_per_thread=1)
    return out


def sparse_lengths_gradient(dy: np.ndarray, offsets: np.ndarray, weights: np.ndarray | None,
                            mean: bool, out: np.ndarray) -> np.ndarray:
    """Row ``k`` of segment ``s``: ``dy[s]``; with ``mean`` ``dy[s] * (1/len)``; with
    ``weights`` ``dy[s] * weights[k]``."""
    mode = 2 if weights is not None else (1 if mean else 0)
    w = weights if weights is not None else np.zeros(1, dy.dtype)
    launch(None, sparse_lengths_gradient_p, (dy, offsets, w, mode, dy.dtype.type(1), out),
           out.size, minimum=PAR_MIN_SPARSE, chunks_per_thread=1)
    return out


@njit(cache=True)
def _segment_sum(data, idx, a, e, o, last):
    d = o.size
    for j in range(d):
        o[j] = 0
    for k in range(a, e):
        if k + PREFETCH < last:
            prefetch_row(data, idx[k + PREFETCH])
        row = data[idx[k]]
        for j in range(d):
            o[j] += row[j]


@njit(cache=True)
def _segment_weighted_sum(data, weights, idx, a, e, o, fused, last):
    d = o.size
    for j in range(d):
        o[j] = 0
    for k in range(a, e):
        if k + PREFETCH < last:
            prefetch_row(data, idx[k + PREFETCH])
        row = data[idx[k]]
        w = weights[k]
        if fused:
            for j in range(d):
                o[j] = fma(w, row[j], o[j])
        else:
            for j in range(d):
                o[j] = o[j] + w * row[j]


@njit(parallel=True, cache=True)
def sparse_lengths_sum_p(data, idx, offsets, out, mean, one, chunks):
    """out[s] = sum of data[idx[k]] for k in segment s (times ``one/len`` for mean), in order;
    ``one`` is 1 in the dtype."""
    n = offsets.size - 1
    ch = (n + chunks - 1) // chunks
    for c in prange(chunks):
        last = offsets[min(n, c * ch + ch)]
        for s in range(min(n, c * ch), min(n, c * ch + ch)):
            a = offsets[s]
            e = offsets[s + 1]
            o = out[s]
            _segment_sum(data, idx, a, e, o, last)
            if mean and e > a:
                inv = one / cast_like(e - a, one)
                for j in range(o.size):
                    o[j] *= inv
    return out


@njit(parallel=True, cache=True)
def sparse_lengths_weighted_sum_p(data, weights, idx, offsets, out, fused, chunks):
    """out[s] = sum of weights[k]*data[idx[k]] (fused multiply-add when ``fused``), in order."""
    n = offsets.size - 1
    ch = (n + chunks - 1) // chunks
    for c in prange(chunks):
        last = offsets[min(n, c * ch + ch)]
        for s in range(min(n, c * ch), min(n, c * ch + ch)):
            _segment_weighted_sum(data, weights, idx, offsets[s], offsets[s + 1], out[s], fused,
                                  last)
    return out


@njit(parallel=True, cache=True)
def sparse_lengths_gradient_p(dy, offsets, weights, mode, one, out, chunks):
    """Rows of segment s: dy[s] (mode 0), dy[s]*(1/len) (mode 1), dy[s]*weights[k] (mode 2)."""
    n = offsets.size - 1
    d = dy.shape[1]
    ch = (n + chunks - 1) // chunks
    for c in prange(chunks):
        for s in range(min(n, c * ch), min(n, c * ch + ch)):
            a = offsets[s]
            e = offsets[s + 1]
            g = dy[s]
            if mode == 0:
                for k in range(a, e):
                    o = out[k]
                    for j in range(d):
                        o[j] = g[j]
            elif mode == 1:
                if e > a:
                    inv = one / cast_like(e - a, one)
                    for k in range(a, e):
                        o = out[k]
                        for j in range(d):
                            o[j] = g[j] * inv
            else:
                for k in range(a, e):
                    o = out[k]
                    w = weights[k]
                    for j in range(d):
                        o[j] = g[j] * w
    return out
