"""Numba kernels of the clipping toolkit (imported lazily: ``import caffe2ops`` never loads numba).

The multi-array kernels take a *pointer table* instead of a list of arrays: ``ptrs[i]`` is the
address of the first element of contiguous array ``i`` and ``sizes[i]`` its element count; a small
``tmpl`` array only carries the element type (and, for :func:`multi_maxbits`, the mask). Building
the table costs one jitted call per array (:func:`data_ptr`, about 0.2 µs) where a
``numba.typed.List`` costs about 1.6 µs per array and a reflected list 8 µs, so 200 arrays cost
~40 µs of set-up and the whole collection is one parallel region.

The flattened element range of all arrays is cut into ``nparts`` equal pieces (one per thread), so
a few large arrays and many small ones balance alike. Sums accumulate in float64 with ``fastmath``
reassociation only, so the loops vectorise while NaN and infinity keep their IEEE meaning. Every
inner loop runs over a view starting at 0: a loop index starting at a runtime value might be
negative as far as LLVM knows, and the wrap-around check Numba then emits blocks vectorisation.
In-place loops take one array argument: with two, LLVM's runtime alias check sees the overlap and
falls back to its scalar loop (1.8x slower).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic

_FM = {"reassoc", "contract"}

ORD_1 = 1
ORD_2 = 2


@intrinsic
def _as_ptr(typingctx, addr, tmpl):
    """Reinterpret integer ``addr`` as a pointer to ``tmpl``'s element type."""
    sig = types.CPointer(tmpl.dtype)(types.intp, tmpl)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

    return sig, codegen


@njit(cache=True, nogil=True)
def data_ptr(a):
    """Address of ``a``'s first element (``a`` must stay alive while the address is used)."""
    return a.ctypes.data


@njit(cache=True, nogil=True)
def _offsets(sizes):
    n = sizes.size
    offs = np.empty(n + 1, np.int64)
    offs[0] = 0
    for i in range(n):
        offs[i + 1] = offs[i] + sizes[i]
    return offs


# ----------------------------------------------------------------------------------- reductions


@njit(cache=True, nogil=True, fastmath=_FM)
def _sumsq(x):
    s = 0.0
    for j in range(x.size):
        v = np.float64(x[j])
        s += v * v
    return s


@njit(cache=True, nogil=True, fastmath=_FM)
def _sumabs(x):
    s = 0.0
    for j in range(x.size):
        s += abs(np.float64(x[j]))
    return s


@njit(cache=True, nogil=True)
def _maxbits(x, mask):
    # max|x| on the unsigned-integer view of the floats: without the sign bit, bit patterns order
    # like magnitudes and every NaN sorts above infinity, so an integer max (which vectorises,
    # unlike a NaN-aware float max) is NaN-sticky. The caller turns the bits back into a float.
    m = mask - mask
    for j in range(x.size):
        v = x[j] & mask
        m = v if v > m else m
    return m


@njit(cache=True, nogil=True, parallel=True)
def multi_reduce(ptrs, sizes, tmpl, code, nparts):
    """Per-array ``Σx²`` (``code == 2``) or ``Σ|x|`` (``code == 1``) in float64, many arrays."""
    n = ptrs.size
    offs = _offsets(sizes)
    total = offs[n]
    partial = np.zeros((nparts, n), np.float64)
    for p in prange(nparts):
        lo = total * p // nparts
        hi = total * (p + 1) // nparts
        if lo < hi:
            i = np.searchsorted(offs, lo, side="right") - 1
            while lo < hi:
                end = min(offs[i + 1], hi)
                if end > lo:
                    x = numba.carray(_as_ptr(ptrs[i], tmpl), sizes[i])
                    xs = x[lo - offs[i] : end - offs[i]]
                    partial[p, i] = _sumsq(xs) if code == ORD_2 else _sumabs(xs)
                lo = end
                i += 1
    out = np.zeros(n, np.float64)
    for i in range(n):
        for p in range(nparts):
            out[i] += partial[p, i]
    return out


