"""Pow and Div, the helper operators ``GradientClipping`` emits, with their gradients (Caffe2
``caffe2/operators/pow_op.{h,cc}`` and ``elementwise_div_op``).

``Pow(X)`` with argument ``exponent``: ``Y = X^exponent``; ``Pow(X, E)``: ``Y = X^E`` with E of
X's shape, or with ``broadcast=1`` a 1-element E or Caffe2's legacy broadcast (E's shape
matches X's dimensions starting at ``axis``; ``axis=-1`` aligns the trailing dimensions).
``Div(A, B)``: ``C = A/B`` with NumPy broadcasting, or Caffe2's legacy broadcast with
``broadcast=1``. Powers are C's ``pow`` in float64, rounded once; divisions in the dtype
(IEEE: ``x/0 = ±inf``, ``0/0 = NaN``). Gradients, as Caffe2 defines them: Pow's is a sequence of
operators (``Pow, Mul, Scale``; with an exponent input ``ConstantFill, Sub, Pow, Mul, Log,
SumReduceLike``), see :func:`_pow_gradient_maker`; ``DivGradient(dC, A, B, C)`` (or the legacy
``(B, C, dC)``) gives ``dA = dC/B`` and ``dB = (-dC)·C/B``, accumulated over broadcast
dimensions as Caffe2 does. ``PowGradient`` (ours, no longer emitted by the gradient maker) gives
``dX = e·X^(e-1)·dY`` and ``dE = ln(X)·Y·dY`` in one op.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from caffe2ops.errors import OperatorError, OperatorValueError
from caffe2ops.ops import _common as c
from caffe2ops.runtime.schema import GRADIENT_NOT_REGISTERED, Arg, OpSchema, register

POW, POW_GRAD, DIV, DIV_GRAD = "Pow", "PowGradient", "Div", "DivGradient"


def legacy_broadcast_shape(op: str, a_shape: tuple, b_shape: tuple, axis: int) -> tuple:
    """B's shape padded with 1s so NumPy broadcasting matches Caffe2's legacy broadcast.

    A 1-element B is a scalar. Otherwise ``B.ndim <= A.ndim``, ``axis`` (``-1``: trailing) in
    ``[0, A.ndim - B.ndim]``, and B's dimensions, after dropping its leading and trailing 1s,
    equal A's from ``axis`` on.

    >>> legacy_broadcast_shape("Div", (2, 3, 4), (3,), axis=1)
    (1, 3, 1)
    >>> legacy_broadcast_shape("Div", (2, 3, 4), (3, 4), axis=-1)
    (1, 3, 4)
    """
    if int(np.prod(b_shape, dtype=np.int64)) == 1:
        return ()
    if len(b_shape) > len(a_shape):
        raise OperatorValueError(
            f"{op}: with broadcast=1 input 1 {b_shape} must have no more dimensions than "
            f"input 0 {a_shape}"
        )
    if axis == -1:
        axis = len(a_shape) - len(b_shape)
    if not 0 <= axis <= len(a_shape) - len(b_shape):
        raise OperatorValueError(
            f"{op}: argument 'axis' must be in [0, {len(a_shape) - len(b_shape)}] to broadcast "
            f"{b_shape} over {a_shape}; got {axis}"
        )
    start, end = 0, len(b_shape) - 1
    while start < len(b_shape) and b_shape[start] == 1:
        start += 1
    while end >= start and b_shape[end] == 1:
        end -= 1
    for i in range(start, end + 1):
        if a_shape[i + axis] != b_shape[i]:
            raise OperatorValueError(
                f"{op}: broadcast dimension mismatch: input 1 {b_shape} at axis {axis} does "
                f"not match input 0 {a_shape}"
            )
    return (1,) * axis + tuple(b_shape) + (1,) * (len(a_shape) - axis - len(b_shape))


def legacy_axis(op: str, axis: int, axis_str: str, order: str) -> int:
    """Caffe2's broadcast axis: ``order.find(axis_str)`` when ``axis_str`` is given, else
    ``axis``.

    >>> legacy_axis("Pow", -1, "C", "NCHW")
    1
    """
    if not axis_str:
        return int(axis)
    if len(axis_str) != 1 or axis_str not in order:
        raise OperatorValueError(
            f"{op}: argument 'axis_str' must be one letter of order '{order}'; got {axis_str!r}"
        )
    return order.find(axis_str)


def _numpy_broadcast(op: str, a_shape: tuple, b_shape: tuple) -> tuple:
    try:
        return tuple(np.broadcast_shapes(a_shape, b_shape))
    except ValueError:
        raise OperatorValueError(
            f"{op}: inputs A {a_shape} and B {b_shape} cannot be broadcast together"
        ) from None


def reduce_to(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``g`` over the dimensions NumPy broadcasting added or stretched to reach ``shape``.

    >>> reduce_to(np.ones((2, 3)), (1, 3))
    array([[2., 2., 2.]])
    """
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1
    )
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def _f64(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float64, copy=False)


