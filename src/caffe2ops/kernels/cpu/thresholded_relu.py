"""ThresholdedRelu and its gradient on the CPU (layout as in :mod:`caffe2ops.kernels.cpu.clip`)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from caffe2ops.kernels.cpu._stream import (
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


def thresholded_relu(x: np.ndarray, alpha: object, out: np.ndarray) -> np.ndarray:
    """``out = x if x > alpha else +0`` (NaN gives +0). ``out`` may be ``x``."""
    xf, of = flat(x), flat(out)
    launch(thresholded_relu_s, thresholded_relu_p, (xf, scalar(alpha, x.dtype.type), of),
           xf.size, stream_bytes=2 * of.nbytes)
    return out


def thresholded_relu_gradient(y: np.ndarray, dy: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = dy if y > 0 else +0``. ``out`` may be ``dy``."""
    return thresholded_relu_gradient_from_x(y, dy, 0, out)


def thresholded_relu_gradient_from_x(x: np.ndarray, dy: np.ndarray, alpha: object,
                                     out: np.ndarray) -> np.ndarray:
    """``out = dy if x > alpha else +0`` (correct for every alpha). ``out`` may be ``dy``."""
    xf = flat(x)
    launch(thresholded_relu_gradient_s, thresholded_relu_gradient_p,
           (xf, flat(dy), scalar(alpha, x.dtype.type), flat(out)), xf.size,
           stream_bytes=3 * out.nbytes)
    return out


def warm_up_calls(a: np.ndarray, b: np.ndarray, o: np.ndarray) -> dict:
    """One small call per entry point (``a``, ``b``, ``o``: 1-D arrays of one dtype)."""
    one = a.dtype.type(1)
    return {"thresholded_relu": lambda: thresholded_relu(a, one, o),
            "thresholded_relu_gradient": lambda: thresholded_relu_gradient(a, b, o)}


@njit(cache=True)
def thresholded_relu_s(x, alpha, out):
    zero = cast_like(0, alpha)
    if x.ctypes.data == out.ctypes.data:
        for i in range(out.size):
            v = out[i]
            out[i] = v if v > alpha else zero
    else:
        for i in range(x.size):
            v = x[i]
            out[i] = v if v > alpha else zero
    return out


@njit(cache=True)
def thresholded_relu_streamed(x, alpha, out, stream):
    if not stream:
        return thresholded_relu_s(x, alpha, out)
    h, stop = streaming_span(out)
    blk = STREAM_BLOCK_BYTES // out.itemsize
    buf = np.empty(blk, out.dtype)
    thresholded_relu_s(x[:h], alpha, out[:h])
    for b in range(h, stop, blk):
        m = min(blk, stop - b)
        thresholded_relu_s(x[b:b + m], alpha, buf[:m])
        stream_copy(out[b:b + m], buf)
    thresholded_relu_s(x[stop:], alpha, out[stop:])
    store_fence()
    return out


@njit(parallel=True, cache=True)
def thresholded_relu_p(x, alpha, out, chunks, stream):
    n = x.size
    ch = chunk_length(n, chunks)
    if not stream:  # straight to the serial kernel: measured faster than through _nt
        for c in prange(chunks):
            s = min(n, c * ch)
            e = min(n, s + ch)
            thresholded_relu_s(x[s:e], alpha, out[s:e])
        return out
    for c in prange(chunks):
        s = min(n, c * ch)
        e = min(n, s + ch)
        thresholded_relu_streamed(x[s:e], alpha, out[s:e], stream)
    return out


@njit(cache=True)
def thresholded_relu_gradient_s(y, dy, alpha, out):
    # alpha is the threshold applied to y (0 for the Y-based gradient, alpha for the X-based one)
    zero = cast_like(0, alpha)
    if dy.ctypes.data == out.ctypes.data:
        for i in range(out.size):
            out[i] = out[i] if y[i] > alpha else zero
    else:
        for i in range(y.size):
            out[i] = dy[i] if y[i] > alpha else zero
    return out


@njit(cache=True)
def thresholded_relu_gradient_streamed(y, dy, alpha, out, stream):
    if not stream:
        return thresholded_relu_gradient_s(y, dy, alpha, out)
    h, stop = streaming_span(out)
    blk = STREAM_BLOCK_BYTES // out.itemsize
    buf = np.empty(blk, out.dtype)
    thresholded_relu_gradient_s(y[:h], dy[:h], alpha, out[:h])
    for b in range(h, stop, blk):
        m = min(blk, stop - b)
        thresholded_relu_gradient_s(y[b:b + m], dy[b:b + m], alpha, buf[:m])
        stream_copy(out[b:b + m], buf)
    thresholded_relu_gradient_s(y[stop:], dy[stop:], alpha, out[stop:])
    store_fence()
    return out


@njit(parallel=True, cache=True)
def thresholded_relu_gradient_p(y, dy, alpha, out, chunks, stream):
    n = y.size
    ch = chunk_length(n, chunks)
    if not stream:  # straight to the serial kernel: measured faster than through _nt
        for c in prange(chunks):
            s = min(n, c * ch)
            e = min(n, s + ch)
            thresholded_relu_gradient_s(y[s:e], dy[s:e], alpha, out[s:e])
        return out
    for c in prange(chunks):
        s = min(n, c * ch)
        e = min(n, s + ch)
        thresholded_relu_gradient_streamed(y[s:e], dy[s:e], alpha, out[s:e], stream)
    return out