@njit(cache=True, nogil=True, parallel=True)
def multi_maxbits(ptrs, sizes, tmpl, nparts):
    """Per-array max of ``bits & tmpl[0]`` over unsigned views (``max|x|`` as bit patterns)."""
    n = ptrs.size
    offs = _offsets(sizes)
    total = offs[n]
    mask = tmpl[0]
    partial = np.zeros((nparts, n), tmpl.dtype)
    for p in prange(nparts):
        lo = total * p // nparts
        hi = total * (p + 1) // nparts
        if lo < hi:
            i = np.searchsorted(offs, lo, side="right") - 1
            while lo < hi:
                end = min(offs[i + 1], hi)
                if end > lo:
                    x = numba.carray(_as_ptr(ptrs[i], tmpl), sizes[i])
                    partial[p, i] = _maxbits(x[lo - offs[i] : end - offs[i]], mask)
                lo = end
                i += 1
    out = np.zeros(n, tmpl.dtype)
    for i in range(n):
        for p in range(nparts):
            v = partial[p, i]
            out[i] = v if v > out[i] else out[i]
    return out


@njit(cache=True, nogil=True)
def rescan(x, code):
    """Exact slow path for one flat array whose fast reduction overflowed or underflowed.

    Returns ``(has_nonfinite, norm)``; the norm is computed on ``x / max|x|`` so it neither
    overflows nor loses subnormal squares (as LAPACK's ``nrm2`` does).
    """
    m = 0.0
    for j in range(x.size):
        v = abs(np.float64(x[j]))
        if not (v <= 1.7976931348623157e308):  # inf or NaN
            return True, np.inf if v == v else np.nan
        if v > m:
            m = v
    if m == 0.0:
        return False, 0.0
    s = 0.0
    if code == ORD_1:
        for j in range(x.size):
            s += abs(np.float64(x[j])) / m
        return False, s * m
    for j in range(x.size):
        v = np.float64(x[j]) / m
        s += v * v
    return False, np.sqrt(s) * m


# -------------------------------------------------------------------------------------- scaling


@njit(cache=True, nogil=True)
def _scale_inplace(x, f):
    for j in range(x.size):
        x[j] = x[j] * f


@njit(cache=True, nogil=True)
def _scale_copy(x, y, f):
    if f == 1:
        for j in range(x.size):
            y[j] = x[j]
    else:
        for j in range(x.size):
            y[j] = x[j] * f


@njit(cache=True, nogil=True, parallel=True)
def multi_scale(src, dst, sizes, factors, tmpl, nparts):
    """``dst[i] = src[i] * factors[i]`` for every array ``i`` (``factors`` in the arrays' dtype).

    In place (``src[i] == dst[i]``) an array with factor 1 is skipped, not even written, so it
    stays bit-identical; out of place it is copied.
    """
    n = src.size
    work = np.empty(n, np.int64)
    for i in range(n):
        work[i] = 0 if (factors[i] == 1 and src[i] == dst[i]) else sizes[i]
    offs = _offsets(work)
    total = offs[n]
    for p in prange(nparts):
        lo = total * p // nparts
        hi = total * (p + 1) // nparts
        if lo < hi:
            i = np.searchsorted(offs, lo, side="right") - 1
            while lo < hi:
                end = min(offs[i + 1], hi)
                if end > lo:
                    x = numba.carray(_as_ptr(src[i], tmpl), sizes[i])
                    a = lo - offs[i]
                    b = end - offs[i]
                    if src[i] == dst[i]:
                        _scale_inplace(x[a:b], factors[i])
                    else:
                        y = numba.carray(_as_ptr(dst[i], tmpl), sizes[i])
                        _scale_copy(x[a:b], y[a:b], factors[i])
                lo = end
                i += 1


# ------------------------------------------------------------------------------- value clipping