def _in_dtype(dtype: np.dtype, value: float) -> np.float64:
    """A float argument rounded to ``dtype`` (contract: as the operator uses it), as float64;
    out of the dtype's range it becomes ±inf without a NumPy overflow warning."""
    with np.errstate(over="ignore"):
        return np.float64(dtype.type(value))


def _store(out: np.ndarray | None, r: np.ndarray, dtype: np.dtype) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        if out is None:
            return np.asarray(r).astype(dtype)
        np.copyto(out, r, casting="unsafe")
    return out


# ----------------------------------------------------------------------------- Pow


def _exponent_view(op: str, x: np.ndarray, e: Any, broadcast: bool, axis: int) -> np.ndarray:
    e = c.array(op, "input exponent", e)
    c.same_dtype(op, "input exponent", e, "X", x)
    if not broadcast:
        if e.shape != x.shape:
            raise OperatorValueError(
                f"{op}: input exponent must have the shape of X {x.shape} (or set broadcast=1); "
                f"got {e.shape}"
            )
        return e
    return e.reshape(legacy_broadcast_shape(op, x.shape, e.shape, axis))


def power(
    x: Any, exponent: float | None = None, e: Any = None, *, broadcast: bool = False,
    axis: int = -1, out: Any = None,
):
    """``y = x^exponent`` (a float argument) or ``y = x^e`` (an array, see the module doc);
    computed in float64 and rounded once to ``x``'s dtype. Negative ``x`` with a non-integer
    power gives NaN, ``0^negative`` gives inf. Exactly one of ``exponent`` and ``e``.

    >>> import numpy as np
    >>> from caffe2ops.ops.arithmetic import power
    >>> power(np.array([4.0, 2.0], dtype=np.float32), 0.5)
    array([2.       , 1.4142135], dtype=float32)
    >>> power(np.array([[1.0, 2.0], [3.0, 4.0]]), e=np.array([2.0]), broadcast=True)
    array([[ 1.,  4.],
           [ 9., 16.]])
    """
    x = c.float_input(POW, "input X", x)
    if (exponent is None) == (e is None):
        raise OperatorValueError(
            f"{POW}: give the exponent either as argument 'exponent' or as input 1 (not both, "
            "not neither)"
        )
    if e is None:
        ev: Any = _in_dtype(x.dtype, c.float_arg(POW, "exponent", exponent))
    else:
        ev = _f64(_exponent_view(POW, x, e, bool(broadcast), int(axis)))
    y = c.output(POW, out, x.shape, x.dtype)
    with np.errstate(all="ignore"):
        # A full-shape exponent array keeps NumPy off its scalar fast paths (x^0.5 as sqrt gives
        # sqrt(-inf) = NaN and sqrt(-0) = -0); C's pow, as Caffe2 uses, gives +inf and +0.
        r = np.power(_f64(x), np.full(x.shape, ev))
    return _store(y, r, x.dtype)


