"""Caffe2's update operators: WeightedSum(+Gradient), ScatterWeightedSum, Adagrad, SparseAdagrad,
RowWiseSparseAdagrad, Adam, SparseAdam (``caffe2/sgd``, ``weighted_sum`` / ``utility_ops``).

Formulas, in the parameter's dtype, each operation rounded as Caffe2 1.5.0 did (checked bit for
bit against it; ``lr`` is the LearningRate blob, negative for descent):

* WeightedSum(X0, w0, X1, w1, ...): ``y = w0*X0; y = y + w1*X1; ...``.
* ScatterWeightedSum(X0, w0, INDICES, X1, w1, ...): in place on X0; first ``X0[i] = w0*X0[i]`` for
  every listed index (a duplicate is scaled again), then ``X0[i] = X0[i] + w*Xk[k]`` in order.
* Adagrad: ``h = decay*h + g*g; p = p + (lr*g) / (sqrt(h) + epsilon)``; with the optional
  outputs ``effective_lr = lr / (sqrt(h) + epsilon)``, ``update = effective_lr*g``,
  ``p = p + update``.
* SparseAdagrad: Adagrad (decay 1) on the rows ``INDICES``; RowWiseSparseAdagrad: one moment per
  row, ``h[r] = h[r] + (Σ g*g, in order)/D``, ``p[r] = p[r] + g * (lr / (sqrt(h[r]) + eps))``
  (1-element rows: ``p[r] + (lr*g) / (sqrt(h[r]) + eps)``, Caffe2's scalar path).
  Duplicate indices update a row once per occurrence, in index order.
* Adam (t = iter+1, ``corr = sqrt(1 - beta2^t) / (1 - beta1^t)`` in float64, then rounded):
  ``m = m*beta1 + g*(1-beta1); v = v*beta2 + g*g*(1-beta2);
  p = p + (lr*corr)*m / (sqrt(v) + epsilon)``; with the 4th output
  ``effective_grad = corr*m / (sqrt(v)+epsilon)`` and ``p = p + lr*effective_grad``.
  SparseAdam: the same per occurrence; 1-element rows (Caffe2's scalar path) compute
  ``p + lr*corr*m / (sqrt(v)+eps)`` in float64 and round once.

The optimizers update param and moments in place (Caffe2 enforces it for the sparse ones and
allows it for the dense ones; a new output blob gets an updated copy). Every check runs before
anything is written.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from caffe2ops.errors import OperatorTypeError, OperatorValueError
from caffe2ops.ops import _common as c
from caffe2ops.ops._dispatch import CpuKernels
from caffe2ops.ops.gather import add_rows
from caffe2ops.runtime.schema import NO_GRADIENT, SHOULD_NOT_DO_GRADIENT, Arg, OpSchema, register

KERNELS = CpuKernels("optimizers")  # caffe2ops/kernels/cpu/optimizers.py

WSUM = "WeightedSum"
WSUM_GRAD = "WeightedSumGradient"
SCATTER = "ScatterWeightedSum"
ADAGRAD = "Adagrad"
SPARSE_ADAGRAD = "SparseAdagrad"
ROWWISE = "RowWiseSparseAdagrad"
ADAM = "Adam"
SPARSE_ADAM = "SparseAdam"


# --------------------------------------------------------------------------------------------
# checks


def _param(op: str, what: str, x: Any) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise OperatorTypeError(f"{op}: input {what} must be a NumPy array (it is updated in "
                                f"place); got {type(x).__name__}")
    c.require_dtype(op, f"input {what}", x, c.FLOAT_DTYPES, c.FLOAT_TEXT)
    if not x.flags.writeable:
        raise OperatorValueError(f"{op}: input {what} is read-only (it is updated in place)")
    return x


def _like(op: str, what: str, x: Any, ref_what: str, ref: np.ndarray) -> np.ndarray:
    x = c.float_input(op, f"input {what}", x)
    c.same_dtype(op, f"input {what}", x, ref_what, ref)
    c.same_shape(op, f"input {what}", x, ref_what, ref)
    return x


def _scalar(op: str, what: str, x: Any, ref: np.ndarray):
    x = c.float_scalar_input(op, f"input {what}", x)
    c.same_dtype(op, f"input {what}", x, "param", ref)
    return ref.dtype.type(x.reshape(-1)[0])


def _eps(op: str, value: Any, dtype: np.dtype):
    return c.to_float_dtype(dtype, c.float_arg(op, "epsilon", value))


def _no_overlap(op: str, outputs: dict, readonly: dict) -> None:
    """In-place targets must not share memory with each other or with the read-only inputs."""
    names = list(outputs)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if np.may_share_memory(outputs[a], outputs[b]):
                raise OperatorValueError(f"{op}: inputs {a} and {b} must not share memory")
        for b, arr in readonly.items():
            if np.may_share_memory(outputs[a], arr):
                raise OperatorValueError(f"{op}: input {b} must not share memory with {a} "
                                         f"(which is updated in place)")


def _sparse_rows(op: str, param: np.ndarray, indices: Any, grad: Any):
    """(checked int64 indices copy, grad as (k, D) contiguous copy-if-needed)."""
    if param.ndim == 0:
        raise OperatorValueError(f"{op}: input param must have at least one dimension (rows)")
    raw = c.array(op, "input indices", indices)
    idx = c.copied_row_indices(op, "input indices", raw, param.shape[0])
    grad = c.float_input(op, "input grad", grad)
    c.same_dtype(op, "input grad", grad, "param", param)
    rows, d = c.rows_view(param)
    want = (*raw.shape, *param.shape[1:])
    if grad.shape != want and not (grad.size == idx.size * d and grad.ndim >= 1
                                   and grad.shape[0] == idx.size):
        raise OperatorValueError(f"{op}: input grad must have shape {want} (indices shape + "
                                 f"param row shape); got {grad.shape}")
    return idx, grad


# --------------------------------------------------------------------------------------------
# WeightedSum, WeightedSumGradient, ScatterWeightedSum


def weighted_sum(*pairs: Any, out: np.ndarray | None = None) -> np.ndarray:
    """``y = w0*X0 + w1*X1 + ...`` for ``weighted_sum(X0, w0, X1, w1, ...)``, rounded after every
    product and sum as Caffe2 (``y = w0*X0`` then ``y = y + wk*Xk``). Each ``wk`` has one
    element. ``out`` may be ``X0``.

    >>> import numpy as np, caffe2ops as c2
    >>> x, y = np.array([1., 2.], np.float32), np.array([10., 20.], np.float32)
    >>> c2.weighted_sum(x, np.array([2.], np.float32), y, np.array([0.5], np.float32))
    array([ 7., 14.], dtype=float32)
    """
    if not pairs or len(pairs) % 2:
        raise OperatorValueError(f"{WSUM}: needs an even, non-zero number of inputs (X0, w0, "
                                 f"X1, w1, ...); got {len(pairs)}")
    x0 = c.float_input(WSUM, "input X0", pairs[0])
    xs, ws = [x0], []
    for k in range(0, len(pairs), 2):
        x = x0 if k == 0 else _like(WSUM, f"X{k // 2}", pairs[k], "X0", x0)
        if k:
            xs.append(x)
        ws.append(_scalar(WSUM, f"w{k // 2}", pairs[k + 1], x0))
    if out is not None and out is not x0:
        out = c.output(WSUM, out, x0.shape, x0.dtype, no_alias=tuple(xs))
    pair = KERNELS.get("weighted_sum", *xs[:2], *(() if out is None else (out,)))
    with np.errstate(over="ignore", invalid="ignore"):
        if pair is not None and len(xs) > 1:  # the first two pairs in one pass
            y = pair(x0, ws[0], xs[1], ws[1], np.empty_like(x0) if out is None else out)
            start = 2
        else:
            y = np.multiply(x0, ws[0], out=out)
            start = 1
        add = KERNELS.get("weighted_sum_add", y, *xs[start:]) if len(xs) > start else None
        for x, w in zip(xs[start:], ws[start:], strict=True):
            if add is not None:
                add(y, x, w)
            else:
                np.add(y, w * x, out=y)
    return y


def weighted_sum_gradient(dy: Any, *pairs: Any, grad_on_w: bool = False):
    """Caffe2's WeightedSumGradient: ``dXk = wk*dY`` (and with ``grad_on_w`` ``dwk = dY·Xk``
    summed in float64). Returns the list ``[dX0, dX1, ...] (+ [dw0, dw1, ...])``.

    >>> import numpy as np, caffe2ops as c2
    >>> c2.weighted_sum_gradient(np.array([1., -2.]), np.array([3., 4.]), np.array([0.5]))
    [array([ 0.5, -1. ])]
    """
    dy = c.float_input(WSUM_GRAD, "input dY", dy)
    if not pairs or len(pairs) % 2:
        raise OperatorValueError(f"{WSUM_GRAD}: needs dY then pairs X0, w0, ...; got "
                                 f"{len(pairs)} inputs after dY")
    xs = [_like(WSUM_GRAD, f"X{k // 2}", pairs[k], "dY", dy) for k in range(0, len(pairs), 2)]
    ws = [_scalar(WSUM_GRAD, f"w{k // 2}", pairs[k + 1], dy) for k in range(0, len(pairs), 2)]
    with np.errstate(over="ignore", invalid="ignore"):
        grads = [w * dy for w in ws]
        if grad_on_w:
            grads += [np.array([np.dot(dy.reshape(-1).astype(np.float64),
                                       x.reshape(-1).astype(np.float64))], dy.dtype)
                      for x in xs]
    return grads


def scatter_weighted_sum(x0: np.ndarray, w0: Any, indices: Any, *pairs: Any) -> np.ndarray:
    """In place on ``x0``: every listed row ``x0[i] *= w0`` (once per occurrence), then for each
    pair ``(Xk, wk)`` ``x0[indices[j]] += wk*Xk[j]`` in order. Returns ``x0``.

    >>> import numpy as np, caffe2ops as c2
    >>> x = np.ones((3, 2), np.float32)
    >>> c2.scatter_weighted_sum(x, np.array([1.], np.float32), np.array([2, 0, 2]),
    ...                         np.arange(6, dtype=np.float32).reshape(3, 2),
    ...                         np.array([-1.], np.float32))
    array([[-1., -2.],
           [ 1.,  1.],
           [-3., -5.]], dtype=float32)
    """
    op = SCATTER
    x0 = _param(op, "X_0", x0)
    if x0.ndim == 0:
        raise OperatorValueError(f"{op}: input X_0 must have at least one dimension (rows)")
    w0 = _scalar(op, "Weight_0", w0, x0)
    if not pairs or len(pairs) % 2:
        raise OperatorValueError(f"{op}: needs X_0, Weight_0, INDICES and pairs X_k, Weight_k; "
                                 f"got {3 + len(pairs)} inputs")
    raw = c.array(op, "input INDICES", indices)
    idx = c.copied_row_indices(op, "input INDICES", raw, x0.shape[0])
    rows, d = c.rows_view(x0)
    slices = []
    for k in range(0, len(pairs), 2):
        name = f"X_{k // 2 + 1}"
        xk = c.float_input(op, f"input {name}", pairs[k])
        c.same_dtype(op, f"input {name}", xk, "X_0", x0)
        if xk.size != idx.size * d:
            raise OperatorValueError(f"{op}: input {name} must have {idx.size} rows of "
                                     f"{x0.shape[1:]}; got shape {xk.shape}")
        wk = _scalar(op, f"Weight_{k // 2 + 1}", pairs[k + 1], x0)
        slices.append((np.array(xk, copy=True).reshape(idx.size, d), wk))
    table = x0.reshape(rows, d) if x0.flags.c_contiguous else None
    if table is None:
        raise OperatorValueError(f"{op}: input X_0 must be C-contiguous (it is updated in place)")
    with np.errstate(over="ignore", invalid="ignore"):
        if w0 != 1:
            _scale_rows(table, idx, w0)
        for xk, wk in slices:
            add_rows(table, idx, xk, wk)
    return x0


def _scale_rows(table: np.ndarray, idx: np.ndarray, w) -> None:
    """``table[i] *= w`` once per occurrence of i (duplicates: repeatedly, in order)."""
    order, counts = np.unique(idx, return_counts=True)
    for k in range(int(counts.max()) if counts.size else 0):
        rows = order[counts > k]
        table[rows] = table[rows] * w


# --------------------------------------------------------------------------------------------
# Adagrad family


def adagrad(param: np.ndarray, moment: np.ndarray, grad: Any, lr: Any, epsilon: float = 1e-5,
            decay: float = 1.0, return_updates: bool = False):
    """Caffe2's Adagrad, in place on ``param`` and ``moment``; returns ``(param, moment)`` (and
    ``effective_lr``, ``update`` with ``return_updates``, Caffe2's optional outputs).

    ``h = decay*h + g*g; p = p + (lr*g) / (sqrt(h) + epsilon)``.

    >>> import numpy as np, caffe2ops as c2
    >>> p, h = np.ones(2, np.float32), np.zeros(2, np.float32)
    >>> c2.adagrad(p, h, np.array([3., -4.], np.float32), np.array([-0.5], np.float32), 0.0)
    (array([0.5, 1.5], dtype=float32), array([ 9., 16.], dtype=float32))
    """
    op = ADAGRAD
    param = _param(op, "param", param)
    moment = _param(op, "moment", moment)
    c.same_dtype(op, "input moment", moment, "param", param)
    c.same_shape(op, "input moment", moment, "param", param)
    grad = _like(op, "grad", grad, "param", param)
    lr = _scalar(op, "lr", lr, param)
    eps = _eps(op, epsilon, param.dtype)
    dec = c.to_float_dtype(param.dtype, c.float_arg(op, "decay", decay))
    _no_overlap(op, {"param": param, "moment": moment}, {"grad": grad})
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        h = dec * moment + grad * grad
        moment[...] = h
        if return_updates:
            effective = lr / (np.sqrt(h) + eps)
            update = effective * grad
            param += update
            return param, moment, effective, update
        param += (lr * grad) / (np.sqrt(h) + eps)
    return param, moment


def sparse_adagrad_reference(table, hist, idx, g2d, lr, eps, rowwise: bool) -> None:
    """Serial in index order: the definition (duplicates included)."""
    d = table.shape[1]
    dt = table.dtype.type
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if rowwise:
            # Σ g*g in order along the row: a cumulative sum is sequential.
            sq = g2d * g2d
            hs = np.cumsum(sq, axis=1, dtype=table.dtype)[:, -1] if d else np.zeros(
                len(idx), table.dtype)
            mean = hs / dt(d) if d else hs
            for k, r in enumerate(idx):
                h = hist[r] + mean[k]
                hist[r] = h
                if d == 1:  # Caffe2's scalar path
                    table[r] = table[r] + (lr * g2d[k]) / (np.sqrt(h) + eps)
                    continue
                step = lr / (np.sqrt(h) + eps)
                table[r] = table[r] + g2d[k] * step
            return
        _, first = np.unique(idx, return_index=True)
        if first.size == idx.size:  # no duplicates: vectorised
            h = hist[idx] + g2d * g2d
            hist[idx] = h
            table[idx] = table[idx] + (lr * g2d) / (np.sqrt(h) + eps)
            return
        for k, r in enumerate(idx):
            h = hist[r] + g2d[k] * g2d[k]
            hist[r] = h
            table[r] = table[r] + (lr * g2d[k]) / (np.sqrt(h) + eps)


def _sparse_adagrad(op: str, param, moment, indices, grad, lr, epsilon, rowwise: bool):
    param = _param(op, "param", param)
    moment = _param(op, "moment", moment)
    c.same_dtype(op, "input moment", moment, "param", param)
    idx, grad = _sparse_rows(op, param, indices, grad)
    rows, d = c.rows_view(param)
    if rowwise:
        if moment.size != rows:
            raise OperatorValueError(f"{op}: input moment must have one element per row of "
                                     f"param ({rows}); got shape {moment.shape}")
    else:
        c.same_shape(op, "input moment", moment, "param", param)
    lr = _scalar(op, "lr", lr, param)
    eps = _eps(op, epsilon, param.dtype)
    _no_overlap(op, {"param": param, "moment": moment}, {"grad": grad})
    if not (param.flags.c_contiguous and moment.flags.c_contiguous):
        raise OperatorValueError(f"{op}: inputs param and moment must be C-contiguous (they are "
                                 f"updated in place)")
    if idx.size == 0:
        return param, moment
    table = param.reshape(rows, d)
    hist = moment.reshape(rows) if rowwise else moment.reshape(rows, d)
    # Only the indices are copied (what the kernel indexes with must be what was checked);
    # the gradient values are read as they are.
    g2d = np.ascontiguousarray(grad).reshape(idx.size, d)
    name = "rowwise_sparse_adagrad" if rowwise else "sparse_adagrad"
    kernel = KERNELS.get(name, table, hist, g2d)
    if kernel is not None:
        kernel(table, hist, idx, g2d, lr, eps)
    else:
        sparse_adagrad_reference(table, hist, idx, g2d, lr, eps, rowwise)
    return param, moment


def sparse_adagrad(param: np.ndarray, moment: np.ndarray, indices: Any, grad: Any, lr: Any,
                   epsilon: float = 1e-5):
    """Caffe2's SparseAdagrad, in place on ``param`` and ``moment``: for each ``k`` in order,
    row ``r = indices[k]``: ``h = h + g*g; p = p + (lr*g) / (sqrt(h) + epsilon)``.

    >>> import numpy as np, caffe2ops as c2
    >>> p, h = np.ones((2, 2), np.float32), np.zeros((2, 2), np.float32)
    >>> g = np.array([[3., -4.], [0., 1.]], np.float32)
    >>> c2.sparse_adagrad(p, h, np.array([1, 1]), g, np.array([-1.], np.float32), 0.0)[0]
    array([[1.       , 1.       ],
           [0.       , 1.7574644]], dtype=float32)
    """
    return _sparse_adagrad(SPARSE_ADAGRAD, param, moment, indices, grad, lr, epsilon, False)


def rowwise_sparse_adagrad(param: np.ndarray, moment: np.ndarray, indices: Any, grad: Any,
                           lr: Any, epsilon: float = 1e-5):
    """Caffe2's RowWiseSparseAdagrad, in place; ``moment`` has one value per row:
    ``h[r] = h[r] + mean(g*g); p[r] = p[r] + g * (lr / (sqrt(h[r]) + epsilon))``.

    >>> import numpy as np, caffe2ops as c2
    >>> p, h = np.zeros((2, 2), np.float32), np.zeros(2, np.float32)
    >>> c2.rowwise_sparse_adagrad(p, h, np.array([0]), np.array([[3., 5.]], np.float32),
    ...                           np.array([-1.], np.float32), 0.0)
    (array([[-0.7276069, -1.2126782],
           [ 0.       ,  0.       ]], dtype=float32), array([17.,  0.], dtype=float32))
    """
    return _sparse_adagrad(ROWWISE, param, moment, indices, grad, lr, epsilon, True)


# --------------------------------------------------------------------------------------------
# Adam family


def _iteration(op: str, it: Any) -> int:
    it = c.array(op, "input iter", it)
    if it.dtype != np.int64 or it.size != 1:
        raise OperatorTypeError(f"{op}: input iter must be a one-element int64 tensor; got "
                                f"{it.dtype} of shape {it.shape}")
    return int(it.reshape(-1)[0])


def _betas(op: str, beta1: Any, beta2: Any, dtype: np.dtype):
    b1 = c.to_float_dtype(dtype, c.float_arg(op, "beta1", beta1))
    b2 = c.to_float_dtype(dtype, c.float_arg(op, "beta2", beta2))
    return b1, b2


def _correction(t: int, b1, b2) -> float:
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return float(np.sqrt(1.0 - np.float64(b2) ** t) / (1.0 - np.float64(b1) ** t))


def _adam_state(op: str, param: Any, moment_1: Any, moment_2: Any):
    """``(param, moment_1, moment_2)`` checked: writable float arrays of one dtype and shape."""
    param = _param(op, "param", param)
    m1 = _param(op, "moment_1", moment_1)
    m2 = _param(op, "moment_2", moment_2)
    for name, m in (("moment_1", m1), ("moment_2", m2)):
        c.same_dtype(op, f"input {name}", m, "param", param)
        c.same_shape(op, f"input {name}", m, "param", param)
    return param, m1, m2


def adam(param: np.ndarray, moment_1: np.ndarray, moment_2: np.ndarray, grad: Any, lr: Any,
         iteration: Any, beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-5,
         return_effective_grad: bool = False):
    """Caffe2's Adam, in place on ``param``, ``moment_1``, ``moment_2``; returns them (and the
    effective gradient with ``return_effective_grad``, Caffe2's 4th output).

    >>> import numpy as np, caffe2ops as c2
    >>> p, m, v = np.zeros(2, np.float32), np.zeros(2, np.float32), np.zeros(2, np.float32)
    >>> c2.adam(p, m, v, np.array([1., -2.], np.float32), np.array([-0.1], np.float32),
    ...         np.array([0], np.int64))[0]
    array([-0.09996839,  0.09998419], dtype=float32)
    """
    op = ADAM
    param, m1, m2 = _adam_state(op, param, moment_1, moment_2)
    grad = _like(op, "grad", grad, "param", param)
    lr = _scalar(op, "lr", lr, param)
    t = _iteration(op, iteration) + 1
    dt = param.dtype.type
    b1, b2 = _betas(op, beta1, beta2, param.dtype)
    eps = _eps(op, epsilon, param.dtype)
    _no_overlap(op, {"param": param, "moment_1": m1, "moment_2": m2}, {"grad": grad})
    corr = dt(_correction(t, b1, b2))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        m = m1 * b1 + grad * (dt(1) - b1)
        v = m2 * b2 + grad * grad * (dt(1) - b2)
        m1[...] = m
        m2[...] = v
        if return_effective_grad:
            effective = corr * m / (np.sqrt(v) + eps)
            param += lr * effective
            return param, m1, m2, effective
        param += (lr * corr) * m / (np.sqrt(v) + eps)
    return param, m1, m2


def sparse_adam(param: np.ndarray, moment_1: np.ndarray, moment_2: np.ndarray, indices: Any,
                grad: Any, lr: Any, iteration: Any, beta1: float = 0.9, beta2: float = 0.999,
                epsilon: float = 1e-5):
    """Caffe2's SparseAdam (what ``build_adam`` emits for sparse gradients), in place: Adam per
    occurrence ``k`` on row ``indices[k]``, in order.

    >>> import numpy as np, caffe2ops as c2
    >>> p, m, v = (np.zeros((2, 2), np.float32) for _ in range(3))
    >>> c2.sparse_adam(p, m, v, np.array([1]), np.array([[1., -2.]], np.float32),
    ...                np.array([-0.1], np.float32), np.array([0], np.int64))[0]
    array([[ 0.        ,  0.        ],
           [-0.09996839,  0.09998419]], dtype=float32)
    """
    op = SPARSE_ADAM
    param, m1, m2 = _adam_state(op, param, moment_1, moment_2)
    idx, grad = _sparse_rows(op, param, indices, grad)
    lr = _scalar(op, "lr", lr, param)
    t = _iteration(op, iteration) + 1
    dt = param.dtype.type
    b1, b2 = _betas(op, beta1, beta2, param.dtype)
    eps = _eps(op, epsilon, param.dtype)
    _no_overlap(op, {"param": param, "moment_1": m1, "moment_2": m2}, {"grad": grad})
    if not (param.flags.c_contiguous and m1.flags.c_contiguous and m2.flags.c_contiguous):
        raise OperatorValueError(f"{op}: inputs param, moment_1 and moment_2 must be "
                                 f"C-contiguous (they are updated in place)")
    if idx.size == 0:
        return param, m1, m2
    corr64 = _correction(t, b1, b2)
    rows, d = c.rows_view(param)
    table, t1, t2 = (a.reshape(rows, d) for a in (param, m1, m2))
    g2d = np.array(grad, copy=True).reshape(idx.size, d)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if d == 1:  # Caffe2's scalar path: the update in float64, rounded once
            for k, r in enumerate(idx):
                g = g2d[k, 0]
                m = t1[r, 0] * b1 + g * (dt(1) - b1)
                v = t2[r, 0] * b2 + g * g * (dt(1) - b2)
                t1[r, 0], t2[r, 0] = m, v
                table[r, 0] = dt(float(table[r, 0]) + float(lr) * corr64 * float(m)
                                 / float(np.sqrt(v) + eps))
            return param, m1, m2
        lr_corr = lr * dt(corr64)
        kernel = KERNELS.get("sparse_adam", table, t1, t2, g2d)
        if kernel is not None:
            kernel(table, t1, t2, idx, g2d, lr_corr, b1, b2, eps)
            return param, m1, m2
        for k, r in enumerate(idx):
            g = g2d[k]
            m = t1[r] * b1 + g * (dt(1) - b1)
            v = t2[r] * b2 + g * g * (dt(1) - b2)
            t1[r], t2[r] = m, v
            table[r] = table[r] + lr_corr * m / (np.sqrt(v) + eps)
    return param, m1, m2


# --------------------------------------------------------------------------------------------
# operators


def _inplace_inputs(op, inputs, n_state: int) -> list:
    """The state inputs the kernel may update: the input array itself where the output blob is
    the input blob (in place), else a copy (a new output blob)."""
    state = []
    for i in range(n_state):
        x = inputs[i]
        in_place = i < len(op.outputs) and op.outputs[i] == op.inputs[i]
        state.append(x if in_place or not isinstance(x, np.ndarray) else x.copy())
    return state


def _run_wsum(op, inputs, outs):
    x0 = inputs[0]
    in_place = op.outputs[0] == op.inputs[0]
    out = x0 if in_place and isinstance(x0, np.ndarray) and x0.flags.writeable else None
    return [weighted_sum(*inputs, out=out)]


def _run_wsum_grad(op, inputs, outs):
    grads = weighted_sum_gradient(inputs[0], *inputs[1:], grad_on_w=op.args["grad_on_w"])
    return grads[: len(op.outputs)]


def _run_scatter(op, inputs, outs):
    return [scatter_weighted_sum(*inputs)]


def _run_adagrad(op, inputs, outs):
    p, h = _inplace_inputs(op, inputs, 2)
    res = adagrad(p, h, inputs[2], inputs[3], op.args["epsilon"], op.args["decay"],
                  return_updates=len(op.outputs) > 2)
    return list(res[: len(op.outputs)])


def _run_sparse_adagrad(op, inputs, outs):
    return list(sparse_adagrad(*inputs, epsilon=op.args["epsilon"]))


def _run_rowwise(op, inputs, outs):
    return list(rowwise_sparse_adagrad(*inputs, epsilon=op.args["epsilon"]))


def _run_adam(op, inputs, outs):
    p, m, v = _inplace_inputs(op, inputs, 3)
    a = op.args
    return list(adam(p, m, v, inputs[3], inputs[4], inputs[5], a["beta1"], a["beta2"],
                     a["epsilon"], return_effective_grad=len(op.outputs) == 4))


def _run_sparse_adam(op, inputs, outs):
    a = op.args
    if a["enableRAdam"]:
        raise OperatorValueError(f"{SPARSE_ADAM}: argument 'enableRAdam' is not supported")
    if len(op.outputs) == 4:
        raise OperatorValueError(f"{SPARSE_ADAM}: the 4th output (effective grad) is not "
                                 f"supported")
    return list(sparse_adam(*inputs, beta1=a["beta1"], beta2=a["beta2"], epsilon=a["epsilon"]))


def _wsum_gradient(ctx):
    n = len(ctx.def_.input)
    ins = [ctx.GO(0)] + [ctx.I(i) for i in range(n)]
    outs = [ctx.GI(i) for i in range(0, n, 2)]
    if ctx.arg("grad_on_w"):
        outs += [ctx.GI(i) for i in range(1, n, 2)]
    return [ctx.op(WSUM_GRAD, ins, outs)]


def _same_as(*positions: int):
    def infer(inputs, args):
        return [inputs[p] for p in positions]

    return infer


_EPS_ARG = Arg("epsilon", "float", 1e-5, "added to sqrt of the moment")
_BETAS = (Arg("beta1", "float", 0.9, "first moment decay"),
          Arg("beta2", "float", 0.999, "second moment decay"), _EPS_ARG)
_DOC = __doc__.split("\n\n")[1]

register(OpSchema(
    type=WSUM, kernel=_run_wsum, num_inputs=(2, 1 << 30), inputs=("X0", "w0", "X1", "w1"),
    outputs=("output",), allow_inplace={(0, 0)},
    args=(Arg("grad_on_w", "bool", False, "the gradient also covers the weights"),),
    infer=_same_as(0), gradient=_wsum_gradient, doc="y = w0*X0 + w1*X1 + ...",
))
register(OpSchema(
    type=WSUM_GRAD, kernel=_run_wsum_grad, num_inputs=(3, 1 << 30), num_outputs=(1, 1 << 30),
    inputs=("dY", "X0", "w0"), outputs=("dX0",),
    args=(Arg("grad_on_w", "bool", False, "also the weights' gradients"),),
    gradient=NO_GRADIENT, doc="dXk = wk*dY (and dwk = dY·Xk with grad_on_w).",
))
register(OpSchema(
    type=SCATTER, kernel=_run_scatter, num_inputs=(5, 1 << 30),
    inputs=("X_0", "Weight_0", "INDICES", "X_1", "Weight_1"), outputs=("X_0",),
    enforce_inplace={(0, 0)}, infer=_same_as(0), gradient=SHOULD_NOT_DO_GRADIENT, doc=_DOC,
))
register(OpSchema(
    type=ADAGRAD, kernel=_run_adagrad, num_inputs=(4, 4), num_outputs=(2, 4),
    inputs=("param", "moment", "grad", "lr"),
    outputs=("output_param", "output_moment", "output_effective_lr", "output_update"),
    allow_inplace={(0, 0), (1, 1)},
    args=(_EPS_ARG, Arg("decay", "float", 1.0, "moment decay")),
    infer=lambda i, a: [i[0], i[1], i[0], i[0]], gradient=SHOULD_NOT_DO_GRADIENT, doc=_DOC,
))
for _type, _run in ((SPARSE_ADAGRAD, _run_sparse_adagrad), (ROWWISE, _run_rowwise)):
    register(OpSchema(
        type=_type, kernel=_run, num_inputs=(5, 5), num_outputs=(2, 2),
        inputs=("param", "moment", "indices", "grad", "lr"),
        outputs=("output_param", "output_moment_1"), enforce_inplace={(0, 0), (1, 1)},
        args=(_EPS_ARG,), infer=_same_as(0, 1), gradient=SHOULD_NOT_DO_GRADIENT, doc=_DOC,
    ))
register(OpSchema(
    type=ADAM, kernel=_run_adam, num_inputs=(6, 6), num_outputs=(3, 4),
    inputs=("param", "moment_1", "moment_2", "grad", "lr", "iter"),
    outputs=("output_param", "output_moment_1", "output_moment_2", "output_grad"),
    allow_inplace={(0, 0), (1, 1), (2, 2)}, args=_BETAS,
    infer=lambda i, a: [i[0], i[1], i[2], i[0]], gradient=SHOULD_NOT_DO_GRADIENT, doc=_DOC,
))
register(OpSchema(
    type=SPARSE_ADAM, kernel=_run_sparse_adam, num_inputs=(7, 7), num_outputs=(3, 4),
    inputs=("param", "moment_1", "moment_2", "indices", "grad", "lr", "iter"),
    outputs=("output_param", "output_moment_1", "output_moment_2", "output_grad"),
    enforce_inplace={(0, 0), (1, 1), (2, 2)},
    args=(*_BETAS, Arg("enableRAdam", "bool", False, "RAdam (not supported)")),
    infer=_same_as(0, 1, 2), gradient=SHOULD_NOT_DO_GRADIENT, doc=_DOC,
))
