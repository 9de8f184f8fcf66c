"""Fused CPU kernels for the sparse lookups and sparse optimizers (numba loads on first call).

Preconditions (the operators check them; the kernels do not): float arrays C-contiguous, 2-D
``(rows, D)``, one dtype (float32 or float64); ``idx`` int64, in range, a private copy;
``offsets`` int64 prefix sums of the (non-negative) lengths, ``offsets[-1] == idx.size``.
Scalars already in the array's dtype. Results do not depend on the thread count: each output
row is computed by one thread, in index order (see :mod:`caffe2ops.kernels._nb_sparse`).

>>> import numpy as np
>>> from caffe2ops.kernels import cpu_sparse
>>> data = np.arange(6, dtype=np.float32).reshape(3, 2)
>>> offsets = np.array([0, 2, 3]); idx = np.array([0, 2, 1])
>>> cpu_sparse.sparse_lengths_sum(data, idx, offsets, False, np.empty((2, 2), np.float32))
array([[4., 6.],
       [2., 3.]], dtype=float32)
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from caffe2ops.kernels import STATE, get_num_threads

__all__ = [
    "PAR_MIN_SPARSE",
    "rowwise_sparse_adagrad",
    "sparse_adagrad",
    "sparse_adam",
    "sparse_lengths_gradient",
    "sparse_lengths_sum",
    "sparse_lengths_weighted_sum",
]

#: Elements (rows x D) from which a call uses several threads.
PAR_MIN_SPARSE = 1 << 14

_K: ModuleType | None = None


def _load() -> ModuleType:
    global _K
    if _K is None:
        from caffe2ops.kernels import _nb_sparse

        _K = _nb_sparse
    return _K


def _threads(n: int) -> int:
    if n < PAR_MIN_SPARSE:
        return 1
    return STATE.nt or get_num_threads()


def _run(kernel, nt: int, *args):
    from caffe2ops.kernels._nb import set_threads

    set_threads(nt)
    return kernel(*args, nt)


def sparse_lengths_sum(data: np.ndarray, idx: np.ndarray, offsets: np.ndarray, mean: bool,
                       out: np.ndarray) -> np.ndarray:
    """``out[s] = data[idx[a]] + ... + data[idx[e-1]]`` for segment ``s = [a, e)``, left to
    right from +0; with ``mean`` then ``*= 1/len`` (the reciprocal rounded to the dtype)."""
    k = _K or _load()
    one = data.dtype.type(1)
    return _run(k.sparse_lengths_sum_p, _threads(idx.size * out.shape[1]), data, idx, offsets,
                out, bool(mean), one)


def sparse_lengths_weighted_sum(data: np.ndarray, weights: np.ndarray, idx: np.ndarray,
                                offsets: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``acc = fma(w[k], data[idx[k]], acc)`` left to right from +0 for float32 (Caffe2's AVX2
    FMA kernels); ``acc = acc + w*x`` for float64."""
    k = _K or _load()
    fused = data.dtype == np.float32
    return _run(k.sparse_lengths_weighted_sum_p, _threads(idx.size * out.shape[1]), data,
                weights, idx, offsets, out, fused)


def sparse_lengths_gradient(dy: np.ndarray, offsets: np.ndarray, weights: np.ndarray | None,
                            mean: bool, out: np.ndarray) -> np.ndarray:
    """Row ``k`` of segment ``s``: ``dy[s]``; with ``mean`` ``dy[s] * (1/len)``; with
    ``weights`` ``dy[s] * weights[k]``."""
    k = _K or _load()
    mode = 2 if weights is not None else (1 if mean else 0)
    w = weights if weights is not None else np.zeros(1, dy.dtype)
    return _run(k.sparse_lengths_gradient_p, _threads(out.size), dy, offsets, w, mode,
                dy.dtype.type(1), out)


def sparse_adagrad(param: np.ndarray, moment: np.ndarray, idx: np.ndarray, grad: np.ndarray,
                   lr: object, eps: object) -> np.ndarray:
    """In place, per occurrence in index order: ``h += g*g; w += (lr*g) / (sqrt(h) + eps)``."""
    k = _K or _load()
    t = param.dtype.type
    return _run(k.sparse_adagrad_p, _threads(grad.size), param, moment, idx, grad, t(lr),
                t(eps))


def rowwise_sparse_adagrad(param: np.ndarray, moment: np.ndarray, idx: np.ndarray,
                           grad: np.ndarray, lr: object, eps: object) -> np.ndarray:
    """In place, per occurrence: ``h[r] += (sum g*g, in order) / D;
    w += g * (lr / (sqrt(h[r]) + eps))``. ``moment`` is 1-D (one value per row)."""
    k = _K or _load()
    t = param.dtype.type
    return _run(k.rowwise_sparse_adagrad_p, _threads(grad.size), param, moment, idx, grad,
                t(lr), t(eps), t(0))


def sparse_adam(param: np.ndarray, m1: np.ndarray, m2: np.ndarray, idx: np.ndarray,
                grad: np.ndarray, lr_corr: object, beta1: object, beta2: object,
                eps: object) -> np.ndarray:
    """In place, per occurrence: ``m = m*b1 + g*(1-b1); v = v*b2 + g*g*(1-b2);
    w = w + lr_corr*m / (sqrt(v) + eps)`` (all in the dtype)."""
    k = _K or _load()
    t = param.dtype.type
    b1, b2 = t(beta1), t(beta2)
    return _run(k.sparse_adam_p, _threads(grad.size), param, m1, m2, idx, grad, t(lr_corr),
                b1, b2, t(1) - b1, t(1) - b2, t(eps))
