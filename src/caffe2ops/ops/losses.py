"""SquaredL2Distance, SumElements, AveragedLoss, SumSqrElements and their gradients
(Caffe2 ``distance_op``, ``reduction_ops``).

* ``SquaredL2Distance(X, Y) -> Z[N]`` (rows along dim 0, a 0-d input is one row):
  Caffe2's formula ``z = (x·x + y·y)·0.5 − x·y`` (not ``½‖x−y‖²``), each dot product accumulated
  in float64 and rounded to the dtype as Caffe2's BLAS ``dot`` returned it; the final
  ``·0.5 − x·y`` in double, rounded once. Gradient ``dX = (X − Y)·dZ[row]``, ``dY = −dX``.
* ``SumElements(average=False) -> 0-d``: ``Σx`` (float64 accumulation, rounded once); with
  ``average`` the rounded sum times ``fl(1/numel)`` (Caffe2's order; an empty input gives 0).
  Gradient ``dX = dS`` (or ``fl(dS/numel)``) everywhere. ``AveragedLoss`` is SumElements with
  ``average=True``; ``SumSqrElements`` sums ``x²`` the same way (no gradient, as in Caffe2).

float16 computes in float32 and rounds once at the end.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from caffe2ops.errors import OperatorError, OperatorTypeError, OperatorValueError
from caffe2ops.ops import _common as c
from caffe2ops.runtime.schema import Arg, OpSchema, register

F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
L2, L2_GRAD = "SquaredL2Distance", "SquaredL2DistanceGradient"


def _ct(dtype: np.dtype) -> np.dtype:
    return F32 if dtype == F16 else dtype


def _row_dots(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", a, b, dtype=np.float64)


def squared_l2_distance(x: Any, y: Any, *, out: Any = None):
    """``z[i] = (x_i·x_i + y_i·y_i)·0.5 − x_i·y_i`` per row (dim 0; a 0-d input is one row);
    X and Y must have the same shape. Returns shape ``[N]``.

    >>> import numpy as np, caffe2ops as c2
    >>> c2.squared_l2_distance(np.array([[1.0, 2.0], [0.0, 0.0]], np.float32),
    ...                        np.array([[1.0, 0.0], [3.0, 4.0]], np.float32))
    array([ 2. , 12.5], dtype=float32)
    """
    x = c.float_input(L2, "input X", x)
    y = c.array(L2, "input Y", y)
    c.same_dtype(L2, "input Y", y, "X", x)
    c.same_shape(L2, "input Y", y, "X", x)
    n, d = c.rows_view(x)
    z = c.output(L2, out, (n,), x.dtype, no_alias=(x, y))
    ct = _ct(x.dtype)
    xm, ym = x.reshape(n, d), y.reshape(n, d)
    with np.errstate(all="ignore"):
        xx = _row_dots(xm, xm).astype(ct)
        yy = _row_dots(ym, ym).astype(ct)
        xy = _row_dots(xm, ym).astype(ct)
        s = (xx + yy).astype(np.float64)
        np.copyto(z, s * 0.5 - xy.astype(np.float64), casting="same_kind")
    return z


def squared_l2_distance_gradient(x: Any, y: Any, dz: Any, *, out: tuple | None = None):
    """``(dX, dY)``: ``dX = (X − Y)·dZ[row]``, ``dY = −dX``; ``dz`` has one value per row.

    >>> import numpy as np, caffe2ops as c2
    >>> c2.squared_l2_distance_gradient(np.array([[1.0, 2.0]]), np.array([[0.5, 2.0]]),
    ...                                 np.array([2.0]))
    (array([[1., 0.]]), array([[-1., -0.]]))
    """
    x = c.float_input(L2_GRAD, "input X", x)
    y = c.array(L2_GRAD, "input Y", y)
    c.same_dtype(L2_GRAD, "input Y", y, "X", x)
    c.same_shape(L2_GRAD, "input Y", y, "X", x)
    dz = c.array(L2_GRAD, "input dDistance", dz)
    c.same_dtype(L2_GRAD, "input dDistance", dz, "X", x)
    n, d = c.rows_view(x)
    if dz.ndim != 1 or dz.shape[0] != n:
        raise OperatorValueError(
            f"{L2_GRAD}: input dDistance must have shape [{n}] (one value per row of X); "
            f"got {dz.shape}"
        )
    outs = out or (None, None)
    dx = c.output(L2_GRAD, outs[0], x.shape, x.dtype, no_alias=(x, y, dz))
    dy = c.output(L2_GRAD, outs[1], x.shape, x.dtype, no_alias=(x, y, dz, dx))
    with np.errstate(all="ignore"):
        diff = np.subtract(x, y).reshape(n, d)
        np.multiply(diff, dz.reshape(n, 1), out=diff)
        np.copyto(dx, diff.reshape(x.shape))
        np.negative(dx, out=dy)
    return dx, dy


def _sum(op: str, x: Any, average: bool, square: bool, out: Any):
    x = c.float_input(op, "input X", x)
    if not isinstance(average, bool | np.bool_):
        raise OperatorTypeError(f"{op}: argument 'average' must be a bool; got "
                                  f"{type(average).__name__}")
    s = c.output(op, out, (), x.dtype, no_alias=(x,))
    ct = _ct(x.dtype)
    flat = x.reshape(-1)
    with np.errstate(all="ignore"):
        if square:
            total = np.einsum("i,i->", flat, flat, dtype=np.float64)
        else:
            total = np.add.reduce(flat, dtype=np.float64)
        value = ct.type(total)
        if average and flat.size:
            value = ct.type(value * ct.type(ct.type(1) / ct.type(flat.size)))
        np.copyto(s, value, casting="unsafe")
    return s


def sum_elements(x: Any, average: bool = False, *, out: Any = None):
    """``Σx`` as a 0-d array (float64 accumulation, rounded once); with ``average`` the sum
    times ``fl(1/numel)``. An empty input gives 0.

    >>> import numpy as np, caffe2ops as c2
    >>> c2.sum_elements(np.array([[1.0, 2.0], [3.0, 4.5]], np.float32))
    array(10.5, dtype=float32)
    >>> c2.sum_elements(np.array([1.0, 2.0, 4.0]), average=True)
    array(2.33333333)
    """
    return _sum("SumElements", x, average, False, out)


def sum_sqr_elements(x: Any, average: bool = False, *, out: Any = None):
    """``Σx²`` as a 0-d array (as :func:`sum_elements`, squares summed in float64).

    >>> import numpy as np, caffe2ops as c2
    >>> c2.sum_sqr_elements(np.array([3.0, 4.0], np.float32))
    array(25., dtype=float32)
    """
    return _sum("SumSqrElements", x, average, True, out)


def averaged_loss(x: Any, *, out: Any = None):
    """``Σx · fl(1/numel)`` as a 0-d array: :func:`sum_elements` with ``average=True``.

    >>> import numpy as np, caffe2ops as c2
    >>> c2.averaged_loss(np.array([1.0, 2.0, 6.0], np.float32))
    array(3., dtype=float32)
    """
    return _sum("AveragedLoss", x, True, False, out)


def _sum_gradient(op: str, x: Any, ds: Any, average: bool, out: Any):
    x = c.float_input(op, "input X", x)
    ds = c.array(op, "input dSum", ds)
    c.same_dtype(op, "input dSum", ds, "X", x)
    if ds.size != 1:
        raise OperatorValueError(f"{op}: input dSum must have exactly 1 element; got "
                                 f"{ds.size} (shape {ds.shape})")
    dx = c.output(op, out, x.shape, x.dtype, no_alias=(ds,))
    ct = _ct(x.dtype)
    g = ct.type(ds.reshape(-1)[0])
    with np.errstate(all="ignore"):
        if average and x.size:
            g = ct.type(g / ct.type(x.size))
        dx.fill(g)
    return dx


def sum_elements_gradient(x: Any, ds: Any, average: bool = False, *, out: Any = None):
    """``dX = dS`` everywhere, or ``fl(dS/numel)`` with ``average`` (X gives the shape).

    >>> import numpy as np, caffe2ops as c2
    >>> c2.sum_elements_gradient(np.zeros((2, 2)), np.array(3.0), average=True)
    array([[0.75, 0.75],
           [0.75, 0.75]])
    """
    return _sum_gradient("SumElementsGradient", x, ds, bool(average), out)


def averaged_loss_gradient(x: Any, ds: Any, *, out: Any = None):
    """``dX = fl(dS/numel)`` everywhere.

    >>> import numpy as np, caffe2ops as c2
    >>> c2.averaged_loss_gradient(np.zeros(4, np.float32), np.array([2.0], np.float32))
    array([0.5, 0.5, 0.5, 0.5], dtype=float32)
    """
    return _sum_gradient("AveragedLossGradient", x, ds, True, out)


# -- registration ------------------------------------------------------------------------------


def _free(buf, shape, dtype, *inputs):
    out = c.reusable(buf, shape, dtype)
    if out is not None and any(np.may_share_memory(out, a) for a in inputs):
        return None
    return out


def _run_l2(op, inputs, outs):
    x = c.float_input(L2, "input X", inputs[0])
    n, _ = c.rows_view(x)
    return [squared_l2_distance(x, inputs[1], out=_free(outs[0], (n,), x.dtype, *inputs))]


def _run_l2_gradient(op, inputs, outs):
    x = c.float_input(L2_GRAD, "input X", inputs[0])
    dx = _free(outs[0], x.shape, x.dtype, *inputs)
    dy = _free(outs[1], x.shape, x.dtype, *inputs)
    if dx is not None and dx is dy:
        dy = None
    return list(squared_l2_distance_gradient(x, inputs[1], inputs[2], out=(dx, dy)))


def _l2_maker(ctx):
    return [ctx.op(L2_GRAD, [ctx.I(0), ctx.I(1), ctx.GO(0)], [ctx.GI(0), ctx.GI(1)])]


def _sum_runner(op_type, square, fixed_average=None):
    def run(op, inputs, outs):
        x = c.float_input(op_type, "input X", inputs[0])
        average = fixed_average if fixed_average is not None else op.args["average"]
        return [_sum(op_type, x, average, square, _free(outs[0], (), x.dtype, x))]

    return run


def _sum_grad_runner(op_type, fixed_average=None):
    def run(op, inputs, outs):
        x = c.float_input(op_type, "input X", inputs[0])
        average = fixed_average if fixed_average is not None else op.args["average"]
        return [_sum_gradient(op_type, x, inputs[1], average,
                              _free(outs[0], x.shape, x.dtype, inputs[1]))]

    return run


def _sum_maker(grad_type):
    def maker(ctx):
        return [ctx.op(grad_type, [ctx.I(0), ctx.GO(0)], [ctx.GI(0)])]

    return maker


def _unregistered_gradient(ctx):
    raise OperatorError(f"{ctx.def_.type}: Caffe2 registers no gradient for this operator")


def _infer_scalar(inputs, args):
    return [((), inputs[0][1])]


def _infer_rows(inputs, args):
    shape = inputs[0][0]
    return [((shape[0] if len(shape) else 1,), inputs[0][1])]


def _infer_l2_grad(inputs, args):
    return [inputs[0], inputs[0]]


_AVERAGE = (Arg("average", "bool", False, "divide the sum by the number of elements"),)

register(OpSchema(
    type=L2, kernel=_run_l2, num_inputs=(2, 2), inputs=("X", "Y"), outputs=("Z",),
    infer=_infer_rows, gradient=_l2_maker,
    doc="Z[i] = (x_i·x_i + y_i·y_i)·0.5 − x_i·y_i per row (Caffe2's formula).",
))
register(OpSchema(
    type=L2_GRAD, kernel=_run_l2_gradient, num_inputs=(3, 3), num_outputs=(2, 2),
    inputs=("X", "Y", "dDistance"), outputs=("dX", "dY"), infer=_infer_l2_grad,
    doc="dX = (X − Y)·dDistance[row], dY = −dX.",
))
register(OpSchema(
    type="SumElements", kernel=_sum_runner("SumElements", False), inputs=("X",),
    outputs=("sum",), args=_AVERAGE, infer=_infer_scalar,
    gradient=_sum_maker("SumElementsGradient"),
    doc="Sum of all elements (0-d); times fl(1/numel) with average.",
))
register(OpSchema(
    type="SumElementsGradient", kernel=_sum_grad_runner("SumElementsGradient"),
    num_inputs=(2, 2), inputs=("X", "dSum"), outputs=("dX",), args=_AVERAGE,
    infer=c.same_as_input(0), doc="dX = dSum (or dSum/numel with average) everywhere.",
))
register(OpSchema(
    type="AveragedLoss", kernel=_sum_runner("AveragedLoss", False, True), inputs=("input",),
    outputs=("output",), infer=_infer_scalar, gradient=_sum_maker("AveragedLossGradient"),
    doc="Mean of all elements (0-d): the sum times fl(1/numel).",
))
register(OpSchema(
    type="AveragedLossGradient", kernel=_sum_grad_runner("AveragedLossGradient", True),
    num_inputs=(2, 2), inputs=("X", "dSum"), outputs=("dX",), infer=c.same_as_input(0),
    doc="dX = dSum/numel everywhere.",
))
register(OpSchema(
    type="SumSqrElements", kernel=_sum_runner("SumSqrElements", True), inputs=("X",),
    outputs=("sum",), args=_AVERAGE, infer=_infer_scalar, gradient=_unregistered_gradient,
    doc="Sum of squares of all elements (0-d); times fl(1/numel) with average.",
))
