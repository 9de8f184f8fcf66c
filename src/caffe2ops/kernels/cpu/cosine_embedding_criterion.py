"""CosineEmbeddingCriterion and its gradient on the CPU (layout as in
:mod:`caffe2ops.kernels.cpu.clip`; ``label`` is int32 or int64)."""

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


def cosine_embedding_criterion(s: np.ndarray, label: np.ndarray, margin: object,
                               out: np.ndarray) -> np.ndarray:
    """``out = 1 - s if label == 1 else max(s - margin, +0)`` (NaN gives +0 on that branch);
    ``label`` is int32/int64 with as many elements as ``s``."""
    sf = flat(s)
    launch(cosine_embedding_criterion_s, cosine_embedding_criterion_p,
           (sf, flat(label), scalar(margin, s.dtype.type), flat(out)), sf.size,
           stream_bytes=2 * out.nbytes + label.nbytes, chunks_per_thread=1)
    return out


def cosine_embedding_criterion_gradient(s: np.ndarray, label: np.ndarray, dloss: np.ndarray,
                                        margin: object, out: np.ndarray) -> np.ndarray:
    """``out = -dloss if label == 1 else dloss * (1 if s >= margin else 0)``."""
    sf = flat(s)
    launch(cosine_embedding_criterion_gradient_s, cosine_embedding_criterion_gradient_p,
           (sf, flat(label), flat(dloss), scalar(margin, s.dtype.type), flat(out)), sf.size,
           stream_bytes=3 * out.nbytes + label.nbytes, chunks_per_thread=1)
    return out


def warm_up_calls(a: np.ndarray, b: np.ndarray, o: np.ndarray) -> dict:
    """One small call per entry point (``a``, ``b``, ``o``: 1-D arrays of one dtype)."""
    one = a.dtype.type(1)
    label = np.array([1, -1, 0, 1], np.int32)[:a.size]
    return {"cosine_embedding_criterion":
            lambda: cosine_embedding_criterion(a, label, one, o),
            "cosine_embedding_criterion_gradient":
            lambda: cosine_embedding_criterion_gradient(a, label, b, one, o)}


@njit(cache=True)
def cosine_embedding_criterion_s(s, label, margin, out):
    one = cast_like(1, margin)
    zero = cast_like(0, margin)
    for i in range(s.size):
        v = s[i]
        d = v - margin
        d = d if d > zero else zero
        out[i] = (one - v) if label[i] == 1 else d
    return out


@njit(cache=True)
def cosine_embedding_criterion_streamed(s_, label, margin, out, stream):
    if not stream:
        return cosine_embedding_criterion_s(s_, label, margin, out)
    h, stop = streaming_span(out)
    blk = STREAM_BLOCK_BYTES // out.itemsize
    buf = np.empty(blk, out.dtype)
    cosine_embedding_criterion_s(s_[:h], label[:h], margin, out[:h])
    for b in range(h, stop, blk):
        m = min(blk, stop - b)
        cosine_embedding_criterion_s(s_[b:b + m], label[b:b + m], margin, buf[:m])
        stream_copy(out[b:b + m], buf)
    cosine_embedding_criterion_s(s_[stop:], label[stop:], margin, out[stop:])
    store_fence()
    return out


@njit(parallel=True, cache=True)
def cosine_embedding_criterion_p(s_, label, margin, out, chunks, stream):
    n = s_.size
    ch = chunk_length(n, chunks)
    for c in prange(chunks):
        s = min(n, c * ch)
        e = min(n, s + ch)
        cosine_embedding_criterion_streamed(s_[s:e], label[s:e], margin, out[s:e], stream)
    return out


@njit(cache=True)
def cosine_embedding_criterion_gradient_s(s, label, dloss, margin, out):
    one = cast_like(1, margin)
    zero = cast_like(0, margin)
    for i in range(s.size):
        g = dloss[i]
        out[i] = -g if label[i] == 1 else g * (one if s[i] >= margin else zero)
    return out


@njit(cache=True)
def cosine_embedding_criterion_gradient_streamed(s_, label, dloss, margin, out, stream):
    if not stream:
        return cosine_embedding_criterion_gradient_s(s_, label, dloss, margin, out)
    h, stop = streaming_span(out)
    blk = STREAM_BLOCK_BYTES // out.itemsize
    buf = np.empty(blk, out.dtype)
    cosine_embedding_criterion_gradient_s(s_[:h], label[:h], dloss[:h], margin, out[:h])
    for b in range(h, stop, blk):
        m = min(blk, stop - b)
        cosine_embedding_criterion_gradient_s(s_[b:b + m], label[b:b + m], dloss[b:b + m], margin,
            buf[:m])
        stream_copy(out[b:b + m], buf)
    cosine_embedding_criterion_gradient_s(s_[stop:], label[stop:], dloss[stop:], margin, out[stop:])
    store_fence()
    return out


@njit(parallel=True, cache=True)
def cosine_embedding_criterion_gradient_p(s_, label, dloss, margin, out, chunks, stream):
    n = s_.size
    ch = chunk_length(n, chunks)
    for c in prange(chunks):
        s = min(n, c * ch)
        e = min(n, s + ch)
        cosine_embedding_criterion_gradient_streamed(s_[s:e], label[s:e], dloss[s:e], margin,
                                                     out[s:e], stream)
    return out