@njit(cache=True, nogil=True, fastmath=_FM)
def _clamp_copy(x, y, lo_t, hi_t):
    c = 0
    bad = 0
    s = 0.0
    for j in range(x.size):
        v = x[j]
        w = np.float64(v)
        s += w * w
        bad += 0 if (w - w) == 0.0 else 1
        m = lo_t if v < lo_t else v
        m = hi_t if hi_t < m else m
        c += 1 if m != v else 0
        y[j] = m
    return c, bad, s


@njit(cache=True, nogil=True, fastmath=_FM)
def _clamp_inplace(x, lo_t, hi_t):
    c = 0
    bad = 0
    s = 0.0
    for j in range(x.size):
        v = x[j]
        w = np.float64(v)
        s += w * w
        bad += 0 if (w - w) == 0.0 else 1
        m = lo_t if v < lo_t else v
        m = hi_t if hi_t < m else m
        c += 1 if m != v else 0
        x[j] = m
    return c, bad, s


@njit(cache=True, nogil=True, parallel=True)
def multi_clip_value(src, dst, sizes, bounds, nparts):
    """Clamp many arrays to ``[bounds[0], bounds[1]]`` as ``min(max(x, lo), hi)``; NaN stays NaN.

    ``bounds`` (two elements) also carries the element type. Returns per-array
    ``(clamped_count, nonfinite_count, sumsq)``; ``sumsq`` is the pre-clip ``Σx²`` in float64.
    """
    n = src.size
    offs = _offsets(sizes)
    total = offs[n]
    counts = np.zeros((nparts, n), np.int64)
    bad = np.zeros((nparts, n), np.int64)
    sums = np.zeros((nparts, n), np.float64)
    lo_t = bounds[0]
    hi_t = bounds[1]
    for p in prange(nparts):
        lo = total * p // nparts
        hi = total * (p + 1) // nparts
        if lo < hi:
            i = np.searchsorted(offs, lo, side="right") - 1
            while lo < hi:
                end = min(offs[i + 1], hi)
                if end > lo:
                    x = numba.carray(_as_ptr(src[i], bounds), sizes[i])
                    a = lo - offs[i]
                    b = end - offs[i]
                    if src[i] == dst[i]:
                        c, bd, s = _clamp_inplace(x[a:b], lo_t, hi_t)
                    else:
                        y = numba.carray(_as_ptr(dst[i], bounds), sizes[i])
                        c, bd, s = _clamp_copy(x[a:b], y[a:b], lo_t, hi_t)
                    counts[p, i] = c
                    bad[p, i] = bd
                    sums[p, i] = s
                lo = end
                i += 1
    return counts.sum(axis=0), bad.sum(axis=0), sums.sum(axis=0)


# ------------------------------------------------------------------------------------- helpers


def pointer_table(arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Addresses and element counts of contiguous arrays, as int64 vectors."""
    ptrs = np.fromiter((data_ptr(a) for a in arrays), np.int64, len(arrays))
    sizes = np.fromiter((a.size for a in arrays), np.int64, len(arrays))
    return ptrs, sizes


def num_parts(total: int) -> int:
    """Threads to use for ``total`` elements: 1 below 2**17 (a parallel region costs ~5 µs)."""
    if total < (1 << 17):
        return 1
    return max(1, min(numba.get_num_threads(), total >> 16))


_UINT = {4: (np.uint32, 0x7FFFFFFF), 8: (np.uint64, 0x7FFFFFFFFFFFFFFF)}


def maxabs(arrays: list[np.ndarray], ptrs: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """``max|x|`` of each float32/float64 array (one dtype per call), float64, NaN-sticky."""
    dt = arrays[0].dtype
    ut, mask = _UINT[dt.itemsize]
    bits = multi_maxbits(ptrs, sizes, np.array([mask], ut), num_parts(int(sizes.sum())))
    return bits.view(dt).astype(np.float64)
