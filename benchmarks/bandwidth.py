"""The bandwidth reference of ``make bench``: a copy with the kernels' own launch rule (threads,
chunks, streaming stores), so "% of copy" compares like with like."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from caffe2ops.kernels import cpu

chunk_length = cpu.chunk_length
streaming_span = cpu.streaming_span
stream_copy = cpu.stream_copy
store_fence = cpu.store_fence
STREAM_BLOCK_BYTES = cpu.STREAM_BLOCK_BYTES


@njit(cache=True)
def copy_s(x, out):
    for i in range(x.size):
        out[i] = x[i]
    return out


@njit(cache=True)
def copy_streamed(x, out, stream):
    if not stream:
        return copy_s(x, out)
    h, stop = streaming_span(out)
    blk = STREAM_BLOCK_BYTES // out.itemsize
    buf = np.empty(blk, out.dtype)
    copy_s(x[:h], out[:h])
    for b in range(h, stop, blk):
        m = min(blk, stop - b)
        copy_s(x[b:b + m], buf[:m])
        stream_copy(out[b:b + m], buf)
    copy_s(x[stop:], out[stop:])
    store_fence()
    return out


@njit(parallel=True, cache=True)
def copy_p(x, out, chunks, stream):
    n = x.size
    ch = chunk_length(n, chunks)
    for c in prange(chunks):
        s = min(n, c * ch)
        e = min(n, s + ch)
        copy_streamed(x[s:e], out[s:e], stream)
    return out


def copy(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out[...] = x`` as the memory-bound kernels run (NumPy's copy on the serial path)."""
    xf, of = cpu.flat(x), cpu.flat(out)
    cpu.launch(lambda a, b: np.copyto(b, a), copy_p, (xf, of), xf.size,
               stream_bytes=2 * of.nbytes)
    return out
