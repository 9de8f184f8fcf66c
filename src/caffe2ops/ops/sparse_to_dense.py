"""SparseToDense (Caffe2 ``caffe2/operators/sparse_to_dense_op.{h,cc}``).

``output[indices[i]] += values[i]`` over a zero tensor of shape ``[rows] + values.shape[1:]``,
``rows = data_to_infer_dim.shape[0]`` when the third input is given, else ``max(indices) + 1``;
repeated indices accumulate in index order (Caffe2's loop, so the same bits). It turns a sparse
gradient (``GradientSlice``) into the dense one, e.g. to take its norm. Gradient:
``Gather(dOutput, indices)`` for ``values``, as in Caffe2.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from caffe2ops.errors import OperatorIndexError, OperatorValueError
from caffe2ops.ops import _common as c
from caffe2ops.runtime.schema import OpSchema, register

_VALUE_DTYPES = c.FLOAT_DTYPES | frozenset({np.dtype(np.int32), np.dtype(np.int64)})
_VALUE_TEXT = "float16, float32, float64, int32 or int64"
_OP = "SparseToDense"


def sparse_to_dense(indices: Any, values: Any, rows: int | None = None, *, out: Any = None):
    """``out[indices[i]] += values[i]`` over zeros of shape ``[rows] + values.shape[1:]``
    (``rows`` defaults to ``max(indices) + 1``; 0 for no indices).

    Indices must be 1-D int32/int64 with one per row of ``values``, each in ``[0, rows)``.

    >>> import numpy as np, caffe2ops as c2
    >>> c2.sparse_to_dense(np.array([2, 0, 2]), np.array([[1., 2.], [3., 4.], [5., 6.]]))
    array([[3., 4.],
           [0., 0.],
           [6., 8.]])
    """
    indices = c.array(_OP, "input indices", indices)
    c.require_dtype(_OP, "input indices", indices, c.INDEX_DTYPES, "int32 or int64")
    values = c.array(_OP, "input values", values)
    c.require_dtype(_OP, "input values", values, _VALUE_DTYPES, _VALUE_TEXT)
    if indices.ndim != 1:
        raise OperatorValueError(f"{_OP}: input indices must be 1-D; got shape {indices.shape}")
    if values.ndim == 0 or values.shape[0] != indices.shape[0]:
        raise OperatorValueError(
            f"{_OP}: input values must have one row per index ({indices.shape[0]}); got shape "
            f"{values.shape}"
        )
    indices = indices.copy()  # what is checked is what is read
    if rows is None:
        rows = int(indices.max()) + 1 if indices.size else 0
    if indices.size and (indices.min() < 0 or indices.max() >= rows):
        bad = int(indices.min()) if indices.min() < 0 else int(indices.max())
        raise OperatorIndexError(
            f"{_OP}: input indices holds {bad}, outside [0, {rows}) (the output's rows)"
        )
    shape = (rows, *values.shape[1:])
    result = c.output(_OP, out, shape, values.dtype, no_alias=(values,))
    result.fill(0)
    with np.errstate(over="ignore", invalid="ignore"):
        np.add.at(result, indices, values)
    return result


def _run(op, inputs, outs):
    values = c.array(_OP, "input values", inputs[1])
    rows = None
    if len(inputs) > 2:
        like = c.array(_OP, "input data_to_infer_dim", inputs[2])
        if like.ndim == 0:
            raise OperatorValueError(f"{_OP}: input data_to_infer_dim must have a first dimension")
        rows = like.shape[0]
        out = c.reusable(outs[0], (rows, *values.shape[1:]), values.dtype)
    else:
        out = None  # the row count depends on the indices
    return [sparse_to_dense(inputs[0], values, rows, out=out)]


def _gradient(ctx):
    return [ctx.op("Gather", [ctx.GO(0), ctx.I(0)], [ctx.GI(1)])]


def _infer(inputs, args):
    if len(inputs) > 2:
        return [((inputs[2][0][0], *inputs[1][0][1:]), inputs[1][1])]
    return [None]


register(OpSchema(
    type="SparseToDense", kernel=_run, num_inputs=(2, 3),
    inputs=("indices", "values", "data_to_infer_dim"), outputs=("output",),
    infer=_infer, gradient=_gradient, doc=__doc__.split("\n\n")[0],
))