def power_gradient(
    x: Any, dy: Any, exponent: float | None = None, e: Any = None, y: Any = None, *,
    from_output: bool = False, broadcast: bool = False, axis: int = -1,
):
    """Gradient of :func:`power`. With ``exponent``: ``dX = exponent·x^(exponent-1)·dY``
    (``from_output``: ``x`` holds ``Y = X^exponent`` and ``dX = exponent·Y^((exponent-1)/
    exponent)·dY``, Caffe2's in-place formula, with ``|Y|`` for an odd integer exponent so that
    negative X get the right gradient (Caffe2: NaN); an even integer exponent cannot be
    inverted, and the gradient maker refuses it); returns ``dX``. With an array ``e`` (and the
    forward output ``y``): returns ``(dX, dE)`` with ``dE = ln(x)·y·dY`` summed to ``e``'s shape.

    >>> import numpy as np
    >>> from caffe2ops.ops.arithmetic import power_gradient
    >>> power_gradient(np.array([4.0, 1.0]), np.array([1.0, 2.0]), 0.5)
    array([0.25, 1.  ])
    """
    x = c.float_input(POW_GRAD, "input X", x)
    dy = c.array(POW_GRAD, "input dY", dy)
    c.same_dtype(POW_GRAD, "input dY", dy, "X", x)
    c.same_shape(POW_GRAD, "input dY", dy, "X", x)
    if (exponent is None) == (e is None):
        raise OperatorValueError(
            f"{POW_GRAD}: give the exponent either as argument 'exponent' or as an input"
        )
    with np.errstate(all="ignore"):
        if e is None:
            k = _in_dtype(x.dtype, c.float_arg(POW_GRAD, "exponent", exponent))
            if from_output:
                if not abs(k) > 1e-12:
                    raise OperatorValueError(
                        f"{POW_GRAD}: the in-place gradient needs |exponent| > 1e-12; got {k}"
                    )
                y64 = _f64(x)
                if k.is_integer() and int(k) % 2:
                    # odd k: X = sign(Y)|Y|^(1/k) and X^(k-1) = |Y|^((k-1)/k) (an even power)
                    y64 = np.abs(y64)
                r = k * np.power(y64, np.full(y64.shape, (k - 1) / k)) * _f64(dy)
            else:  # full-shape exponents: no scalar fast path (see power)
                r = k * np.power(_f64(x), np.full(x.shape, k - 1)) * _f64(dy)
            return _store(None, r, x.dtype)
        ev = _exponent_view(POW_GRAD, x, e, bool(broadcast), int(axis))
        y = c.array(POW_GRAD, "input Y", y)
        c.same_dtype(POW_GRAD, "input Y", y, "X", x)
        c.same_shape(POW_GRAD, "input Y", y, "X", x)
        e_shape = np.shape(e)
        e64, x64, dy64 = _f64(ev), _f64(x), _f64(dy)
        dx = e64 * np.power(x64, e64 - 1) * dy64
        de = reduce_to(np.broadcast_to(np.log(x64) * _f64(y) * dy64, x.shape), ev.shape)
        return _store(None, dx, x.dtype), _store(None, de.reshape(e_shape), x.dtype)


def _run_pow(op, inputs, outs):
    x = c.float_input(POW, "input X", inputs[0])
    a = op.args
    out = c.reusable(outs[0], x.shape, x.dtype)
    if len(inputs) == 1:
        if a["exponent"] is None:
            raise OperatorValueError(
                f"{POW}: with one input the argument 'exponent' is required (or give the "
                "exponent as input 1)"
            )
        return [power(x, a["exponent"], out=out)]
    if a["exponent"] is not None:
        raise OperatorValueError(
            f"{POW}: the exponent is given both as argument 'exponent' and as input 1"
        )
    return [power(x, e=inputs[1], broadcast=a["broadcast"], axis=_axis(op), out=out)]


def _run_pow_gradient(op, inputs, outs):
    a = op.args
    if len(inputs) == 2:
        if a["exponent"] is None:
            raise OperatorValueError(f"{POW_GRAD}: with 2 inputs (X, dY) the argument "
                                     "'exponent' is required")
        if len(op.outputs) != 1:
            raise OperatorValueError(f"{POW_GRAD}: with 2 inputs there is 1 output (dX)")
        return [power_gradient(inputs[0], inputs[1], a["exponent"],
                               from_output=a["from_output"])]
    if len(inputs) != 4 or len(op.outputs) != 2:
        raise OperatorValueError(
            f"{POW_GRAD}: expects inputs (X, dY) -> (dX) or (X, E, Y, dY) -> (dX, dE); got "
            f"{len(inputs)} inputs and {len(op.outputs)} outputs"
        )
    x, e, y, dy = inputs
    return list(power_gradient(x, dy, e=e, y=y, broadcast=a["broadcast"], axis=_axis(op)))


def _axis(op) -> int:
    a = op.args
    return legacy_axis(op.type, a["axis"], a["axis_str"], a["order"])


