"""Numba kernels behind :mod:`caffe2ops.kernels.cpu_sparse` (imports numba; load it lazily).

Determinism: every output row (a segment of SparseLengths*, a parameter row of the sparse
optimizers) is computed by one thread, in index order, with the same instructions whatever the
thread count. The parallel loops split segments or distinct rows into ``nt`` contiguous chunks.

Duplicate indices in the sparse optimizers: a serial pass links each occurrence to the next
occurrence of the same row (``_chains``); the parallel loop then walks each row's chain in index
order, which gives the serial (Caffe2) result bit for bit.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from caffe2ops.kernels._nb import cast_like


@intrinsic
def fma(typingctx, a, b, c):
    """``a*b + c`` rounded once (LLVM ``llvm.fma``), for float32/float64 scalars."""
    if not (isinstance(a, types.Float) and a == b == c):
        return None
    sig = a(a, b, c)

    def codegen(context, builder, signature, args):
        ty = context.get_value_type(signature.return_type)
        fn = builder.module.declare_intrinsic("llvm.fma", [ty],
                                              fnty=ir.FunctionType(ty, [ty, ty, ty]))
        return builder.call(fn, args)

    return sig, codegen


# ---------------------------------------------------------------------------------------------
# SparseLengths* forward and gradients


@njit(cache=True)
def _segment_sum(data, idx, a, e, o):
    d = o.size
    for j in range(d):
        o[j] = 0
    for k in range(a, e):
        row = data[idx[k]]
        for j in range(d):
            o[j] += row[j]


@njit(cache=True)
def _segment_weighted_sum(data, weights, idx, a, e, o, fused):
    d = o.size
    for j in range(d):
        o[j] = 0
    for k in range(a, e):
        row = data[idx[k]]
        w = weights[k]
        if fused:
            for j in range(d):
                o[j] = fma(w, row[j], o[j])
        else:
            for j in range(d):
                o[j] = o[j] + w * row[j]


@njit(parallel=True, cache=True)
def sparse_lengths_sum_p(data, idx, offsets, out, mean, one, nt):
    """out[s] = sum of data[idx[k]] for k in segment s (times ``one/len`` for mean), in order;
    ``one`` is 1 in the dtype."""
    n = offsets.size - 1
    ch = (n + nt - 1) // nt
    for c in prange(nt):
        for s in range(min(n, c * ch), min(n, c * ch + ch)):
            a = offsets[s]
            e = offsets[s + 1]
            o = out[s]
            _segment_sum(data, idx, a, e, o)
            if mean and e > a:
                inv = one / cast_like(e - a, one)
                for j in range(o.size):
                    o[j] *= inv
    return out


@njit(parallel=True, cache=True)
def sparse_lengths_weighted_sum_p(data, weights, idx, offsets, out, fused, nt):
    """out[s] = sum of weights[k]*data[idx[k]] (fused multiply-add when ``fused``), in order."""
    n = offsets.size - 1
    ch = (n + nt - 1) // nt
    for c in prange(nt):
        for s in range(min(n, c * ch), min(n, c * ch + ch)):
            _segment_weighted_sum(data, weights, idx, offsets[s], offsets[s + 1], out[s], fused)
    return out


@njit(parallel=True, cache=True)
def sparse_lengths_gradient_p(dy, offsets, weights, mode, one, out, nt):
    """Rows of segment s: dy[s] (mode 0), dy[s]*(1/len) (mode 1), dy[s]*weights[k] (mode 2)."""
    n = offsets.size - 1
    d = dy.shape[1]
    ch = (n + nt - 1) // nt
    for c in prange(nt):
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


# ---------------------------------------------------------------------------------------------
# sparse optimizers


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
def sparse_adagrad_p(param, moment, idx, grad, lr, eps, nt):
    """Per occurrence k (in order for each row r = idx[k]): ``h = h + g*g``;
    ``w = w + (lr*g) / (sqrt(h) + eps)``."""
    heads, nxt = _chains(idx, param.shape[0])
    n = heads.size
    ch = (n + nt - 1) // nt
    for c in prange(nt):
        for t in range(min(n, c * ch), min(n, c * ch + ch)):
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
def rowwise_sparse_adagrad_p(param, moment, idx, grad, lr, eps, zero, nt):
    """Per occurrence: ``h[r] += mean(g*g)`` (float sum in order); ``w += g * (lr /
    (sqrt(h[r]) + eps))``."""
    heads, nxt = _chains(idx, param.shape[0])
    n = heads.size
    ch = (n + nt - 1) // nt
    for c in prange(nt):
        for t in range(min(n, c * ch), min(n, c * ch + ch)):
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
def sparse_adam_p(param, m1, m2, idx, grad, lr_corr, b1, b2, c1, c2, eps, nt):
    """Caffe2's SparseAdam per occurrence, rows' occurrences in order."""
    heads, nxt = _chains(idx, param.shape[0])
    n = heads.size
    ch = (n + nt - 1) // nt
    for c in prange(nt):
        for t in range(min(n, c * ch), min(n, c * ch + ch)):
            k = heads[t]
            r = idx[k]
            while k >= 0:
                _adam_row(param[r], m1[r], m2[r], grad[k], lr_corr, b1, b2, c1, c2, eps)
                k = nxt[k]
    return param
