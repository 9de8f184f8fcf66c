"""The clipping toolkit's write passes on many arrays at once: scaling by per-array factors
and clamping to a range (pointer tables and pieces as in :mod:`caffe2ops.kernels.cpu.norms`).

In-place loops take one array argument: with two, LLVM's runtime alias check sees the overlap
and falls back to its scalar loop (1.8x slower).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from caffe2ops.kernels.cpu.norms import (
    FASTMATH_REASSOC,
    as_pointer,
    num_parts,
    offsets,
    run_parts,
)


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


@njit(cache=True, nogil=True)
def scale_part(src, dst, sizes, offs, factors, tmpl, lo, hi):
    """Elements ``[lo, hi)`` of the *work* concatenation (``offs`` over the arrays to write):
    ``dst[i] = src[i] * factors[i]``; factor 1 copies out of place.

    The arrays are visited last to first: the norm pass that precedes this one read them first to
    last, so the tail of the range is still in cache (about 10% faster on 25 MB).
    """
    i = np.searchsorted(offs, hi, side="left") - 1
    while hi > lo:
        start = max(offs[i], lo)
        if hi > start:
            x = numba.carray(as_pointer(src[i], tmpl), sizes[i])
            a = start - offs[i]
            b = hi - offs[i]
            if src[i] == dst[i]:
                _scale_inplace(x[a:b], factors[i])
            else:
                y = numba.carray(as_pointer(dst[i], tmpl), sizes[i])
                _scale_copy(x[a:b], y[a:b], factors[i])
        hi = start
        i -= 1


@njit(cache=True, nogil=True, fastmath=FASTMATH_REASSOC)
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
        c += 1 if (m < v or m > v) else 0  # NaN stays NaN and is not counted
        y[j] = m
    return c, bad, s


@njit(cache=True, nogil=True, fastmath=FASTMATH_REASSOC)
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
        c += 1 if (m < v or m > v) else 0  # NaN stays NaN and is not counted
        x[j] = m
    return c, bad, s


@njit(cache=True, nogil=True)
def clip_part(src, dst, sizes, offs, bounds, lo, hi, counts, bad, sums):
    """Elements ``[lo, hi)``: clamp to ``[bounds[0], bounds[1]]`` as ``min(max(x, lo), hi)`` (NaN
    stays NaN); per array add the clamped count, the non-finite count and the pre-clip ``Σx²``."""
    lo_t = bounds[0]
    hi_t = bounds[1]
    i = np.searchsorted(offs, lo, side="right") - 1
    while lo < hi:
        end = min(offs[i + 1], hi)
        if end > lo:
            x = numba.carray(as_pointer(src[i], bounds), sizes[i])
            a = lo - offs[i]
            b = end - offs[i]
            if src[i] == dst[i]:
                c, bd, sq = _clamp_inplace(x[a:b], lo_t, hi_t)
            else:
                y = numba.carray(as_pointer(dst[i], bounds), sizes[i])
                c, bd, sq = _clamp_copy(x[a:b], y[a:b], lo_t, hi_t)
            counts[i] += c
            bad[i] += bd
            sums[i] += sq
        lo = end
        i += 1


@njit(parallel=True, cache=True)
def scale_parts(src, dst, sizes, offs, factors, tmpl, total, parts):
    for p in prange(parts):
        scale_part(src, dst, sizes, offs, factors, tmpl, total * p // parts,
                   total * (p + 1) // parts)


@njit(parallel=True, cache=True)
def clip_parts(src, dst, sizes, offs, bounds, total, counts, bad, sums):
    parts = counts.shape[0]
    for p in prange(parts):
        clip_part(src, dst, sizes, offs, bounds, total * p // parts, total * (p + 1) // parts,
                  counts[p], bad[p], sums[p])


def multi_scale(
    src: np.ndarray, dst: np.ndarray, sizes: np.ndarray, factors: np.ndarray, dt: np.dtype
) -> None:
    """``dst[i] = src[i] * factors[i]`` (``factors`` already in ``dt``); in place (``src[i] ==
    dst[i]``) a factor-1 array is skipped, not even written, so it stays bit-identical."""
    work = np.where((factors == 1) & (src == dst), 0, sizes)
    offs = offsets(work)
    total = int(offs[-1])
    if not total:
        return
    tmpl = np.zeros(1, dt)
    parts = num_parts(total)
    if parts == 1:
        scale_part(src, dst, sizes, offs, factors, tmpl, 0, total)
    else:
        run_parts(scale_parts, parts, (src, dst, sizes, offs, factors, tmpl, total, parts))


def multi_clip_value(
    src: np.ndarray, dst: np.ndarray, sizes: np.ndarray, bounds: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clamp many arrays (``bounds`` = [lo, hi] in their dtype); per-array clamped count,
    non-finite count and pre-clip ``Σx²``."""
    offs = offsets(sizes)
    total = int(offs[-1])
    parts = num_parts(total)
    counts = np.zeros((parts, sizes.size), np.int64)
    bad = np.zeros((parts, sizes.size), np.int64)
    sums = np.zeros((parts, sizes.size), np.float64)
    if parts == 1:
        clip_part(src, dst, sizes, offs, bounds, 0, total, counts[0], bad[0], sums[0])
    else:
        run_parts(clip_parts, parts, (src, dst, sizes, offs, bounds, total, counts, bad, sums))
    return counts.sum(axis=0), bad.sum(axis=0), sums.sum(axis=0)