def _pow_gradient_maker(ctx):
    """Caffe2's ``GetPowGradient``. With the ``exponent`` argument ``e``: ``Pow(X,
    exponent=e-1) -> dX; Mul(dX, dY) -> dX; Scale(dX, scale=e) -> dX`` (``e-1`` in float32; the
    forward arguments are not copied). In place, Caffe2 applies ``Pow(Y, (e-1)/e)``, which loses
    X's sign (``Copy(X)->B; Pow(B)->B`` with X=[-2, 3], e=2 gave dX=[4, 6]): the def is
    Caffe2's, but it reads X as the forward op saw it, so the backward pass raises instead. With
    an exponent input: :func:`_pow_tensor_gradient`."""
    d = ctx.def_
    if any(arg.name == "exponent" for arg in d.arg):
        e = np.float32(ctx.arg("exponent"))
        x = ctx.I(0)
        if d.input[0] == d.output[0]:
            if not abs(e) > np.float32(1e-12):
                raise OperatorError(
                    f"{POW}: the gradient of an in-place Pow needs |exponent| > 1e-12"
                )
            power_e = (e - np.float32(1)) / e
        else:
            power_e = e - np.float32(1)
        dx = ctx.GI(0)
        return [ctx.op(POW, [x], [dx], exponent=float(power_e)),
                ctx.op("Mul", [dx, ctx.GO(0)], [dx]),
                ctx.op("Scale", [dx], [dx], scale=float(e))]
    return _pow_tensor_gradient(ctx)


def _pow_tensor_gradient(ctx):
    """Caffe2's sequence for ``Pow(X, E) -> Y``: ``E-1`` by ConstantFill and Sub; ``dX =
    Pow(X, E-1)·dY·E``; ``dE = Log(X)·Y·dY``, summed to E's shape by SumReduceLike when the
    forward op has a ``broadcast`` argument (whose legacy-broadcast arguments the ops carry)."""
    d = ctx.def_
    if d.input[0] == d.output[0] or d.input[1] == d.output[0]:
        raise OperatorError(
            f"{POW}: the gradient cannot be computed if Pow with an exponent input runs in place "
            f"(output '{d.output[0]}' overwrites an input), as in Caffe2"
        )
    x, e, y, dy = ctx.I(0), ctx.I(1), ctx.O(0), ctx.GO(0)
    dx, de = ctx.GI(0), ctx.GI(1)
    pre = f"{de}_autogen_pre_red"
    legacy = any(arg.name == "broadcast" for arg in d.arg)
    extra = {}
    if legacy:
        extra = {"broadcast": int(ctx.arg("broadcast")), "axis": int(ctx.arg("axis")),
                 "axis_str": ctx.arg("axis_str"), "order": ctx.arg("order")}
    ops = [ctx.op("ConstantFill", [e], [de], value=1.0),
           ctx.op("Sub", [e, de], [de]),
           ctx.op(POW, [x, de], [dx], **extra),
           ctx.op("Mul", [dx, dy], [dx]),
           ctx.op("Mul", [dx, e], [dx], **extra),
           ctx.op("Log", [x], [pre]),
           ctx.op("Mul", [pre, y], [pre])]
    if legacy:
        reduce_args = {k: extra[k] for k in ("axis", "axis_str", "order")}
        ops += [ctx.op("Mul", [pre, dy], [pre]),
                ctx.op("SumReduceLike", [pre, e], [de], **reduce_args)]
    else:
        ops.append(ctx.op("Mul", [pre, dy], [de]))
    return ops


_pow_gradient_maker.copy_arguments = False  # type: ignore[attr-defined]  # as Caffe2's maker


# ----------------------------------------------------------------------------- Div


def _div_view(op: str, a: np.ndarray, b: Any, broadcast: bool, axis: int):
    """``(result shape, B reshaped for NumPy broadcasting)``."""
    b = c.array(op, "input B", b)
    c.same_dtype(op, "input B", b, "A", a)
    if broadcast:
        return a.shape, b.reshape(legacy_broadcast_shape(op, a.shape, b.shape, axis))
    return _numpy_broadcast(op, a.shape, b.shape), b


def divide(a: Any, b: Any, *, broadcast: bool = False, axis: int = -1, out: Any = None):
    """``c = a/b`` in the dtype (IEEE; integers truncate toward zero, and a zero divisor raises
    where Caffe2 crashed), NumPy broadcasting, or Caffe2's legacy broadcast with
    ``broadcast=True`` (``b`` aligned with ``a``'s dimensions from ``axis``).

    >>> import numpy as np
    >>> from caffe2ops.ops.arithmetic import divide
    >>> divide(np.array([1.0, 3.0], dtype=np.float32), np.array([4.0], dtype=np.float32))
    array([0.25, 0.75], dtype=float32)
    """
    a = _div_input(DIV, "input A", a)
    shape, bv = _div_view(DIV, a, b, bool(broadcast), int(axis))
    if a.dtype.kind in "iu":
        _no_zero_divisor(DIV, "input B", bv)
    out = c.output(DIV, out, shape, a.dtype)
    return _quotient(a, bv, out)


