"""CosineSimilarity and its gradient on the CPU: per row of (N, D) arrays, the three sums in
float64 (see :func:`caffe2ops.kernels.cpu.norms.row_sums`), each row by one thread."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from caffe2ops.kernels.cpu._stream import cast_like, launch
from caffe2ops.kernels.cpu.norms import row_sums

#: Elements (rows x row length) from which the row kernels use several threads.
PAR_MIN_ROWS = 1 << 15

_EPS = {np.dtype(np.float32): np.float32(1e-12), np.dtype(np.float64): np.float64(1e-12)}


def cosine_similarity(x: np.ndarray, y: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Per row of the (N, D) arrays: ``x2, y2, xy`` summed in float64 and rounded to the
    dtype, then ``out = xy / sqrt(max(x2, eps) * max(y2, eps))``, eps = 1e-12."""
    launch(cosine_similarity_s, cosine_similarity_p, (x, y, _EPS[x.dtype], out.reshape(-1)),
           x.size, minimum=PAR_MIN_ROWS, chunks_per_thread=1)
    return out


def cosine_similarity_gradient(x: np.ndarray, y: np.ndarray, dz: np.ndarray, dx: np.ndarray,
                               dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Caffe2's gradient of :func:`cosine_similarity` for (N, D) ``x, y`` and (N,) ``dz``, with
    the same sums; in the dtype: ``XN = sqrt(max(x2, eps))``, ``YN`` likewise, ``XYN = XN*YN``,
    ``dx = (dz/XYN)*y - (dz*xy/(XN*XN*XYN))*x`` and ``dy = (dz/XYN)*x - (dz*xy/(YN*YN*XYN))*y``.
    """
    launch(cosine_similarity_gradient_s, cosine_similarity_gradient_p,
           (x, y, dz.reshape(-1), _EPS[x.dtype], dx, dy), x.size, minimum=PAR_MIN_ROWS,
           chunks_per_thread=1)
    return dx, dy


def warm_up_calls(a: np.ndarray, b: np.ndarray, o: np.ndarray) -> dict:
    """One small call per entry point (``a``, ``b``, ``o``: 1-D arrays of one dtype)."""
    m = np.ones((2, 2), a.dtype)
    return {"cosine_similarity": lambda: cosine_similarity(m, m, o[:2]),
            "cosine_similarity_gradient":
            lambda: cosine_similarity_gradient(m, m, b[:2], np.empty_like(m), np.empty_like(m))}


@njit(cache=True)
def cosine_similarity_s(x, y, eps, out):
    for r in range(x.shape[0]):
        a, b, c = row_sums(x, y, r)
        x2 = cast_like(a, eps)
        y2 = cast_like(b, eps)
        xy = cast_like(c, eps)
        out[r] = xy / np.sqrt(max(x2, eps) * max(y2, eps))
    return out


@njit(parallel=True, cache=True)
def cosine_similarity_p(x, y, eps, out, chunks):
    n = x.shape[0]
    ch = (n + chunks - 1) // chunks
    for c in prange(chunks):
        a = min(n, c * ch)
        e = min(n, a + ch)
        cosine_similarity_s(x[a:e], y[a:e], eps, out[a:e])
    return out


@njit(cache=True)
def cosine_similarity_gradient_s(x, y, dz, eps, dx, dy):
    for r in range(x.shape[0]):
        xr = x[r]
        yr = y[r]
        a, b, c = row_sums(x, y, r)
        x2 = cast_like(a, eps)
        y2 = cast_like(b, eps)
        xy = cast_like(c, eps)
        g = dz[r]
        xn = np.sqrt(max(x2, eps))
        yn = np.sqrt(max(y2, eps))
        xyn = xn * yn
        k = g / xyn
        kx = (g * xy) / ((xn * xn) * xyn)
        ky = (g * xy) / ((yn * yn) * xyn)
        dxr = dx[r]
        dyr = dy[r]
        for i in range(xr.size):
            xv = xr[i]
            yv = yr[i]
            dxr[i] = k * yv - kx * xv
            dyr[i] = k * xv - ky * yv
    return dx, dy


@njit(parallel=True, cache=True)
def cosine_similarity_gradient_p(x, y, dz, eps, dx, dy, chunks):
    n = x.shape[0]
    ch = (n + chunks - 1) // chunks
    for c in prange(chunks):
        a = min(n, c * ch)
        e = min(n, a + ch)
        cosine_similarity_gradient_s(x[a:e], y[a:e], dz[a:e], eps, dx[a:e], dy[a:e])
    return dx, dy
