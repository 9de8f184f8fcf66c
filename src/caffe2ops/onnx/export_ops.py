"""The export table: one small entry per Caffe2 operator and ONNX opset range.

An entry ``fn(ctx, op, args)`` appends ONNX nodes computing ``op`` (an ``OperatorDef`` whose
arguments, defaults filled in, are ``args``) through ``ctx`` (:class:`~caffe2ops.onnx.export.
ExportContext`): ``ctx.node``, ``ctx.const``, ``ctx.reshape``, ``ctx.shape(blob)``,
``ctx.dtype(blob)``, ``ctx.opset``. Entries are registered with ``@exporter(type, since, until)``
(inclusive opset bounds), in the spirit of ONNX's one class per opset version.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable

import numpy as np

from caffe2ops.ops import _common as common
from caffe2ops.ops.arithmetic import legacy_broadcast_shape
from caffe2ops.ops.clip import bounds

Entry = Callable[..., None]
EXPORTERS: dict[str, list[tuple[int, int, Entry]]] = defaultdict(list)
LAST = 10**6


def exporter(op_type: str, since: int = 1, until: int = LAST) -> Callable[[Entry], Entry]:
    def deco(fn: Entry) -> Entry:
        EXPORTERS[op_type].append((since, until, fn))
        return fn

    return deco


def mapped_types() -> list[str]:
    return sorted(EXPORTERS)


def lookup(op_type: str, opset: int, index: int = 0) -> Entry:
    """The entry for ``op_type`` at ``opset``; raises naming the operator and the mapped ones."""
    from caffe2ops.onnx.export import OnnxExportError

    entries = EXPORTERS.get(op_type)
    if not entries:
        raise OnnxExportError(
            f"export-onnx: operator #{index} {op_type} has no ONNX mapping; operators with one: "
            f"{', '.join(mapped_types())}")
    for since, until, fn in entries:
        if since <= opset <= until:
            return fn
    ranges = ", ".join(f"{s}-{u if u < LAST else 'newest'}" for s, u, _ in entries)
    raise OnnxExportError(f"export-onnx: operator #{index} {op_type} has ONNX mappings for "
                          f"opsets {ranges}, not for opset {opset}")


def _scalar(ctx, hint: str, value, dtype) -> str:
    return ctx.const(hint, np.asarray(value).astype(dtype))


def _reduce_sum(ctx, blob: str, axes: list[int], keepdims: int = 0) -> str:
    if ctx.opset >= 13:  # axes became an input in ReduceSum-13
        return ctx.node("ReduceSum", [blob, ctx.const("axes", axes, np.int64)],
                        keepdims=keepdims)
    return ctx.node("ReduceSum", [blob], axes=axes, keepdims=keepdims)


def _rows(ctx, blob: str, shape: tuple[int, ...]) -> str:
    """``blob`` (of ``shape``) as a [rows, row length] matrix (rows = dim 0, as Caffe2's
    row-wise operators; a 1-D input is N rows of length 1)."""
    rows = shape[0] if shape else 1
    return ctx.reshape(blob, [rows, math.prod(shape) // rows if rows else 0])


def _unary(onnx_type: str) -> Entry:
    def entry(ctx, op, args):
        ctx.node(onnx_type, [op.input[0]], [op.output[0]])

    entry.__name__ = onnx_type.lower()
    return entry


# ---- the seed operators ------------------------------------------------------------------------


@exporter("Clip", 9, 10)
def clip_attributes(ctx, op, args):
    dtype = ctx.dtype(op.input[0])
    if dtype.kind != "f":
        raise ctx.unsupported(op, f"Clip of {dtype} needs opset >= 12 (Clip-6 takes floats)")
    lo, hi = bounds("Clip", dtype, args["min"], args["max"])
    if lo > hi:  # Clip-6 refuses min > max; ours gives max then, as does min = max
        lo = hi
    ctx.node("Clip", [op.input[0]], [op.output[0]], min=float(lo), max=float(hi))


@exporter("Clip", 11)
def clip_inputs(ctx, op, args):
    dtype = ctx.dtype(op.input[0])
    if dtype.kind != "f" and ctx.opset < 12:
        raise ctx.unsupported(op, f"Clip of {dtype} needs opset >= 12 (Clip-11 takes floats)")
    lo, hi = bounds("Clip", dtype, args["min"], args["max"])
    ctx.node("Clip", [op.input[0], _scalar(ctx, "min", lo, dtype), _scalar(ctx, "max", hi, dtype)],
             [op.output[0]])


def _alpha(ctx, op, args) -> float:
    return float(common.to_float_dtype(ctx.dtype(op.input[0]), args["alpha"]))


@exporter("ThresholdedRelu", 9, 9)
def thresholded_relu_where(ctx, op, args):  # ThresholdedRelu left the experimental set in 10
    x, dtype = op.input[0], ctx.dtype(op.input[0])
    mask = ctx.node("Greater", [x, _scalar(ctx, "alpha", _alpha(ctx, op, args), dtype)])
    ctx.node("Where", [mask, x, _scalar(ctx, "zero", 0, dtype)], [op.output[0]])


@exporter("ThresholdedRelu", 10)
def thresholded_relu(ctx, op, args):
    ctx.node("ThresholdedRelu", [op.input[0]], [op.output[0]], alpha=_alpha(ctx, op, args))


exporter("Cos", 7)(_unary("Cos"))
exporter("Copy", 1)(_unary("Identity"))
exporter("StopGradient", 1)(_unary("Identity"))


@exporter("Sum", 8)
def sum_(ctx, op, args):
    ctx.node("Sum", list(op.input), [op.output[0]])


def _broadcast_b(ctx, op, args) -> str:
    """Input 1, reshaped so ONNX's NumPy broadcasting gives Caffe2's legacy broadcast."""
    b = op.input[1]
    if args.get("broadcast"):
        shape = legacy_broadcast_shape(op.type, ctx.shape(op.input[0]), ctx.shape(b),
                                       args.get("axis", -1))
        if tuple(shape) != ctx.shape(b):
            return ctx.reshape(b, shape)
    return b


def _binary(onnx_type: str) -> Entry:
    def entry(ctx, op, args):
        ctx.node(onnx_type, [op.input[0], _broadcast_b(ctx, op, args)], [op.output[0]])

    entry.__name__ = onnx_type.lower()
    return entry


for _type in ("Div", "Mul", "Add", "Sub"):
    exporter(_type, 7)(_binary(_type))


@exporter("Scale", 7)
def scale(ctx, op, args):
    dtype = ctx.dtype(op.input[0])
    factor = _scalar(ctx, "scale", common.to_float_dtype(dtype, args["scale"]), dtype)
    ctx.node("Mul", [op.input[0], factor], [op.output[0]])


@exporter("Pow", 7)
def pow_(ctx, op, args):
    x, dtype = op.input[0], ctx.dtype(op.input[0])
    if len(op.input) == 1:
        exponent = common.to_float_dtype(dtype, args["exponent"])
        ctx.node("Pow", [x, _scalar(ctx, "exponent", exponent, dtype)], [op.output[0]])
    else:
        ctx.node("Pow", [x, _broadcast_b(ctx, op, args)], [op.output[0]])


@exporter("CosineSimilarity", 9)
def cosine_similarity(ctx, op, args):
    """``z = x·y / sqrt(max(x·x, 1e-12)·max(y·y, 1e-12))`` over rows."""
    dtype = ctx.dtype(op.input[0])
    x = _rows(ctx, op.input[0], ctx.shape(op.input[0]))
    y = _rows(ctx, op.input[1], ctx.shape(op.input[1]))
    eps = _scalar(ctx, "eps", 1e-12, dtype)

    def dot(a, b):
        return _reduce_sum(ctx, ctx.node("Mul", [a, b]), [1])

    xx = ctx.node("Max", [dot(x, x), eps])
    yy = ctx.node("Max", [dot(y, y), eps])
    norm = ctx.node("Sqrt", [ctx.node("Mul", [xx, yy])])
    ctx.node("Div", [dot(x, y), norm], [op.output[0]])


@exporter("CosineEmbeddingCriterion", 9)
def cosine_embedding_criterion(ctx, op, args):
    """``loss = label == 1 ? 1 - S : (S - margin > 0 ? S - margin : 0)``."""
    s, label = op.input
    dtype, label_dtype = ctx.dtype(s), ctx.dtype(label)
    if ctx.shape(label) != ctx.shape(s):
        label = ctx.reshape(label, ctx.shape(s))
    margin = common.to_float_dtype(dtype, args["margin"])
    similar = ctx.node("Equal", [label, _scalar(ctx, "one", 1, label_dtype)])
    shifted = ctx.node("Sub", [s, _scalar(ctx, "margin", margin, dtype)])
    zero = _scalar(ctx, "zero", 0, dtype)
    dissimilar = ctx.node("Where", [ctx.node("Greater", [shifted, zero]), shifted, zero])
    one_minus = ctx.node("Sub", [_scalar(ctx, "one", 1, dtype), s])
    ctx.node("Where", [similar, one_minus, dissimilar], [op.output[0]])


@exporter("LpNorm", 9)
def lp_norm(ctx, op, args):
    """p=1: Σ|x|, p=2: Σx² (Caffe2's definition), over everything; shape [1]."""
    x, dtype = op.input[0], ctx.dtype(op.input[0])
    if args["p"] not in (1, 2):
        raise ctx.unsupported(op, f"argument 'p' must be 1 or 2; got {args['p']}")
    total = ctx.node("ReduceL1" if args["p"] == 1 else "ReduceSumSquare", [x], keepdims=0)
    if args["average"]:
        total = ctx.node("Div", [total, _scalar(ctx, "numel", math.prod(ctx.shape(x)), dtype)])
    ctx.reshape(total, [1], op.output[0])


# ---- the training operators --------------------------------------------------------------------


for _type in ("Relu", "Sigmoid", "Tanh"):
    exporter(_type, 6)(_unary(_type))


@exporter("FC", 9)
def fully_connected(ctx, op, args):
    """``Y = X·Wᵀ + b`` with X flattened at ``axis`` and W at ``axis_w``: one Gemm for 2-D X and
    W, else Reshape, MatMul with the transposed weight, Add, Reshape."""
    x, w, b = op.input
    axis, axis_w = args.get("axis", 1), args.get("axis_w", 1)
    x_shape, w_shape = ctx.shape(x), ctx.shape(w)
    if len(x_shape) == 2 and len(w_shape) == 2 and axis == 1 and axis_w == 1:
        ctx.node("Gemm", [x, w, b], [op.output[0]], transB=1)
        return
    axis = axis + len(x_shape) if axis < 0 else axis
    axis_w = axis_w + len(w_shape) if axis_w < 0 else axis_w
    m, k = math.prod(x_shape[:axis]), math.prod(x_shape[axis:])
    n = math.prod(w_shape[:axis_w])
    w_t = ctx.node("Transpose", [ctx.reshape(w, [n, k])], perm=[1, 0])
    y = ctx.node("Add", [ctx.node("MatMul", [ctx.reshape(x, [m, k]), w_t]), b])
    ctx.reshape(y, [*x_shape[:axis], n], op.output[0])


@exporter("SquaredL2Distance", 9)
def squared_l2_distance(ctx, op, args):
    """``0.5·Σ(x - y)²`` over each row (dim 0)."""
    rows = _rows(ctx, ctx.node("Sub", list(op.input[:2])), ctx.shape(op.input[0]))
    total = _reduce_sum(ctx, ctx.node("Mul", [rows, rows]), [1])
    ctx.node("Mul", [total, _scalar(ctx, "half", 0.5, ctx.dtype(op.input[0]))], [op.output[0]])


@exporter("AveragedLoss", 9)
def averaged_loss(ctx, op, args):
    mean = ctx.node("ReduceMean", [op.input[0]], keepdims=0)
    shape = ctx.shapes.get(op.output[0])
    if shape is None or tuple(shape) == ():
        ctx.node("Identity", [mean], [op.output[0]])
    else:
        ctx.reshape(mean, shape, op.output[0])


@exporter("Gather", 9)
def gather(ctx, op, args):
    ctx.node("Gather", list(op.input[:2]), [op.output[0]], axis=0)
