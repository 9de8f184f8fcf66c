"""Numba kernels of the clipping toolkit (imported lazily: ``import caffe2ops`` never loads numba).

The multi-array kernels take a *pointer table* instead of a list of arrays: ``ptrs[i]`` is the
address of the first element of contiguous array ``i`` and ``sizes[i]`` its element count; a small
``tmpl`` array only carries the element type (and, for :func:`maxbits_part`, the mask). Building
the table costs one jitted call per array (:func:`data_ptr`, about 0.2 µs) where a
``numba.typed.List`` costs about 1.6 µs per array and a reflected list 8 µs, so 200 arrays cost
~40 µs of set-up.

The flattened element range of all arrays is cut into ``nparts`` equal pieces, so a few large
arrays and many small ones balance alike. Each piece is one call of a serial ``nogil`` kernel; the
pieces run on a small pool of Python threads (:func:`run_parts`), as many as
``caffe2ops.kernels.get_num_threads()``. Serial kernels compile about 2.5x faster than
``parallel=True`` ones and load from the on-disk cache in milliseconds instead of ~0.5 s, for a
dispatch cost of about 20 µs per extra thread. Sums accumulate in float64 with ``fastmath``
reassociation only, so the loops vectorise while NaN and infinity keep their IEEE meaning. Every
inner loop runs over a view starting at 0: a loop index starting at a runtime value might be
negative as far as LLVM knows, and the wrap-around check Numba then emits blocks vectorisation.
In-place loops take one array argument: with two, LLVM's runtime alias check sees the overlap and
falls back to its scalar loop (1.8x slower).
"""

from __future__ import annotations

import os
import threading

from caffe2ops import kernels as _kernels
from caffe2ops.kernels import get_max_threads, get_num_threads

with _kernels._LOAD_LOCK:  # a fork waits until numba is imported (a child could not finish it)
    import numba
    import numpy as np
    from numba import njit, types
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
    """Address of ``a``'s first element, or -1 when ``a`` is not contiguous (C or Fortran).

    ``a`` must stay alive while the address is used.
    """
    if a.flags.c_contiguous or a.flags.f_contiguous:
        return a.ctypes.data
    return -1


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


@njit(cache=True, nogil=True)
def reduce_part(ptrs, sizes, offs, tmpl, code, lo, hi, out):
    """Elements ``[lo, hi)`` of the concatenation: per-array ``Σx²`` (code 2) or ``Σ|x|`` (code 1)
    in float64, written into ``out`` (one slot per array, untouched arrays keep their value)."""
    i = np.searchsorted(offs, lo, side="right") - 1
    while lo < hi:
        end = min(offs[i + 1], hi)
        if end > lo:
            x = numba.carray(_as_ptr(ptrs[i], tmpl), sizes[i])
            xs = x[lo - offs[i] : end - offs[i]]
            out[i] = _sumsq(xs) if code == ORD_2 else _sumabs(xs)
        lo = end
        i += 1


@njit(cache=True, nogil=True)
def maxbits_part(ptrs, sizes, offs, tmpl, lo, hi, out):
    """Elements ``[lo, hi)``: per-array max of ``bits & tmpl[0]`` over unsigned views."""
    mask = tmpl[0]
    i = np.searchsorted(offs, lo, side="right") - 1
    while lo < hi:
        end = min(offs[i + 1], hi)
        if end > lo:
            x = numba.carray(_as_ptr(ptrs[i], tmpl), sizes[i])
            out[i] = _maxbits(x[lo - offs[i] : end - offs[i]], mask)
        lo = end
        i += 1


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
            x = numba.carray(_as_ptr(src[i], tmpl), sizes[i])
            a = start - offs[i]
            b = hi - offs[i]
            if src[i] == dst[i]:
                _scale_inplace(x[a:b], factors[i])
            else:
                y = numba.carray(_as_ptr(dst[i], tmpl), sizes[i])
                _scale_copy(x[a:b], y[a:b], factors[i])
        hi = start
        i -= 1


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
        c += 1 if (m < v or m > v) else 0  # NaN stays NaN and is not counted
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
            x = numba.carray(_as_ptr(src[i], bounds), sizes[i])
            a = lo - offs[i]
            b = end - offs[i]
            if src[i] == dst[i]:
                c, bd, sq = _clamp_inplace(x[a:b], lo_t, hi_t)
            else:
                y = numba.carray(_as_ptr(dst[i], bounds), sizes[i])
                c, bd, sq = _clamp_copy(x[a:b], y[a:b], lo_t, hi_t)
            counts[i] += c
            bad[i] += bd
            sums[i] += sq
        lo = end
        i += 1


# ------------------------------------------------------------------------------------- helpers


