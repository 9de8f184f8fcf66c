"""SparseLengthsSum, SparseLengthsWeightedSum, SparseLengthsMean and the gradients Caffe2 emits.

Forward: ``LENGTHS`` (int32/int64, 1-D, non-negative, summing to the number of ``INDICES``) cut
``INDICES`` into consecutive segments; output row ``s`` combines the rows ``DATA[INDICES[k]]`` of
segment ``s``, left to right from +0 (an empty segment gives zeros). Sum: ``acc + row``. Weighted
sum: ``fma(w[k], row, acc)`` for float32 (one rounding, as Caffe2's AVX2 FMA kernels), ``acc +
w*row`` for float64. Mean: the sum times ``1/len`` (the reciprocal rounded to the dtype).
float16 data compute in float32 and round once. Output shape ``(len(LENGTHS),) + DATA.shape[1:]``.

Gradients (Caffe2's ``SparseLengthsIndicesInGradient*`` operators; the data gradient is a
``GradientSlice(INDICES, values)``): row ``k`` of segment ``s`` of ``values`` is ``dY[s]``,
``dY[s]*(1/len)`` or ``dY[s]*w[k]``; with ``grad_on_weights`` also ``dw[k] = dY[s]·DATA[idx[k]]``
(summed in float64, rounded once: within 1 ulp of the exact dot, Caffe2's order differs).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from caffe2ops.errors import OperatorValueError
from caffe2ops.ops import _common as c
from caffe2ops.ops._dispatch import CpuKernels
from caffe2ops.runtime.schema import NO_GRADIENT, Arg, OpSchema, register

KERNELS = CpuKernels("sparse_lengths")  # caffe2ops/kernels/cpu/sparse_lengths.py

SUM = "SparseLengthsSum"
WSUM = "SparseLengthsWeightedSum"
MEAN = "SparseLengthsMean"
GRAD_SUM = "SparseLengthsIndicesInGradientSumGradient"
GRAD_WSUM = "SparseLengthsIndicesInGradientWeightedSumGradient"
GRAD_WSUM_MAIN = "SparseLengthsIndicesInGradientWeightedSumWithMainInputGradient"
GRAD_MEAN = "SparseLengthsIndicesInGradientMeanGradient"
LENGTH_DTYPES = c.INDEX_DTYPES
F32 = np.dtype(np.float32)


# --------------------------------------------------------------------------------------------
# checks


def segment_offsets(op: str, lengths: Any, n_indices: int) -> np.ndarray:
    """``[0, l0, l0+l1, ...]`` (int64, a copy) after checking ``lengths``."""
    lengths = c.array(op, "input LENGTHS", lengths)
    c.require_dtype(op, "input LENGTHS", lengths, LENGTH_DTYPES, "int32 or int64")
    if lengths.ndim != 1:
        raise OperatorValueError(f"{op}: input LENGTHS must be 1-D; got shape {lengths.shape}")
    lens = np.array(lengths, dtype=np.int64, copy=True)
    if lens.size and lens.min() < 0:
        pos = int(np.argmax(lens < 0))
        raise OperatorValueError(
            f"{op}: input LENGTHS[{pos}] = {int(lens[pos])} is negative (expected >= 0)")
    offsets = np.zeros(lens.size + 1, np.int64)
    np.cumsum(lens, out=offsets[1:])
    if offsets[-1] != n_indices:
        raise OperatorValueError(
            f"{op}: input LENGTHS must sum to the number of INDICES ({n_indices}); "
            f"they sum to {int(offsets[-1])}")
    return offsets


def _data(op: str, data: Any) -> np.ndarray:
    data = c.float_input(op, "input DATA", data)
    if data.ndim == 0:
        raise OperatorValueError(f"{op}: input DATA must have at least one dimension (rows)")
    return data


def _indices_1d(op: str, indices: Any, rows: int | None) -> np.ndarray:
    """INDICES as a checked int64 copy; 1-D as Caffe2 requires."""
    x = c.array(op, "input INDICES", indices)
    if x.ndim != 1:
        raise OperatorValueError(f"{op}: input INDICES must be 1-D; got shape {x.shape}")
    if rows is None:
        c.require_dtype(op, "input INDICES", x, c.INDEX_DTYPES, "int32 or int64")
        return np.array(x, dtype=np.int64, copy=True)
    return c.copied_row_indices(op, "input INDICES", x, rows)


def _weights(op: str, weights: Any, n: int, like: np.ndarray) -> np.ndarray:
    w = c.float_input(op, "input SCALARS", weights)
    c.same_dtype(op, "input SCALARS", w, "DATA", like)
    if w.shape != (n,):
        raise OperatorValueError(
            f"{op}: input SCALARS must have shape ({n},) (one weight per index); got {w.shape}")
    return np.array(w, copy=True)


def _fma_emulated(w: np.ndarray, x: np.ndarray, acc: np.ndarray) -> np.ndarray:
    """float32 ``fma(w, x, acc)``: the product is exact in float64; the sum is rounded to
    float64 then to float32 (differs from one rounding only in a tie, ~2^-29 of cases)."""
    return (w.astype(np.float64) * x + acc).astype(F32)


# --------------------------------------------------------------------------------------------
# reference kernels


def segment_reduce_reference(data2d: np.ndarray, idx: np.ndarray, offsets: np.ndarray,
                             weights: np.ndarray | None, mean: bool) -> np.ndarray:
    """Segments combined left to right (vectorised across segments, position by position)."""
    ct = c.compute_dtype(data2d.dtype)
    n, d = offsets.size - 1, data2d.shape[1]
    out = np.zeros((n, d), ct)
    lens = np.diff(offsets)
    starts = offsets[:-1]
    longest = int(lens.max()) if n else 0
    with np.errstate(invalid="ignore", over="ignore"):
        for j in range(longest):
            seg = np.flatnonzero(lens > j)
            pos = starts[seg] + j
            rows = data2d[idx[pos]].astype(ct, copy=False)
            if weights is None:
                out[seg] += rows
            elif ct == F32:
                out[seg] = _fma_emulated(weights[pos].astype(ct)[:, None], rows, out[seg])
            else:
                out[seg] = out[seg] + weights[pos].astype(ct)[:, None] * rows
        if mean:
            nz = lens > 0
            inv = ct.type(1) / lens[nz].astype(ct)
            out[nz] *= inv[:, None]
    return out


def segment_gradient_reference(dy2d: np.ndarray, offsets: np.ndarray,
                               weights: np.ndarray | None, mean: bool) -> np.ndarray:
    lens = np.diff(offsets)
    seg = np.repeat(np.arange(lens.size), lens)
    values = dy2d[seg]
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        if weights is not None:
            values = values * weights[:, None]
        elif mean:
            ct = c.compute_dtype(dy2d.dtype)
            inv = (ct.type(1) / lens.astype(ct))[seg]
            values = (values.astype(ct) * inv[:, None]).astype(dy2d.dtype)
    return values


# --------------------------------------------------------------------------------------------
# functional API


def _forward(op: str, data: Any, weights: Any, indices: Any, lengths: Any, mean: bool,
             out: np.ndarray | None, reuse: Any = None) -> np.ndarray:
    data = _data(op, data)
    idx = _indices_1d(op, indices, data.shape[0])
    w = None if weights is None else _weights(op, weights, idx.size, data)
    offsets = segment_offsets(op, lengths, idx.size)
    rows, d = c.rows_view(data)
    shape = (offsets.size - 1, *data.shape[1:])
    if out is None and reuse is not None:
        out = c.reusable(reuse, shape, data.dtype)
    out = c.output(op, out, shape, data.dtype, no_alias=(data,) if w is None else (data, w))
    data2d = data.reshape(rows, d) if data.flags.c_contiguous else data
    if data2d.ndim == 2 and out.flags.c_contiguous:
        name = "sparse_lengths_sum" if w is None else "sparse_lengths_weighted_sum"
        kernel = KERNELS.get(name, data2d, out)
        if kernel is not None:
            out2d = out.reshape(shape[0], d)
            if w is None:
                kernel(data2d, idx, offsets, mean, out2d)
            else:
                kernel(data2d, w, idx, offsets, out2d)
            return out
    data2d = data.reshape(rows, d)
    result = segment_reduce_reference(data2d, idx, offsets, w, mean)
    out[...] = result.astype(data.dtype).reshape(shape)
    return out


def sparse_lengths_sum(data: Any, indices: Any, lengths: Any,
                       out: np.ndarray | None = None) -> np.ndarray:
    """``y[s] = Σ data[indices[k]]`` over segment ``s`` of ``indices`` (cut by ``lengths``).

    Rows are summed left to right from +0; an empty segment gives zeros. An index outside
    ``[0, rows)``, negative lengths, or lengths not summing to ``len(indices)`` raise.

    >>> import numpy as np, caffe2ops as c2
    >>> data = np.array([[1., 2.], [3., 4.], [5., 6.]], np.float32)
    >>> c2.sparse_lengths_sum(data, np.array([0, 2, 1]), np.array([2, 0, 1], np.int32))
    array([[6., 8.],
           [0., 0.],
           [3., 4.]], dtype=float32)
    """
    return _forward(SUM, data, None, indices, lengths, False, out)


def sparse_lengths_weighted_sum(data: Any, weights: Any, indices: Any, lengths: Any,
                                out: np.ndarray | None = None) -> np.ndarray:
    """``y[s] = Σ weights[k]·data[indices[k]]`` over segment ``s``; float32 accumulates with
    one rounding per term (``fma``), as Caffe2.

    >>> import numpy as np, caffe2ops as c2
    >>> data = np.array([[1., 2.], [3., 4.]], np.float32)
    >>> w = np.array([0.5, 2., -1.], np.float32)
    >>> c2.sparse_lengths_weighted_sum(data, w, np.array([0, 1, 1]), np.array([2, 1]))
    array([[ 6.5,  9. ],
           [-3. , -4. ]], dtype=float32)
    """
    return _forward(WSUM, data, weights, indices, lengths, False, out)


def sparse_lengths_mean(data: Any, indices: Any, lengths: Any,
                        out: np.ndarray | None = None) -> np.ndarray:
    """The segment sums times ``1/len`` (the reciprocal in the dtype); empty segments give 0.

    >>> import numpy as np, caffe2ops as c2
    >>> data = np.array([[1., 2.], [3., 5.]], np.float32)
    >>> c2.sparse_lengths_mean(data, np.array([0, 1, 1]), np.array([2, 1, 0]))
    array([[2. , 3.5],
           [3. , 5. ],
           [0. , 0. ]], dtype=float32)
    """
    return _forward(MEAN, data, None, indices, lengths, True, out)


def _gradient(op: str, dy: Any, lengths: Any, indices: Any, weights: Any, mean: bool,
              data: Any = None, reuse: Any = None):
    dy = c.float_input(op, "input dY", dy)
    if dy.ndim == 0:
        raise OperatorValueError(f"{op}: input dY must have at least one dimension (segments)")
    rows = None
    if data is not None:
        data = _data(op, data)
        c.same_dtype(op, "input DATA", data, "dY", dy)
        if data.shape[1:] != dy.shape[1:]:
            raise OperatorValueError(
                f"{op}: input DATA rows {data.shape[1:]} must match dY rows {dy.shape[1:]}")
        rows = data.shape[0]
    idx = _indices_1d(op, indices, rows)
    w = None if weights is None else _weights(op, weights, idx.size, dy)
    offsets = segment_offsets(op, lengths, idx.size)
    if dy.shape[0] != offsets.size - 1:
        raise OperatorValueError(
            f"{op}: input dY must have one row per segment ({offsets.size - 1}); "
            f"got shape {dy.shape}")
    n, d = c.rows_view(dy)
    dy2d = dy.reshape(n, d)
    shape = (idx.size, *dy.shape[1:])
    values = None
    kernel = KERNELS.get("sparse_lengths_gradient", dy2d) if dy.flags.c_contiguous else None
    if kernel is not None:
        values = c.reusable(reuse, shape, dy.dtype)  # an output blob of the right size
        values = np.empty((idx.size, d), dy.dtype) if values is None else values.reshape(
            idx.size, d)
        kernel(dy2d, offsets, w, mean, values)
    else:
        values = segment_gradient_reference(dy2d, offsets, w, mean)
    values = values.reshape(shape)
    if data is None:
        return values
    seg = np.repeat(np.arange(offsets.size - 1), np.diff(offsets))
    rows2d = data.reshape(data.shape[0], d)[idx].astype(np.float64)
    dw = np.einsum("ij,ij->i", dy2d[seg].astype(np.float64), rows2d).astype(dy.dtype)
    return values, dw


def sparse_lengths_sum_gradient(dy: Any, lengths: Any, indices: Any) -> np.ndarray:
    """Caffe2's SparseLengthsIndicesInGradientSumGradient: the ``values`` of the data gradient
    ``GradientSlice(indices, values)``; row ``k`` of segment ``s`` is ``dy[s]``.

    >>> import numpy as np, caffe2ops as c2
    >>> dy = np.array([[1., 2.], [3., 4.]], np.float32)
    >>> c2.sparse_lengths_sum_gradient(dy, np.array([1, 2]), np.array([5, 0, 5]))
    array([[1., 2.],
           [3., 4.],
           [3., 4.]], dtype=float32)
    """
    return _gradient(GRAD_SUM, dy, lengths, indices, None, False)


def sparse_lengths_mean_gradient(dy: Any, lengths: Any, indices: Any) -> np.ndarray:
    """Row ``k`` of segment ``s``: ``dy[s] * (1/len)`` (the reciprocal in the dtype).

    >>> import numpy as np, caffe2ops as c2
    >>> c2.sparse_lengths_mean_gradient(np.array([[4.]], np.float32), np.array([2]),
    ...                                 np.array([1, 1]))
    array([[2.],
           [2.]], dtype=float32)
    """
    return _gradient(GRAD_MEAN, dy, lengths, indices, None, True)


def sparse_lengths_weighted_sum_gradient(weights: Any, dy: Any, lengths: Any, indices: Any,
                                         data: Any = None):
    """Row ``k`` of segment ``s``: ``dy[s] * weights[k]``. With ``data`` (Caffe2's
    ``grad_on_weights``) returns ``(values, dweights)``, ``dweights[k] = dy[s]·data[idx[k]]``.

    >>> import numpy as np, caffe2ops as c2
    >>> dy = np.array([[1., 2.]], np.float32)
    >>> v, dw = c2.sparse_lengths_weighted_sum_gradient(
    ...     np.array([2., -1.], np.float32), dy, np.array([2]), np.array([0, 1]),
    ...     data=np.array([[1., 1.], [0., 3.]], np.float32))
    >>> v, dw
    (array([[ 2.,  4.],
           [-1., -2.]], dtype=float32), array([3., 6.], dtype=float32))
    """
    op = GRAD_WSUM if data is None else GRAD_WSUM_MAIN
    return _gradient(op, dy, lengths, indices, weights, False, data)


# --------------------------------------------------------------------------------------------
# operators


def _run_sum(op, inputs, outs):
    return [_forward(SUM, inputs[0], None, inputs[1], inputs[2], False, None, outs[0])]


def _run_wsum(op, inputs, outs):
    return [_forward(WSUM, inputs[0], inputs[1], inputs[2], inputs[3], False, None, outs[0])]


def _run_mean(op, inputs, outs):
    return [_forward(MEAN, inputs[0], None, inputs[1], inputs[2], True, None, outs[0])]


def _run_grad_sum(op, inputs, outs):
    return [_gradient(GRAD_SUM, inputs[0], inputs[1], inputs[2], None, False, reuse=outs[0])]


def _run_grad_mean(op, inputs, outs):
    return [_gradient(GRAD_MEAN, inputs[0], inputs[1], inputs[2], None, True, reuse=outs[0])]


def _run_grad_wsum(op, inputs, outs):
    return [_gradient(GRAD_WSUM, inputs[1], inputs[2], inputs[3], inputs[0], False,
                      reuse=outs[0])]


def _run_grad_wsum_main(op, inputs, outs):
    return list(_gradient(GRAD_WSUM_MAIN, inputs[1], inputs[2], inputs[4], inputs[0], False,
                          inputs[3]))


def _values(ctx) -> str:
    return f"{ctx.def_.input[0]}_grad_values"


def _grad_sum_maker(ctx):
    values = _values(ctx)
    op = ctx.op(GRAD_SUM, [ctx.GO(0), ctx.I(2), ctx.I(1)], [values])
    ctx.set_sparse(0, ctx.def_.input[1], values)
    return [op]


def _grad_mean_maker(ctx):
    values = _values(ctx)
    op = ctx.op(GRAD_MEAN, [ctx.GO(0), ctx.I(2), ctx.I(1)], [values])
    ctx.set_sparse(0, ctx.def_.input[1], values)
    return [op]


def _grad_wsum_maker(ctx):
    values = _values(ctx)
    if ctx.arg("grad_on_weights"):
        op = ctx.op(GRAD_WSUM_MAIN, [ctx.I(1), ctx.GO(0), ctx.I(3), ctx.I(0), ctx.I(2)],
                    [values, ctx.GI(1)])
    else:
        op = ctx.op(GRAD_WSUM, [ctx.I(1), ctx.GO(0), ctx.I(3), ctx.I(2)], [values])
    ctx.set_sparse(0, ctx.def_.input[2], values)
    return [op]


def _infer_forward(data_pos: int, lengths_pos: int):
    def infer(inputs, args):
        (shape, dtype), (lshape, _) = inputs[data_pos], inputs[lengths_pos]
        if not shape or not lshape:
            return [None]
        return [((lshape[0], *shape[1:]), dtype)]

    return infer


def _infer_gradient(dy_pos: int, indices_pos: int):
    def infer(inputs, args):
        (shape, dtype), (ishape, _) = inputs[dy_pos], inputs[indices_pos]
        if not shape or not ishape:
            return [None]
        return [((ishape[0], *shape[1:]), dtype)]

    return infer


_DOC = __doc__.split("\n\n")[1]
register(OpSchema(
    type=SUM, kernel=_run_sum, num_inputs=(3, 3), inputs=("DATA", "INDICES", "LENGTHS"),
    outputs=("OUTPUT",), infer=_infer_forward(0, 2), gradient=_grad_sum_maker, doc=_DOC,
))
register(OpSchema(
    type=WSUM, kernel=_run_wsum, num_inputs=(4, 4),
    inputs=("DATA", "SCALARS", "INDICES", "LENGTHS"), outputs=("OUTPUT",),
    args=(Arg("grad_on_weights", "bool", False, "also produce the gradient of SCALARS"),),
    infer=_infer_forward(0, 3), gradient=_grad_wsum_maker, doc=_DOC,
))
register(OpSchema(
    type=MEAN, kernel=_run_mean, num_inputs=(3, 3), inputs=("DATA", "INDICES", "LENGTHS"),
    outputs=("OUTPUT",), infer=_infer_forward(0, 2), gradient=_grad_mean_maker, doc=_DOC,
))
register(OpSchema(
    type=GRAD_SUM, kernel=_run_grad_sum, num_inputs=(3, 3),
    inputs=("dY", "LENGTHS", "INDICES"), outputs=("DATA_grad_values",),
    infer=_infer_gradient(0, 2), gradient=NO_GRADIENT,
    doc="Values of SparseLengthsSum's data gradient: dY[s] for each index of segment s.",
))
register(OpSchema(
    type=GRAD_MEAN, kernel=_run_grad_mean, num_inputs=(3, 3),
    inputs=("dY", "LENGTHS", "INDICES"), outputs=("DATA_grad_values",),
    infer=_infer_gradient(0, 2), gradient=NO_GRADIENT,
    doc="Values of SparseLengthsMean's data gradient: dY[s]*(1/len) for each index.",
))
register(OpSchema(
    type=GRAD_WSUM, kernel=_run_grad_wsum, num_inputs=(4, 4),
    inputs=("SCALARS", "dY", "LENGTHS", "INDICES"), outputs=("DATA_grad_values",),
    args=(Arg("grad_on_weights", "bool", False, "copied from the forward operator"),),
    infer=_infer_gradient(1, 3), gradient=NO_GRADIENT,
    doc="Values of SparseLengthsWeightedSum's data gradient: dY[s]*w[k].",
))
register(OpSchema(
    type=GRAD_WSUM_MAIN, kernel=_run_grad_wsum_main, num_inputs=(5, 5), num_outputs=(2, 2),
    inputs=("SCALARS", "dY", "LENGTHS", "DATA", "INDICES"),
    outputs=("DATA_grad_values", "SCALARS_grad"),
    args=(Arg("grad_on_weights", "bool", False, "copied from the forward operator"),),
    infer=lambda inputs, args: [_infer_gradient(1, 4)(inputs, args)[0],
                                ((inputs[4][0][0],), inputs[0][1]) if inputs[4][0] else None],
    gradient=NO_GRADIENT,
    doc="SparseLengthsWeightedSum's gradient with grad_on_weights: (dY[s]*w[k], dY[s]·DATA[k]).",
))
