"""Clip and ClipGradient on the CPU (numba; see :mod:`caffe2ops.kernels.cpu._stream`).

``clip_s`` / ``clip_gradient_s`` run serially over 1-D C-contiguous arrays; ``*_streamed`` run one
chunk with streaming stores; ``*_p`` run chunks in a ``prange``. Clip takes every integer dtype
too (integers never stream). The per-operator ``_streamed``/``_p`` pair is deliberate: numba
cannot cache a parallel wrapper that takes the serial kernel as an argument (a dispatcher or a
closure variable is part of the cache key: measured, every process recompiles), so each
operator keeps its own two small wrappers and the launch logic lives once, in ``_stream.launch``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from caffe2ops.kernels.cpu import CHUNKS_PER_THREAD
from caffe2ops.kernels.cpu._stream import (
    FLOAT_DTYPES,
    STREAM_BLOCK_BYTES,
    cast_like,
    chunk_length,
    flat,
    launch,
    scalar,
    store_fence,
    stream_copy,
    streaming_span,
)

INTEGER_DTYPES = frozenset(
    np.dtype(t)
    for t in (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64)
)
#: dtypes per entry point (every other entry point: :data:`FLOAT_DTYPES`).
DTYPES = {"clip": FLOAT_DTYPES | INTEGER_DTYPES}


def clip(x: np.ndarray, lo: object, hi: object, out: np.ndarray) -> np.ndarray:
    """``m = lo if x < lo else x; out = hi if hi < m else m`` (NaN stays NaN, lo > hi gives hi).
    Float and integer dtypes; ``out`` may be ``x``."""
    t = x.dtype.type
    xf, of = flat(x), flat(out)
    args = (xf, scalar(lo, t), scalar(hi, t), of)
    if x.dtype in FLOAT_DTYPES:
        launch(clip_s, clip_p, args, xf.size, stream_bytes=2 * of.nbytes)
    else:
        launch(clip_s, clip_plain_p, args, xf.size, chunks_per_thread=CHUNKS_PER_THREAD)
    return out


def clip_gradient(y: np.ndarray, dy: np.ndarray, lo: object, hi: object,
                  out: np.ndarray) -> np.ndarray:
    """``out = dy * (1 if lo < y < hi else 0)`` in the dtype (masked entries are ``dy*0``).
    ``out`` may be ``dy``."""
    t = y.dtype.type
    yf = flat(y)
    launch(clip_gradient_s, clip_gradient_p, (yf, flat(dy), scalar(lo, t), scalar(hi, t),
           flat(out)), yf.size, stream_bytes=3 * out.nbytes)
    return out


def warm_up_calls(a: np.ndarray, b: np.ndarray, o: np.ndarray) -> dict:
    """One small call per entry point (``a``, ``b``, ``o``: 1-D arrays of one dtype)."""
    one = a.dtype.type(1)
    return {"clip": lambda: clip(a, one, one, o),
            "clip_gradient": lambda: clip_gradient(a, b, -one, one, o)}


@njit(cache=True)
def clip_s(x, lo, hi, out):
    if x.ctypes.data == out.ctypes.data:
        for i in range(out.size):
            v = out[i]
            m = lo if v < lo else v
            out[i] = hi if hi < m else m
    else:
        for i in range(x.size):
            v = x[i]
            m = lo if v < lo else v
            out[i] = hi if hi < m else m
    return out


@njit(cache=True)
def clip_streamed(x, lo, hi, out, stream):
    if not stream:
        return clip_s(x, lo, hi, out)
    h, stop = streaming_span(out)
    blk = STREAM_BLOCK_BYTES // out.itemsize
    buf = np.empty(blk, out.dtype)
    clip_s(x[:h], lo, hi, out[:h])
    for b in range(h, stop, blk):
        m = min(blk, stop - b)
        clip_s(x[b:b + m], lo, hi, buf[:m])
        stream_copy(out[b:b + m], buf)
    clip_s(x[stop:], lo, hi, out[stop:])
    store_fence()
    return out


@njit(parallel=True, cache=True)
def clip_p(x, lo, hi, out, chunks, stream):
    n = x.size
    ch = chunk_length(n, chunks)
    if not stream:  # straight to the serial kernel: measured faster than through _nt
        for c in prange(chunks):
            s = min(n, c * ch)
            e = min(n, s + ch)
            clip_s(x[s:e], lo, hi, out[s:e])
        return out
    for c in prange(chunks):
        s = min(n, c * ch)
        e = min(n, s + ch)
        clip_streamed(x[s:e], lo, hi, out[s:e], stream)
    return out


@njit(parallel=True, cache=True)
def clip_plain_p(x, lo, hi, out, chunks):
    n = x.size
    ch = chunk_length(n, chunks)
    for c in prange(chunks):
        s = min(n, c * ch)
        e = min(n, s + ch)
        clip_s(x[s:e], lo, hi, out[s:e])
    return out


@njit(cache=True)
def clip_gradient_s(y, dy, lo, hi, out):
    one = cast_like(1, lo)
    zero = cast_like(0, lo)
    if dy.ctypes.data == out.ctypes.data:
        for i in range(out.size):
            v = y[i]
            out[i] = out[i] * (one if (lo < v) & (v < hi) else zero)
    else:
        for i in range(y.size):
            v = y[i]
            out[i] = dy[i] * (one if (lo < v) & (v < hi) else zero)
    return out


@njit(cache=True)
def clip_gradient_streamed(y, dy, lo, hi, out, stream):
    if not stream:
        return clip_gradient_s(y, dy, lo, hi, out)
    h, stop = streaming_span(out)
    blk = STREAM_BLOCK_BYTES // out.itemsize
    buf = np.empty(blk, out.dtype)
    clip_gradient_s(y[:h], dy[:h], lo, hi, out[:h])
    for b in range(h, stop, blk):
        m = min(blk, stop - b)
        clip_gradient_s(y[b:b + m], dy[b:b + m], lo, hi, buf[:m])
        stream_copy(out[b:b + m], buf)
    clip_gradient_s(y[stop:], dy[stop:], lo, hi, out[stop:])
    store_fence()
    return out


@njit(parallel=True, cache=True)
def clip_gradient_p(y, dy, lo, hi, out, chunks, stream):
    n = y.size
    ch = chunk_length(n, chunks)
    if not stream:  # straight to the serial kernel: measured faster than through _nt
        for c in prange(chunks):
            s = min(n, c * ch)
            e = min(n, s + ch)
            clip_gradient_s(y[s:e], dy[s:e], lo, hi, out[s:e])
        return out
    for c in prange(chunks):
        s = min(n, c * ch)
        e = min(n, s + ch)
        clip_gradient_streamed(y[s:e], dy[s:e], lo, hi, out[s:e], stream)
    return out
