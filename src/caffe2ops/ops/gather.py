"""Gather and SparseToDense (Caffe2 ``gather_op`` / ``sparse_to_dense_op``).

Gather(DATA, INDICES, axis=0): ``OUTPUT = DATA.take(INDICES, axis)``, shape
``DATA.shape[:axis] + INDICES.shape + DATA.shape[axis+1:]``. Indices in ``[-n, n)`` (n the size
of ``axis``); negative ones count from the end, as Caffe2 1.5.0 did; others raise IndexError.
Gradient (Caffe2's): for axis 0 the sparse ``GradientSlice(INDICES, dOUTPUT)`` and no operator;
with ``dense_gradient`` a ``SparseToDense(INDICES, dOUTPUT, DATA)``; for another axis Caffe2's
``BatchGatherGradient`` (emitted as Caffe2 did; not implemented here).

SparseToDense(INDICES, VALUES[, DATA_TO_INFER_DIM]): zeros of shape ``(n,) + VALUES.shape[1:]``
(``n = DATA_TO_INFER_DIM.shape[0]``, else ``max(INDICES) + 1``) with ``VALUES[k]`` added to row
``INDICES[k]``, in index order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from caffe2ops.errors import OperatorIndexError, OperatorTypeError, OperatorValueError
from caffe2ops.ops import _common as c
from caffe2ops.ops._dispatch import CpuKernels
from caffe2ops.runtime.schema import Arg, OpSchema, register

KERNELS = CpuKernels("gather")  # caffe2ops/kernels/cpu/gather.py

GATHER = "Gather"
TO_DENSE = "SparseToDense"


def _axis(op: str, axis: Any, ndim: int) -> int:
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
        raise OperatorTypeError(f"{op}: argument 'axis' must be an int; got {type(axis).__name__}")
    axis = int(axis)
    if not -ndim <= axis < ndim:
        raise OperatorValueError(f"{op}: argument 'axis' = {axis} is out of range for DATA with "
                                 f"{ndim} dimensions")
    return axis + ndim if axis < 0 else axis


def _gather_indices(op: str, indices: Any, n: int) -> np.ndarray:
    """INDICES as an int64 copy (same shape) with negative entries wrapped, checked."""
    x = c.array(op, "input INDICES", indices)
    c.require_dtype(op, "input INDICES", x, c.INDEX_DTYPES, "int32 or int64")
    idx = np.array(x, dtype=np.int64, copy=True)
    if idx.size:
        lo, hi = idx.min(), idx.max()
        if lo < -n or hi >= n:
            bad = int(lo) if lo < -n else int(hi)
            pos = int(np.flatnonzero(idx.reshape(-1) == bad)[0])
            raise OperatorIndexError(
                f"{op}: input INDICES[{pos}] = {bad} is out of range for DATA with {n} entries "
                f"along the axis (expected {-n} <= index < {n})")
        if lo < 0:
            idx[idx < 0] += n
    return idx


def gather(data: Any, indices: Any, axis: int = 0) -> np.ndarray:
    """``data.take(indices, axis)`` with Caffe2's checks: indices in ``[-n, n)``, negative ones
    wrapped. Any dtype (the rows are copied).

    >>> import numpy as np, caffe2ops as c2
    >>> data = np.array([[1., 2.], [3., 4.], [5., 6.]], np.float32)
    >>> c2.gather(data, np.array([2, 0, -1]))
    array([[5., 6.],
           [1., 2.],
           [5., 6.]], dtype=float32)
    >>> c2.gather(data, np.array([[1]]), axis=1)
    array([[[2.]],
    <BLANKLINE>
           [[4.]],
    <BLANKLINE>
           [[6.]]], dtype=float32)
    """
    data = c.array(GATHER, "input DATA", data)
    if data.ndim == 0:
        raise OperatorValueError(f"{GATHER}: input DATA must have at least one dimension")
    if data.dtype.kind not in "biufc":
        raise OperatorTypeError(f"{GATHER}: input DATA must be a numeric array; got {data.dtype}")
    axis = _axis(GATHER, axis, data.ndim)
    idx = _gather_indices(GATHER, indices, data.shape[axis])
    return np.take(data, idx, axis=axis)


def sparse_to_dense(indices: Any, values: Any, data_to_infer_dim: Any = None) -> np.ndarray:
    """Rows ``values[k]`` added (in order) into row ``indices[k]`` of zeros.

    >>> import numpy as np, caffe2ops as c2
    >>> c2.sparse_to_dense(np.array([2, 0, 2]), np.array([1., 2., 3.], np.float32))
    array([2., 0., 4.], dtype=float32)
    """
    values = c.array(TO_DENSE, "input VALUES", values)
    c.require_dtype(TO_DENSE, "input VALUES", values, c.NUMERIC_DTYPES, c.NUMERIC_TEXT)
    if values.ndim == 0:
        raise OperatorValueError(f"{TO_DENSE}: input VALUES must have at least one dimension")
    x = c.array(TO_DENSE, "input INDICES", indices)
    c.require_dtype(TO_DENSE, "input INDICES", x, c.INDEX_DTYPES, "int32 or int64")
    if x.ndim != 1 or x.shape[0] != values.shape[0]:
        raise OperatorValueError(
            f"{TO_DENSE}: input INDICES must be 1-D with one index per row of VALUES "
            f"({values.shape[0]}); got shape {x.shape}")
    if data_to_infer_dim is not None:
        ref = c.array(TO_DENSE, "input DATA_TO_INFER_DIM", data_to_infer_dim)
        if ref.ndim == 0:
            raise OperatorValueError(
                f"{TO_DENSE}: input DATA_TO_INFER_DIM must have at least one dimension")
        n = ref.shape[0]
    else:
        n = int(x.max()) + 1 if x.size else 0
    idx = c.copied_row_indices(TO_DENSE, "input INDICES", x, n)
    out = np.zeros((n, *values.shape[1:]), values.dtype)
    add_rows(out, idx, values)
    return out


def add_rows(table: np.ndarray, idx: np.ndarray, values: np.ndarray, w: Any = None) -> None:
    """``table[idx[k]] = table[idx[k]] + values[k]`` (``+ w*values[k]`` with ``w`` a scalar of
    the dtype, the product rounded first) for k in index order, in place; ``table`` a fresh
    or C-contiguous array, ``idx`` checked int64, ``values`` ``idx.shape + table.shape[1:]``."""
    d = table.size // table.shape[0] if table.shape[0] else 0
    t2, v2 = table.reshape(table.shape[0], d), values.reshape(idx.size, d)
    kernel = KERNELS.get("scatter_add_rows", t2, v2)
    with np.errstate(invalid="ignore", over="ignore"):
        if kernel is not None:
            kernel(t2, idx, v2, table.dtype.type(1) if w is None else w)
        else:
            np.add.at(table, idx, values if w is None else w * values)


def _run_gather(op, inputs, outs):
    return [gather(inputs[0], inputs[1], op.args["axis"])]


def _run_to_dense(op, inputs, outs):
    return [sparse_to_dense(*inputs)]


def _gather_gradient(ctx):
    axis = ctx.arg("axis")
    dense = ctx.arg("dense_gradient")
    if axis == 0:
        if dense:
            return [ctx.op(TO_DENSE, [ctx.I(1), ctx.GO(0), ctx.I(0)], [ctx.GI(0)])]
        ctx.set_sparse(0, ctx.I(1), ctx.GO(0))
        return []
    if any(a.name == "dense_gradient" for a in ctx.def_.arg) and not dense:
        raise OperatorValueError(f"{GATHER}: Gather with axis > 0 must use dense_gradient")
    return [ctx.op("BatchGatherGradient", [ctx.I(0), ctx.I(1), ctx.GO(0)], [ctx.GI(0)],
                   axis=axis)]


def _infer_gather(inputs, args):
    (shape, dtype), (ishape, _) = inputs
    axis = args["axis"]
    if not shape or not -len(shape) <= axis < len(shape):
        return [None]
    axis %= len(shape)
    return [((*shape[:axis], *ishape, *shape[axis + 1:]), dtype)]


register(OpSchema(
    type=GATHER, kernel=_run_gather, num_inputs=(2, 2), inputs=("DATA", "INDICES"),
    outputs=("OUTPUT",),
    args=(Arg("axis", "int", 0, "the axis INDICES select along"),
          Arg("dense_gradient", "bool", False, "gradient as a dense SparseToDense, not a slice")),
    infer=_infer_gather, gradient=_gather_gradient, doc=__doc__.split("\n\n")[1],
))
def _to_dense_gradient(ctx):
    """Caffe2's ``GetSparseToDenseGradient``: ``Gather(dOUTPUT, INDICES) -> dVALUES``."""
    return [ctx.op(GATHER, [ctx.GO(0), ctx.I(0)], [ctx.GI(1)])]


register(OpSchema(
    type=TO_DENSE, kernel=_run_to_dense, num_inputs=(2, 3),
    inputs=("INDICES", "VALUES", "DATA_TO_INFER_DIM"), outputs=("OUTPUT",),
    gradient=_to_dense_gradient, doc=__doc__.split("\n\n")[2],
))
