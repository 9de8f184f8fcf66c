"""EnsureClipped (Caffe2 ``caffe2/operators/ensure_clipped_op.{h,cc}``).

Dense (one input ``param``): exactly :func:`caffe2ops.clip` (``m = x < lo ? lo : x;
y = hi < m ? hi : m``, same bounds and defaults). Sparse (``param, indices[, grad]``): only the
rows ``param[indices]`` (rows along dim 0) are clipped, in place; the output must be the
``param`` blob. Indices are int32/int64 and are checked against the row count before anything
is written. float16/32/64 and integer params. No gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from caffe2ops.errors import OperatorValueError
from caffe2ops.ops import _common as c
from caffe2ops.ops.clip import _BOUNDS, KERNELS, bounds, clip_reference
from caffe2ops.runtime.schema import SHOULD_NOT_DO_GRADIENT, OpSchema, register

OP = "EnsureClipped"


def _check_grad(op: str, param: np.ndarray, indices: np.ndarray, grad: Any) -> None:
    """Caffe2's check: ``param.size_from_dim(1) == grad.size_from_dim(indices.ndim)``."""
    grad = c.array(op, "input grad", grad)
    block = c.rows_view(param)[1]
    if grad.ndim < indices.ndim:
        raise OperatorValueError(
            f"{op}: input grad must have at least indices.ndim = {indices.ndim} dimensions; "
            f"got shape {grad.shape}"
        )
    gblock = int(np.prod(grad.shape[indices.ndim:], dtype=np.int64))
    if gblock != block:
        raise OperatorValueError(
            f"{op}: input grad rows must have the param's row size {block}; got "
            f"{gblock} (grad shape {grad.shape}, indices shape {indices.shape})"
        )


def ensure_clipped_sparse_reference(param: np.ndarray, rows: np.ndarray, lo: Any, hi: Any):
    """Clip the distinct, in-range ``rows`` of ``param`` in place (gather, clip, scatter)."""
    block = param[rows]
    param[rows] = clip_reference(block, lo, hi, block)
    return param


def ensure_clipped(
    param: Any,
    min: float | None = None,
    max: float | None = None,
    indices: Any = None,
    *,
    grad: Any = None,
    out: Any = None,
):
    """Clip ``param`` to ``[min, max]`` like :func:`caffe2ops.clip`; with ``indices``, clip only
    the rows ``param[indices]``, in place.

    Dense (``indices=None``): returns a new array unless ``out`` is given (``out`` may be
    ``param``). Sparse: ``param`` must be a writable NumPy array with at least one dimension;
    it is updated in place and returned; ``out`` must be None or ``param``; indices are int32 or
    int64 (duplicates allowed) and one outside ``[0, rows)`` raises ``IndexError`` with ``param``
    untouched. ``grad`` (sparse only, optional) is checked like Caffe2 (its rows must have the
    param's row size) and otherwise ignored. NaN stays NaN; ``min > max`` gives ``max``;
    omitted bounds are the dtype's finite limits.

    >>> import numpy as np, caffe2ops as c2
    >>> c2.ensure_clipped(np.array([-2.0, 0.5, 3.0], dtype=np.float32), min=-1, max=1)
    array([-1. ,  0.5,  1. ], dtype=float32)
    >>> w = np.array([[5.0, -5.0], [5.0, -5.0], [5.0, -5.0]])
    >>> c2.ensure_clipped(w, min=-1, max=1, indices=np.array([2, 0]))
    array([[ 1., -1.],
           [ 5., -5.],
           [ 1., -1.]])
    """
    if indices is None:
        if grad is not None:
            raise OperatorValueError(f"{OP}: input grad is only used with indices (sparse mode)")
        x = c.array(OP, "input param", param)
        c.require_dtype(OP, "input param", x, c.NUMERIC_DTYPES, c.NUMERIC_TEXT)
        lo, hi = bounds(OP, x.dtype, min, max)
        y = c.output(OP, out, x.shape, x.dtype)
        x = c.unaliased(x, y)
        kernel = KERNELS.get("clip", x, y) or clip_reference
        return kernel(x, lo, hi, y)
    if not isinstance(param, np.ndarray):
        raise OperatorValueError(f"{OP}: param must be a NumPy array (it is updated in place)")
    if out is not None and out is not param:
        raise OperatorValueError(f"{OP}: with indices (sparse mode) the output must be param")
    c.require_dtype(OP, "input param", param, c.NUMERIC_DTYPES, c.NUMERIC_TEXT)
    if param.ndim == 0:
        raise OperatorValueError(f"{OP}: input param must have at least one dimension (rows)")
    if not param.flags.writeable:
        raise OperatorValueError(f"{OP}: input param is read-only (it is updated in place)")
    idx = c.array(OP, "input indices", indices)
    flat = c.row_indices(OP, idx, param.shape[0])
    if grad is not None:
        _check_grad(OP, param, idx, grad)
    lo, hi = bounds(OP, param.dtype, min, max)
    if flat.size == 0:
        return param
    return ensure_clipped_sparse_reference(param, np.unique(flat), lo, hi)


def _run(op, inputs, outs):
    if len(inputs) == 1:
        return [ensure_clipped(inputs[0], op.args["min"], op.args["max"],
                               out=c.reusable_like(outs[0], inputs[0]))]
    if op.outputs[0] != op.inputs[0]:
        raise OperatorValueError(
            f"{OP}: with indices (sparse mode) the output must be the param blob "
            f"'{op.inputs[0]}' (in place); got output '{op.outputs[0]}'"
        )
    grad = inputs[2] if len(inputs) > 2 else None
    return [ensure_clipped(inputs[0], op.args["min"], op.args["max"], inputs[1], grad=grad)]


register(OpSchema(
    type=OP, kernel=_run, num_inputs=(1, 3), inputs=("param", "indices", "grad"),
    outputs=("output_param",), args=_BOUNDS, allow_inplace={(0, 0)}, infer=c.same_as_input(0),
    gradient=SHOULD_NOT_DO_GRADIENT, doc=__doc__.split("\n\n")[1],
))