def _div_input(op: str, what: str, x: Any) -> np.ndarray:
    x = c.array(op, what, x)
    c.require_dtype(op, what, x, c.NUMERIC_DTYPES, c.NUMERIC_TEXT)
    return x


def _no_zero_divisor(op: str, what: str, b: np.ndarray) -> None:
    """Integer division by zero crashed Caffe2 (SIGFPE); here it is an error, raised first."""
    if b.size and not np.all(b):
        raise OperatorValueError(f"{op}: {what} holds 0: integer division by zero")


def _quotient(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``a/b`` in the dtype: IEEE for floats; for integers C's division, truncated toward zero
    (``INT_MIN / -1`` wraps), B already checked for zeros.

    >>> import numpy as np
    >>> _quotient(np.array([7, -7, 7, -7]), np.array([2, 2, -2, -2]))
    array([ 3, -3, -3,  3])
    """
    with np.errstate(all="ignore"):
        if a.dtype.kind not in "iu":
            return np.divide(a, b, out=out)
        q = np.floor_divide(a, b)
        q += ((np.remainder(a, b) != 0) & ((a < 0) != (b < 0))).astype(a.dtype)
        if out is None:
            return q
        np.copyto(out, q)
        return out


def _accumulate(terms: np.ndarray, shape: tuple) -> np.ndarray:
    """Caffe2's broadcast gradient loop: ``out[j] += terms[i]`` over C's elements in order,
    starting from +0, in the dtype."""
    size = int(np.prod(shape, dtype=np.int64))
    index = np.broadcast_to(np.arange(size).reshape(shape), terms.shape).reshape(-1)
    acc = np.zeros(size, terms.dtype)
    np.add.at(acc, index, terms.reshape(-1))
    return acc.reshape(shape)


def divide_gradient(
    dc: Any, b: Any, c_out: Any, a_shape: tuple | None = None, *, broadcast: bool = False,
    axis: int = -1,
):
    """``(dA, dB)`` of :func:`divide`: ``dA = dC/B`` and ``dB = (-dC)·C/B`` in the dtype, as
    Caffe2 computes them: elementwise when A and B have the same shape, else accumulated from
    +0 over C's elements in order; ``a_shape`` defaults to ``C``'s shape.

    >>> import numpy as np
    >>> from caffe2ops.ops.arithmetic import divide_gradient
    >>> divide_gradient(np.array([1.0, 1.0]), np.array([2.0]), np.array([0.5, 1.5]), (2,))
    (array([0.5, 0.5]), array([-1.]))
    """
    c_out = _div_input(DIV_GRAD, "input C", c_out)
    dc = c.array(DIV_GRAD, "input dC", dc)
    c.same_dtype(DIV_GRAD, "input dC", dc, "C", c_out)
    c.same_shape(DIV_GRAD, "input dC", dc, "C", c_out)
    b = c.array(DIV_GRAD, "input B", b)
    c.same_dtype(DIV_GRAD, "input B", b, "C", c_out)
    a_shape = c_out.shape if a_shape is None else tuple(a_shape)
    if broadcast:
        if a_shape != c_out.shape:
            raise OperatorValueError(
                f"{DIV_GRAD}: with broadcast=1, A {a_shape} must have C's shape {c_out.shape}"
            )
        bv_shape = legacy_broadcast_shape(DIV_GRAD, a_shape, b.shape, axis)
    else:
        if _numpy_broadcast(DIV_GRAD, a_shape, b.shape) != c_out.shape:
            raise OperatorValueError(
                f"{DIV_GRAD}: A {a_shape} and B {b.shape} do not broadcast to C {c_out.shape}"
            )
        bv_shape = b.shape
    bv = b.reshape(bv_shape)
    if bv.dtype.kind in "iu":
        _no_zero_divisor(DIV_GRAD, "input B", bv)
    with np.errstate(all="ignore"):
        da = _quotient(dc, bv)
        db = _quotient(np.multiply(np.negative(dc), c_out), bv)
        if a_shape != b.shape:
            da = _accumulate(da, a_shape)
            db = _accumulate(db, bv_shape)
    return np.asarray(da), np.asarray(db).reshape(b.shape)  # 0-d inputs: arrays, not scalars


def _run_div(op, inputs, outs):
    a = _div_input(DIV, "input A", inputs[0])
    axis = _axis(op)
    shape, _ = _div_view(DIV, a, inputs[1], op.args["broadcast"], axis)
    out = c.reusable(outs[0], shape, a.dtype)
    return [divide(a, inputs[1], broadcast=op.args["broadcast"], axis=axis, out=out)]


def _run_div_gradient(op, inputs, outs):
    """Caffe2's two forms: ``(dC, A, B, C)``, and the legacy ``(B, C, dC)`` (A has C's shape)."""
    if len(inputs) == 4:
        dc, a, b, c_out = inputs
        a_shape = c.array(DIV_GRAD, "input A", a).shape
    else:
        b, c_out, dc = inputs
        a_shape = None
    return list(divide_gradient(dc, b, c_out, a_shape, broadcast=op.args["broadcast"],
                                axis=_axis(op)))


def _div_gradient_maker(ctx):
    """Caffe2's ``DivGradient(dC, A, B, C)``. A is read for its shape only (C's when Div ran in
    place), so it is named without a read and an in-place ``Div([A, B], [A])`` stays
    differentiable, as in Caffe2."""
    d = ctx.def_
    return [ctx.op(DIV_GRAD, [ctx.GO(0), d.input[0], ctx.I(1), ctx.O(0)],
                   [ctx.GI(0), ctx.GI(1)])]


def infer_legacy_binary(inputs, args):
    """Output shape of a binary operator with Caffe2's legacy ``broadcast`` argument (A's shape)
    or NumPy broadcasting (None when the shapes do not broadcast)."""
    (a_shape, dtype), (b_shape, _) = inputs
    if args["broadcast"]:
        return [(tuple(a_shape), dtype)]
    try:
        return [(tuple(np.broadcast_shapes(tuple(a_shape), tuple(b_shape))), dtype)]
    except ValueError:
        return [None]


LEGACY_BROADCAST = (
    Arg("broadcast", "bool", False, "Caffe2's legacy broadcast of input B over input A"),
    Arg("axis", "int", -1, "legacy broadcast: first dimension of A that B matches (-1: trailing)"),
    Arg("axis_str", "string", "", "legacy broadcast: the axis as a letter of 'order'"),
    Arg("order", "string", "NCHW", "legacy broadcast: the layout 'axis_str' refers to"),
)

_BROADCAST = LEGACY_BROADCAST

register(OpSchema(
    type=POW, kernel=_run_pow, num_inputs=(1, 2), inputs=("X", "exponent"), outputs=("Y",),
    args=(Arg("exponent", "float", None, "the power (else input 1 holds it)"), *_BROADCAST),
    allow_inplace={(0, 0), (1, 0)}, infer=c.same_as_input(0), gradient=_pow_gradient_maker,
    doc="Y = X^exponent (argument) or X^E (input 1, same shape or broadcast=1).",
))
register(OpSchema(
    type=POW_GRAD, kernel=_run_pow_gradient, num_inputs=(2, 4), num_outputs=(1, 2),
    inputs=("X", "dY"), outputs=("dX", "dE"),
    args=(Arg("exponent", "float", None, "the forward exponent"),
          Arg("from_output", "bool", False, "input 0 is the forward output (in-place Pow)"),
          *_BROADCAST),
    doc="(X, dY) -> dX = e*X^(e-1)*dY; (X, E, Y, dY) -> (dX, dE = ln(X)*Y*dY summed to E).",
    gradient=GRADIENT_NOT_REGISTERED,
))
register(OpSchema(
    type=DIV, kernel=_run_div, num_inputs=(2, 2), inputs=("A", "B"), outputs=("C",),
    args=_BROADCAST, allow_inplace={(0, 0), (1, 0)}, infer=infer_legacy_binary,
    gradient=_div_gradient_maker, doc="C = A / B (NumPy broadcasting, or legacy broadcast=1).",
))
register(OpSchema(
    type=DIV_GRAD, kernel=_run_div_gradient, num_inputs=(3, 4), num_outputs=(2, 2),
    inputs=("dC", "A", "B", "C"), outputs=("dA", "dB"), args=_BROADCAST,
    allow_inplace={(0, 0)},  # as Caffe2's: an in-place Div's gradient writes dA over dC
    doc="(dC, A, B, C) or legacy (B, C, dC) -> dA = dC/B, dB = -dC*C/B, each summed over "
        "broadcast dimensions.",
    gradient=GRADIENT_NOT_REGISTERED,
))
