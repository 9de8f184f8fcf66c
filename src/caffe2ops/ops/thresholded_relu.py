"""ThresholdedRelu and ThresholdedReluGradient (Caffe2 ``thresholded_relu_op.{h,cc}``).

Forward: ``y = x > alpha ? x : +0`` — no shift by alpha (public descriptions that subtract alpha
are wrong), NaN gives +0, ``x == alpha`` gives 0. Gradient from the output:
``dX = Y > 0 ? dY : +0``. That equals ``1[x > alpha]·dY`` only for ``alpha >= 0``, so for a
negative alpha the gradient maker reads X as well and the gradient op uses ``X > alpha`` (Caffe2
returned ``-dY`` on ``(alpha, 0)`` there).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from caffe2ops.errors import OperatorValueError
from caffe2ops.ops import _common as c
from caffe2ops.ops._dispatch import CpuKernels
from caffe2ops.runtime.schema import GRADIENT_NOT_REGISTERED, Arg, OpSchema, register

KERNELS = CpuKernels("thresholded_relu")  # caffe2ops/kernels/cpu/thresholded_relu.py


def _alpha(op: str, dtype: np.dtype, alpha: Any):
    return c.to_float_dtype(dtype, c.float_arg(op, "alpha", alpha))


def thresholded_relu_reference(x: np.ndarray, alpha: Any, out: np.ndarray) -> np.ndarray:
    drop = np.greater(x, alpha, out=np.empty(x.shape, dtype=bool))  # an array even for 0-d x
    if out is not x:
        np.copyto(out, x)
    np.logical_not(drop, out=drop)
    np.copyto(out, 0, where=drop)
    return out


def thresholded_relu_gradient_reference(y: np.ndarray, dy: np.ndarray, out: np.ndarray):
    drop = np.greater(y, 0, out=np.empty(y.shape, dtype=bool))
    if out is not dy:
        np.copyto(out, dy)
    np.logical_not(drop, out=drop)
    np.copyto(out, 0, where=drop)
    return out


def thresholded_relu_gradient_from_x_reference(x, dy, alpha, out):
    return thresholded_relu_gradient_reference(np.greater(x, alpha), dy, out)


def thresholded_relu(x: Any, alpha: float = 1.0, *, out: Any = None):
    """``y = x`` where ``x > alpha`` (strict), else ``+0`` — no shift by alpha.

    NaN gives +0 (as ONNX and Caffe2; PyTorch's threshold keeps NaN). ``out`` may be ``x``.

    >>> import numpy as np, caffe2ops as c2
    >>> c2.thresholded_relu(np.array([-1.5, 0.0, 1.2, 2.0, 2.2, np.nan]), alpha=2.0)
    array([0. , 0. , 0. , 0. , 2.2, 0. ])
    """
    x = c.float_input("ThresholdedRelu", "input X", x)
    a = _alpha("ThresholdedRelu", x.dtype, alpha)
    y = c.output("ThresholdedRelu", out, x.shape, x.dtype)
    x = c.unaliased(x, y)
    kernel = KERNELS.get("thresholded_relu", x, y) or thresholded_relu_reference
    return kernel(x, a, y)


def thresholded_relu_gradient(
    y: Any, dy: Any, *, x: Any = None, alpha: float = 1.0, out: Any = None
):
    """``dX = dY`` where ``Y > 0``, else ``+0``; with ``x`` given, where ``x > alpha`` instead.

    The ``Y > 0`` rule is exact for ``alpha >= 0``; pass ``x`` (the forward input) for a negative
    alpha. ``out`` may be ``dy``.

    >>> import numpy as np, caffe2ops as c2
    >>> y = c2.thresholded_relu(np.array([-0.5, 0.0, 3.0]), alpha=-1.0)
    >>> c2.thresholded_relu_gradient(y, np.ones(3), x=np.array([-0.5, 0.0, 3.0]), alpha=-1.0)
    array([1., 1., 1.])
    >>> c2.thresholded_relu_gradient(np.array([0.0, 2.0]), np.array([5.0, 5.0]))
    array([0., 5.])
    """
    op = "ThresholdedReluGradient"
    y = c.float_input(op, "input Y", y)
    dy = c.array(op, "input dY", dy)
    c.same_dtype(op, "input dY", dy, "Y", y)
    if dy.size != y.size:
        raise OperatorValueError(
            f"{op}: input dY must have as many elements as Y ({y.size}); got {dy.size}"
        )
    dy = dy.reshape(y.shape)
    if x is not None:
        x = c.array(op, "input X", x)
        c.same_dtype(op, "input X", x, "Y", y)
        c.same_shape(op, "input X", x, "Y", y)
        a = _alpha(op, y.dtype, alpha)
    dx = c.output(op, out, y.shape, y.dtype)
    y, dy = c.unaliased(y, dx), c.unaliased(dy, dx)
    if x is not None:
        x = c.unaliased(x, dx)
    if x is None:
        kernel = KERNELS.get("thresholded_relu_gradient", y, dy, dx)
        return (kernel or thresholded_relu_gradient_reference)(y, dy, dx)
    kernel = KERNELS.get("thresholded_relu_gradient_from_x", x, dy, dx)
    return (kernel or thresholded_relu_gradient_from_x_reference)(x, dy, a, dx)


def _run(op, inputs, outs):
    x = inputs[0]
    return [thresholded_relu(x, op.args["alpha"], out=c.reusable_like(outs[0], x))]


def _run_gradient(op, inputs, outs):
    y = inputs[0]
    x = inputs[2] if len(inputs) > 2 else None
    return [thresholded_relu_gradient(y, inputs[1], x=x, alpha=op.args["alpha"],
                                      out=c.reusable_like(outs[0], y))]


def _gradient_maker(ctx):
    if ctx.arg("alpha") < 0:
        inputs = [ctx.O(0), ctx.GO(0), ctx.I(0)]
    else:
        inputs = [ctx.O(0), ctx.GO(0)]
    return [ctx.op("ThresholdedReluGradient", inputs, [ctx.GI(0)])]


_ALPHA = (Arg("alpha", "float", 1.0, "threshold; y = x where x > alpha, else 0"),)

register(OpSchema(
    type="ThresholdedRelu", kernel=_run, inputs=("X",), outputs=("Y",), args=_ALPHA,
    allow_inplace={(0, 0)}, infer=c.same_as_input(0), gradient=_gradient_maker,
    doc=__doc__.split("\n\n")[1],
))
register(OpSchema(
    type="ThresholdedReluGradient", kernel=_run_gradient, num_inputs=(2, 3),
    inputs=("Y", "dY", "X"), outputs=("dX",), args=_ALPHA, allow_inplace={(1, 0)},
    infer=c.same_as_input(0),
    doc="dX = dY where Y > 0 (or, given X, where X > alpha), else +0.",
    gradient=GRADIENT_NOT_REGISTERED,
))
