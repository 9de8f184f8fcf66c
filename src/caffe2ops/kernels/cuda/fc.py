"""FC and FCGradient on the GPU: cuBLAS through CuPy's ``matmul`` for CuPy arrays, then the
bias; under the simulator (no CuPy) a plain numba-cuda GEMM (one thread per output, float64
accumulation, rounded once), which is what the simulator tests check.

Bound (both paths) against the CPU reference's BLAS GEMM: ``|Δ| ≤ 2·k·u·Σ|x||w|`` per output
(``u`` the compute dtype's unit roundoff), the usual GEMM bound: different summation orders.
"""

from __future__ import annotations

from numba import cuda, float64

from caffe2ops.kernels.cuda._launch import SIMULATOR, THREADS, blocks


@cuda.jit
def _gemm(a, b, transpose_b, out):
    """``out = a·b`` (``a·bᵀ`` when ``transpose_b``), thread per output element."""
    m, n = out.shape
    k = a.shape[1]
    for i in range(cuda.grid(1), m * n, cuda.gridsize(1)):
        r = i // n
        c = i % n
        acc = 0.0
        for p in range(k):
            bv = b[c, p] if transpose_b else b[p, c]
            acc += float64(a[r, p]) * float64(bv)
        out[r, c] = acc


@cuda.jit
def _add_bias(out, bias):
    m, n = out.shape
    for i in range(cuda.grid(1), m * n, cuda.gridsize(1)):
        out[i // n, i % n] = out[i // n, i % n] + bias[i % n]


def _matmul(a, b, transpose_b: bool, out):
    if not SIMULATOR and hasattr(a, "__cuda_array_interface__"):
        import cupy

        cupy.matmul(a, b.T if transpose_b else b, out=out)
        return out
    if out.size:
        _gemm[blocks(out.size), THREADS](a, b, transpose_b, out)
    return out


def transpose(a, out):
    """``out = aᵀ`` (2-D)."""
    if not SIMULATOR and hasattr(a, "__cuda_array_interface__"):
        out[...] = a.T
        return out
    if out.size:
        _transpose[blocks(out.size), THREADS](a, out)
    return out


@cuda.jit
def _transpose(a, out):
    m, n = out.shape
    for i in range(cuda.grid(1), m * n, cuda.gridsize(1)):
        out[i // n, i % n] = a[i % n, i // n]


def fc(x2d, w2d, bias, out2d):
    """``out2d (M×N) = X·Wᵀ + b``: X [M, K], W [N, K], b [N]."""
    _matmul(x2d, w2d, True, out2d)
    if out2d.size:
        _add_bias[blocks(out2d.size), THREADS](out2d, bias)
    return out2d


def fc_gradient(x2d, w2d, dy2d, dw2d, db, dx2d, dyt2d):
    """``dW = dYᵀ·X``, ``db = Σ_rows dY``, ``dX = dY·W`` (``dx2d`` may be None); ``dyt2d`` is an
    [N, M] scratch for dYᵀ."""
    transpose(dy2d, dyt2d)
    _matmul(dyt2d, x2d, False, dw2d)
    _column_sums[blocks(db.size), THREADS](dy2d, db)
    if dx2d is not None:
        _matmul(dy2d, w2d, False, dx2d)
    return dw2d, db, dx2d


@cuda.jit
def _column_sums(a, out):
    """``out[c] = Σ_r a[r, c]`` in float64, rows in order (deterministic)."""
    for c in range(cuda.grid(1), a.shape[1], cuda.gridsize(1)):
        acc = 0.0
        for r in range(a.shape[0]):
            acc += float64(a[r, c])
        out[c] = acc