def pointer_table(arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Addresses (-1 for a non-contiguous array) and element counts, as int64 vectors."""
    ptrs = np.fromiter((data_ptr(a) for a in arrays), np.int64, len(arrays))
    sizes = np.fromiter((a.size for a in arrays), np.int64, len(arrays))
    return ptrs, sizes


def num_parts(total: int) -> int:
    """Pieces for ``total`` elements: 1 below 2**17 (a thread hand-off costs ~20 µs), else up to
    ``caffe2ops.set_num_threads``'s count of pieces of at least 2**16 elements."""
    if total < (1 << 17):
        return 1
    return max(1, min(get_num_threads(), total >> 16))


_POOL: list = []
_POOL_LOCK = threading.Lock()


def _pool():
    if not _POOL:
        with _POOL_LOCK:
            if not _POOL:
                from concurrent.futures import ThreadPoolExecutor

                workers = max(1, get_max_threads() - 1)
                _POOL.append(ThreadPoolExecutor(workers, thread_name_prefix="caffe2ops-clip"))
    return _POOL[0]


def _forget_pool_in_child() -> None:
    """The parent's worker threads do not exist in a forked child: start a new pool there."""
    global _POOL_LOCK
    _POOL.clear()
    _POOL_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_pool_in_child)


def run_parts(kernel, total: int, make_args) -> int:
    """Run ``kernel(*make_args(p), lo, hi, *outs)`` over ``num_parts(total)`` equal pieces.

    ``make_args(p)`` returns ``(args_before_range, args_after_range)`` for piece ``p`` (each piece
    gets its own output rows). Piece 0 runs on the calling thread. Returns the piece count.
    """
    nparts = num_parts(total)
    if nparts == 1:
        pre, post = make_args(0)
        kernel(*pre, 0, total, *post)
        return 1
    futures = []
    pool = _pool()
    for p in range(1, nparts):
        pre, post = make_args(p)
        lo, hi = total * p // nparts, total * (p + 1) // nparts
        futures.append(pool.submit(kernel, *pre, lo, hi, *post))
    pre, post = make_args(0)
    kernel(*pre, 0, total // nparts, *post)
    for f in futures:
        f.result()
    return nparts


def multi_reduce(ptrs: np.ndarray, sizes: np.ndarray, dt: np.dtype, code: int) -> np.ndarray:
    """Per-array ``Σx²`` (code 2) or ``Σ|x|`` (code 1), float64, of contiguous arrays of ``dt``."""
    offs = np.zeros(sizes.size + 1, np.int64)
    np.cumsum(sizes, out=offs[1:])
    total = int(offs[-1])
    rows = np.zeros((num_parts(total), sizes.size), np.float64)
    tmpl = np.zeros(1, dt)
    n = run_parts(reduce_part, total, lambda p: ((ptrs, sizes, offs, tmpl, code), (rows[p],)))
    return rows[0] if n == 1 else rows.sum(axis=0)


def multi_scale(
    src: np.ndarray, dst: np.ndarray, sizes: np.ndarray, factors: np.ndarray, dt: np.dtype
) -> None:
    """``dst[i] = src[i] * factors[i]`` (``factors`` already in ``dt``); in place (``src[i] ==
    dst[i]``) a factor-1 array is skipped, not even written, so it stays bit-identical."""
    work = np.where((factors == 1) & (src == dst), 0, sizes)
    offs = np.zeros(sizes.size + 1, np.int64)
    np.cumsum(work, out=offs[1:])
    total = int(offs[-1])
    if total:
        tmpl = np.zeros(1, dt)
        run_parts(scale_part, total, lambda p: ((src, dst, sizes, offs, factors, tmpl), ()))


def multi_clip_value(
    src: np.ndarray, dst: np.ndarray, sizes: np.ndarray, bounds: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clamp many arrays (``bounds`` = [lo, hi] in their dtype); per-array clamped count,
    non-finite count and pre-clip ``Σx²``."""
    offs = np.zeros(sizes.size + 1, np.int64)
    np.cumsum(sizes, out=offs[1:])
    total = int(offs[-1])
    nparts = num_parts(total)
    counts = np.zeros((nparts, sizes.size), np.int64)
    bad = np.zeros((nparts, sizes.size), np.int64)
    sums = np.zeros((nparts, sizes.size), np.float64)
    run_parts(
        clip_part,
        total,
        lambda p: ((src, dst, sizes, offs, bounds), (counts[p], bad[p], sums[p])),
    )
    return counts.sum(axis=0), bad.sum(axis=0), sums.sum(axis=0)


_UINT = {4: (np.uint32, 0x7FFFFFFF), 8: (np.uint64, 0x7FFFFFFFFFFFFFFF)}


def maxabs(dt: np.dtype, ptrs: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """``max|x|`` of each float32/float64 array of dtype ``dt``, as float64, NaN-sticky."""
    ut, mask = _UINT[dt.itemsize]
    offs = np.zeros(sizes.size + 1, np.int64)
    np.cumsum(sizes, out=offs[1:])
    total = int(offs[-1])
    rows = np.zeros((num_parts(total), sizes.size), ut)
    tmpl = np.array([mask], ut)
    run_parts(maxbits_part, total, lambda p: ((ptrs, sizes, offs, tmpl), (rows[p],)))
    return rows.max(axis=0).view(dt).astype(np.float64)
