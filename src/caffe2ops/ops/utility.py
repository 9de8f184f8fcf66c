"""Helper operators the gradient builder emits: ConstantFill, Sum, Copy (Caffe2's semantics)."""

from __future__ import annotations

import numpy as np

from caffe2ops.errors import OperatorTypeError, OperatorValueError
from caffe2ops.ops import _common as c
from caffe2ops.runtime.limits import check_blob_size
from caffe2ops.runtime.schema import NO_GRADIENT, Arg, OpSchema, register
from caffe2ops.runtime.tensor import TP_TO_DTYPE


def _fill_dtype(op, args, inputs):
    code = args["dtype"]
    if code is not None:
        if code not in TP_TO_DTYPE:
            raise OperatorTypeError(f"ConstantFill: argument 'dtype' {code} is not supported")
        return TP_TO_DTYPE[code]
    value = args["value"]
    if inputs and isinstance(inputs[0], np.ndarray) and inputs[0].dtype in c.FLOAT_DTYPES \
            and not isinstance(value, int):
        return inputs[0].dtype  # caffe2ops: a float fill of a float input keeps its dtype
    return np.dtype(np.int64) if isinstance(value, int) else np.dtype(np.float32)


def _fill_shape(op, args, inputs):
    if inputs:
        x = c.array("ConstantFill", "input 0", inputs[0])
        if args["input_as_shape"]:
            if x.ndim != 1 or x.dtype.kind not in "iu":
                raise OperatorValueError("ConstantFill: with input_as_shape the input must be a "
                                         "1-D integer tensor")
            shape = tuple(int(v) for v in x)
        else:
            shape = x.shape
        return shape + tuple(args["extra_shape"] or ())
    return tuple(args["shape"] or ())


def _run_fill(op, inputs, outs):
    dtype = _fill_dtype(op, op.args, inputs)
    shape = _fill_shape(op, op.args, inputs)
    if any(d < 0 for d in shape):
        raise OperatorValueError(f"ConstantFill: shape {shape} has a negative dimension")
    check_blob_size("ConstantFill", "output", shape, dtype.itemsize)
    out = c.reusable(outs[0], shape, dtype)
    if out is None:
        try:
            out = np.empty(shape, dtype)
        except (MemoryError, ValueError) as exc:
            raise OperatorValueError(
                f"ConstantFill: cannot allocate the output of shape {shape} ({dtype}): {exc}"
            ) from None
    out.fill(op.args["value"])
    return [out]


def _run_sum(op, inputs, outs):
    first = c.array("Sum", "input 0", inputs[0])
    c.require_dtype("Sum", "input 0", first, c.NUMERIC_DTYPES, c.NUMERIC_TEXT)
    arrays = [first]
    for i, x in enumerate(inputs[1:], 1):
        x = c.array("Sum", f"input {i}", x)
        c.same_dtype("Sum", f"input {i}", x, "input 0", first)
        c.same_shape("Sum", f"input {i}", x, "input 0", first)
        arrays.append(x)
    out = c.reusable(outs[0], first.shape, first.dtype)
    if out is None:
        out = np.empty(first.shape, first.dtype)
    if out is not first:
        np.copyto(out, first)
    with np.errstate(invalid="ignore", over="ignore"):  # IEEE sums: inf - inf = NaN, overflow
        for x in arrays[1:]:
            np.add(out, x, out=out)
    return [out]


def run_copy(op, inputs, outs):
    """Net adapter of the copy operators (Copy, CopyOnDeviceLike, ...): the input copied into the
    reused output blob (a fresh copy when it cannot be reused); a non-array blob as it is."""
    x = inputs[0]
    if not isinstance(x, np.ndarray):
        return [x]
    out = c.reusable(outs[0], x.shape, x.dtype)
    if out is None or out is x:
        return [x.copy()]
    np.copyto(out, x)
    return [out]


def _run_stop_gradient(op, inputs, outs):
    if op.inputs[0] == op.outputs[0]:  # in place: the blob as it is
        return [inputs[0]]
    return run_copy(op, inputs, outs)


def _sum_gradient(ctx):
    for i in range(len(ctx.def_.input)):
        ctx.set_dense(i, ctx.GO(0))
    return []


def _copy_gradient(ctx):
    """Caffe2's: ``CopyOnDeviceLike(dY, X)``; X gives the device only, so it is named, not read."""
    return [ctx.op("CopyOnDeviceLike", [ctx.GO(0), ctx.def_.input[0]], [ctx.GI(0)])]


def _infer_fill(inputs, args):
    if args["dtype"] is not None:
        dtype = TP_TO_DTYPE.get(args["dtype"], np.dtype(np.float32))
    elif isinstance(args["value"], int):
        dtype = np.dtype(np.int64)
    elif inputs and inputs[0][1] in c.FLOAT_DTYPES:
        dtype = inputs[0][1]
    else:
        dtype = np.dtype(np.float32)
    if inputs:
        if args["input_as_shape"]:
            return [None]
        return [(tuple(inputs[0][0]) + tuple(args["extra_shape"] or ()), dtype)]
    return [(tuple(args["shape"] or ()), dtype)]


register(OpSchema(
    type="ConstantFill", kernel=_run_fill, num_inputs=(0, 1), inputs=("shape_source",),
    outputs=("output",),
    args=(
        Arg("value", "number", 0.0, "the fill value (an int value fills int64 unless dtype)"),
        Arg("dtype", "int", None, "TensorProto.DataType of the output"),
        Arg("shape", "ints", None, "shape when there is no input"),
        Arg("extra_shape", "ints", None, "dimensions appended to the input's shape"),
        Arg("input_as_shape", "bool", False, "the input holds the shape"),
    ),
    infer=_infer_fill, gradient=NO_GRADIENT,
    doc="Fill a tensor with a constant; shape from the input, `shape`, or the input's values.",
))

register(OpSchema(
    type="Sum", kernel=_run_sum, num_inputs=(1, 1 << 30), inputs=("data_0",), outputs=("sum",),
    allow_inplace={(0, 0)}, infer=c.same_as_input(0), gradient=_sum_gradient,
    doc="Element-wise sum of inputs of identical shape and dtype.",
))
register(OpSchema(
    type="StopGradient", kernel=_run_stop_gradient, inputs=("input",), outputs=("output",),
    allow_inplace={(0, 0)}, infer=c.same_as_input(0), gradient=NO_GRADIENT,
    doc="Pass the input through (a copy, or in place); no gradient flows back through it "
        "(Caffe2's StopGradient).",
))
register(OpSchema(
    type="Copy", kernel=run_copy, inputs=("input",), outputs=("output",),
    infer=c.same_as_input(0), gradient=_copy_gradient, doc="Copy the input.",
))
