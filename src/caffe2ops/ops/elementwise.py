"""Add, Sub, Mul with their gradients, Scale, Log, SumReduceLike and CopyOnDeviceLike: the
operators Caffe2's own gradient definitions emit (Pow's gradient is ``Pow, Mul, Scale``, or with
an exponent tensor ``ConstantFill, Sub, Pow, Mul, Log, SumReduceLike``; Copy's is
``CopyOnDeviceLike``). Caffe2 ``caffe2/operators/elementwise_{add,sub,mul}_op`` and
``scale_op``, ``log_op``, ``copy_op``, ``utility_ops`` (SumReduceLike).

``Add/Sub/Mul(A, B)``: ``C = A op B`` in the dtype, with NumPy broadcasting, or with
``broadcast=1`` Caffe2's legacy broadcast (B aligned with A's dimensions from ``axis``, or from
``order.find(axis_str)``; a 1-element B is a scalar). Element types: float16/32/64 and the
integer types (integers wrap). Gradients take ``(dC, A, B)`` and give ``(dA, dB)``:

* ``AddGradient``: ``dA = Σ dC``, ``dB = Σ dC`` over the dimensions each input was broadcast
  along (summed in float64 and rounded once; integers in the dtype);
* ``SubGradient``: as Add with ``dB = -Σ dC``;
* ``MulGradient``: ``dA = dC·B``, ``dB = dC·A``; unless A and B have the same shape, each is
  accumulated from +0 in the dtype in the order of C's elements, as Caffe2's loop does.

``Scale(X)``: ``Y = X·scale`` in the dtype (``scale`` rounded to it); its gradient is
``Scale(dY)``. ``Log(X)``: ``fl(ln(double X))``; gradient ``Div(dY, X)``.
``SumReduceLike(A, B)``: A summed to B's shape (no gradient). ``CopyOnDeviceLike(X, like)``: a
copy of X on ``like``'s device (on the CPU: a copy). Caffe2 registered no gradient for the
gradient operators, SumReduceLike and CopyOnDeviceLike: asking for one raises, as there.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from caffe2ops.errors import OperatorValueError
from caffe2ops.ops import _common as c
from caffe2ops.ops.arithmetic import (
    LEGACY_BROADCAST,
    infer_legacy_binary,
    legacy_axis,
    legacy_broadcast_shape,
    reduce_to,
)
from caffe2ops.ops.utility import run_copy
from caffe2ops.runtime.schema import GRADIENT_NOT_REGISTERED, Arg, OpSchema, register

ADD, SUB, MUL = "Add", "Sub", "Mul"
_UFUNC = {ADD: np.add, SUB: np.subtract, MUL: np.multiply}


def _operands(op: str, a: Any, b: Any, broadcast: bool, axis: int):
    """``(A, B reshaped for NumPy broadcasting, C's shape)``."""
    a = c.array(op, "input A", a)
    c.require_dtype(op, "input A", a, c.NUMERIC_DTYPES, c.NUMERIC_TEXT)
    b = c.array(op, "input B", b)
    c.same_dtype(op, "input B", b, "A", a)
    if broadcast:
        return a, b.reshape(legacy_broadcast_shape(op, a.shape, b.shape, axis)), a.shape
    try:
        shape = tuple(np.broadcast_shapes(a.shape, b.shape))
    except ValueError:
        raise OperatorValueError(
            f"{op}: inputs A {a.shape} and B {b.shape} cannot be broadcast together"
        ) from None
    return a, b, shape


def binary(op: str, a: Any, b: Any, *, broadcast: bool = False, axis: int = -1,
           out: Any = None) -> np.ndarray:
    """``C = A + B`` (``op="Add"``), ``A - B`` ("Sub") or ``A·B`` ("Mul") in A's dtype (IEEE;
    integers wrap), NumPy broadcasting or Caffe2's legacy ``broadcast``.

    >>> import numpy as np
    >>> from caffe2ops.ops.elementwise import binary
    >>> binary("Mul", np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([10.0, 100.0]))
    array([[ 10., 200.],
           [ 30., 400.]])
    >>> binary("Sub", np.arange(6).reshape(2, 3), np.array([1, 2]), broadcast=True, axis=0)
    array([[-1,  0,  1],
           [ 1,  2,  3]])
    """
    a, bv, shape = _operands(op, a, b, bool(broadcast), int(axis))
    result = c.output(op, out, shape, a.dtype)
    with np.errstate(all="ignore"):
        return _UFUNC[op](a, bv, out=result)


def _accumulate(terms: np.ndarray, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """Caffe2's broadcast gradient loop: ``out[j] += terms[i]`` over C's elements in order,
    starting from +0, in the dtype."""
    size = int(np.prod(shape, dtype=np.int64))
    index = np.broadcast_to(np.arange(size).reshape(shape), terms.shape).reshape(-1)
    acc = np.zeros(size, dtype)
    with np.errstate(all="ignore"):
        np.add.at(acc, index, terms.reshape(-1))
    return acc.reshape(shape)


def _grad_shapes(op: str, dc: np.ndarray, a: np.ndarray, b: np.ndarray, broadcast: bool,
                 axis: int) -> tuple:
    """``(A's shape, B's shape padded for NumPy broadcasting)`` after checking dC's shape."""
    if broadcast:
        c_shape = a.shape
        b_view = legacy_broadcast_shape(op, a.shape, b.shape, axis)
    else:
        try:
            c_shape = tuple(np.broadcast_shapes(a.shape, b.shape))
        except ValueError:
            raise OperatorValueError(
                f"{op}: inputs A {a.shape} and B {b.shape} cannot be broadcast together"
            ) from None
        b_view = b.shape
    if dc.shape != c_shape:
        raise OperatorValueError(
            f"{op}: input dC must have the shape of the forward output {c_shape}; got {dc.shape}"
        )
    return a.shape, b_view


def binary_gradient(op: str, dc: Any, a: Any, b: Any, *, broadcast: bool = False,
                    axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """``(dA, dB)`` of :func:`binary` for ``op`` in Add/Sub/Mul (see the module doc).

    >>> import numpy as np
    >>> from caffe2ops.ops.elementwise import binary_gradient
    >>> binary_gradient("Mul", np.ones((2, 2)), np.array([[1.0, 2.0], [3.0, 4.0]]),
    ...                 np.array([5.0, 6.0]))
    (array([[5., 6.],
           [5., 6.]]), array([4., 6.]))
    >>> binary_gradient("Sub", np.ones((2, 3), np.float32), np.zeros((2, 3), np.float32),
    ...                 np.zeros(1, np.float32))
    (array([[1., 1., 1.],
           [1., 1., 1.]], dtype=float32), array([-6.], dtype=float32))
    """
    name = f"{op}Gradient"
    dc = c.array(name, "input dC", dc)
    c.require_dtype(name, "input dC", dc, c.NUMERIC_DTYPES, c.NUMERIC_TEXT)
    a = c.array(name, "input A", a)
    b = c.array(name, "input B", b)
    c.same_dtype(name, "input A", a, "dC", dc)
    c.same_dtype(name, "input B", b, "dC", dc)
    a_shape, b_view = _grad_shapes(name, dc, a, b, bool(broadcast), int(axis))
    if op == MUL:
        with np.errstate(all="ignore"):
            bv = b.reshape(b_view)
            if a.shape == b.shape:
                return np.multiply(dc, bv), np.multiply(dc, a)
            da = _accumulate(np.multiply(dc, bv), a_shape, dc.dtype)
            db = _accumulate(np.multiply(dc, a), b_view, dc.dtype)
            return da, db.reshape(b.shape)
    wide = dc if dc.dtype.kind in "iu" else dc.astype(np.float64)
    da = reduce_to(wide, a_shape).astype(dc.dtype)
    db = reduce_to(wide, b_view).astype(dc.dtype).reshape(b.shape)
    if op == SUB:
        with np.errstate(all="ignore"):
            db = np.negative(db)
    return da, db


def scale(x: Any, scale: float = 1.0, *, out: Any = None) -> np.ndarray:
    """``y = x·scale`` in ``x``'s float dtype (``scale`` rounded to it first).

    >>> import numpy as np
    >>> from caffe2ops.ops.elementwise import scale
    >>> scale(np.array([1.0, -2.0, np.inf], dtype=np.float32), 0.5)
    array([ 0.5, -1. ,  inf], dtype=float32)
    """
    x = c.float_input("Scale", "input X", x)
    s = c.to_float_dtype(x.dtype, c.float_arg("Scale", "scale", scale))
    y = c.output("Scale", out, x.shape, x.dtype)
    with np.errstate(all="ignore"):
        return np.multiply(x, s, out=y)


def log(x: Any, *, out: Any = None) -> np.ndarray:
    """``y = ln(x)``, ``fl(log(double x))``: ``log(0) = -inf``, ``log(x < 0) = NaN``.

    >>> import numpy as np
    >>> from caffe2ops.ops.elementwise import log
    >>> log(np.array([1.0, 0.0, -1.0, 4.0], dtype=np.float32))
    array([0.       ,      -inf,       nan, 1.3862944], dtype=float32)
    """
    x = c.float_input("Log", "input X", x)
    y = c.output("Log", out, x.shape, x.dtype)
    with np.errstate(all="ignore"):
        if x.dtype == np.float64:
            return np.log(x, out=y)
        np.copyto(y, np.log(x, dtype=np.float64), casting="same_kind")
    return y


def sum_reduce_like(a: Any, b: Any, *, axis: int = -1) -> np.ndarray:
    """A summed to B's shape (Caffe2's ``SumReduceLike``): a 1-element B takes the sum of all
    of A; otherwise B's dimensions match A's from ``axis`` (``-1``: trailing) as in the legacy
    broadcast, and A is summed over the others. Sums in float64, rounded once.

    >>> import numpy as np
    >>> from caffe2ops.ops.elementwise import sum_reduce_like
    >>> sum_reduce_like(np.arange(6.0).reshape(2, 3), np.zeros(3))
    array([3., 5., 7.])
    >>> sum_reduce_like(np.arange(6.0).reshape(2, 3), np.zeros(2), axis=0)
    array([ 3., 12.])
    """
    a = c.float_input("SumReduceLike", "input A", a)
    b = c.array("SumReduceLike", "input B", b)
    view = legacy_broadcast_shape("SumReduceLike", a.shape, b.shape, int(axis))
    if view == ():
        view = (1,) * a.ndim
    return reduce_to(a.astype(np.float64), view).astype(a.dtype).reshape(b.shape)


# ----------------------------------------------------------------------------- runtime


def _axis(op, args) -> int:
    return legacy_axis(op.type, args["axis"], args["axis_str"], args["order"])


def _run_binary(op, inputs, outs):
    broadcast, axis = op.args["broadcast"], _axis(op, op.args)
    a, bv, shape = _operands(op.type, inputs[0], inputs[1], broadcast, axis)
    out = c.reusable(outs[0], shape, a.dtype)
    if out is None:
        out = np.empty(shape, a.dtype)
    with np.errstate(all="ignore"):
        return [_UFUNC[op.type](a, bv, out=out)]


def _run_binary_gradient(op, inputs, outs):
    forward = op.type[: -len("Gradient")]
    dc, a, b = inputs
    return list(binary_gradient(forward, dc, a, b, broadcast=op.args["broadcast"],
                                axis=_axis(op, op.args)))


def _run_scale(op, inputs, outs):
    x = c.float_input("Scale", "input X", inputs[0])
    return [scale(x, op.args["scale"], out=c.reusable(outs[0], x.shape, x.dtype))]


def _run_log(op, inputs, outs):
    x = c.float_input("Log", "input X", inputs[0])
    return [log(x, out=c.reusable(outs[0], x.shape, x.dtype))]


def _run_sum_reduce_like(op, inputs, outs):
    return [sum_reduce_like(inputs[0], inputs[1], axis=_axis(op, op.args))]


def _log_gradient(ctx):
    """Caffe2's: ``Div(dY, X) -> dX``."""
    return [ctx.op("Div", [ctx.GO(0), ctx.I(0)], [ctx.GI(0)])]


def _shapes_only_gradient(ctx):
    """Add/Sub: the gradient needs only A's and B's shapes, so it names them without reading
    their values (an in-place forward op stays differentiable)."""
    d = ctx.def_
    return [ctx.op(f"{d.type}Gradient", [ctx.GO(0), d.input[0], d.input[1]],
                   [ctx.GI(0), ctx.GI(1)])]


def _mul_gradient(ctx):
    return [ctx.op("MulGradient", [ctx.GO(0), ctx.I(0), ctx.I(1)], [ctx.GI(0), ctx.GI(1)])]


def _scale_gradient(ctx):
    return [ctx.op("Scale", [ctx.GO(0)], [ctx.GI(0)])]  # the forward 'scale' is copied


def _infer_binary_gradient(inputs, args):
    _, a, b = inputs
    return [a, b]


_DOC = {ADD: "C = A + B", SUB: "C = A - B", MUL: "C = A * B"}
_GRADIENT = {ADD: _shapes_only_gradient, SUB: _shapes_only_gradient, MUL: _mul_gradient}

for _op in (ADD, SUB, MUL):
    register(OpSchema(
        type=_op, kernel=_run_binary, num_inputs=(2, 2), inputs=("A", "B"), outputs=("C",),
        args=LEGACY_BROADCAST, allow_inplace={(0, 0), (1, 0)}, infer=infer_legacy_binary,
        gradient=_GRADIENT[_op],
        doc=f"{_DOC[_op]} (NumPy broadcasting, or Caffe2's legacy broadcast=1).",
    ))
    register(OpSchema(
        type=f"{_op}Gradient", kernel=_run_binary_gradient, num_inputs=(3, 3),
        num_outputs=(2, 2), inputs=("dC", "A", "B"), outputs=("dA", "dB"),
        args=LEGACY_BROADCAST, allow_inplace={(0, 0), (0, 1)}, infer=_infer_binary_gradient,
        gradient=GRADIENT_NOT_REGISTERED,
        doc=f"Gradient of {_op}: (dC, A, B) -> (dA, dB), summed over broadcast dimensions.",
    ))

register(OpSchema(
    type="Scale", kernel=_run_scale, inputs=("X",), outputs=("Y",),
    args=(Arg("scale", "float", 1.0, "the factor"),), allow_inplace={(0, 0)},
    infer=c.same_as_input(0), gradient=_scale_gradient,
    doc="Y = X * scale.",
))
register(OpSchema(
    type="CopyOnDeviceLike", kernel=run_copy, num_inputs=(2, 2), inputs=("X", "like"),
    outputs=("Y",), infer=c.same_as_input(0), gradient=GRADIENT_NOT_REGISTERED,
    doc="A copy of X on the device of input 'like' (on the CPU: a copy).",
))
register(OpSchema(
    type="Log", kernel=_run_log, inputs=("X",), outputs=("Y",), allow_inplace={(0, 0)},
    infer=c.same_as_input(0), gradient=_log_gradient,
    doc="Y = ln(X).",
))
register(OpSchema(
    type="SumReduceLike", kernel=_run_sum_reduce_like, num_inputs=(2, 2), inputs=("A", "B"),
    outputs=("C",), args=LEGACY_BROADCAST[1:], infer=lambda inputs, args: [inputs[1]],
    gradient=GRADIENT_NOT_REGISTERED, doc="A summed to B's shape (legacy broadcast axes).",
))
