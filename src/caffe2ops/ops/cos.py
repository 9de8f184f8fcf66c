"""Cos and CosGradient (Caffe2 ``caffe2/operators/cos_op.{h,cc}``).

Forward ``y = cos(x)`` within 2.5e-7 (absolute + relative) of the float64 cosine. Gradient
``dX = (-dY)·sin(X)``: it reads the input X, so Cos cannot run in place.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from caffe2ops.ops import _common as c
from caffe2ops.ops._dispatch import CpuKernels
from caffe2ops.runtime.schema import GRADIENT_NOT_REGISTERED, OpSchema, register

KERNELS = CpuKernels("cos")  # caffe2ops/kernels/cpu/cos.py


def cos_reference(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``fl(cos(double(x)))``: correctly rounded in practice."""
    with np.errstate(invalid="ignore"):  # cos(±inf) is NaN, as documented
        if x.dtype == np.float64:
            return np.cos(x, out=out)
        np.copyto(out, np.cos(x, dtype=np.float64), casting="same_kind")
    return out


def sin_rounded(x: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        if x.dtype == np.float64:
            return np.sin(x)
        return np.sin(x, dtype=np.float64).astype(x.dtype)


def cos_gradient_reference(x: np.ndarray, dy: np.ndarray, out: np.ndarray) -> np.ndarray:
    s = sin_rounded(x)
    np.negative(dy, out=out)
    return np.multiply(out, s, out=out)


def cos(x: Any, *, out: Any = None):
    """Element-wise cosine, ``y = cos(x)``, within 2.5e-7 of float64 ``cos``; NaN/±inf give NaN.

    >>> import numpy as np, caffe2ops as c2
    >>> c2.cos(np.array([0.0, np.pi, np.inf], dtype=np.float32))
    array([ 1., -1., nan], dtype=float32)
    """
    x = c.float_input("Cos", "input X", x)
    y = c.output("Cos", out, x.shape, x.dtype)
    x = c.unaliased(x, y)
    kernel = KERNELS.get("cos", x, y) or cos_reference
    return kernel(x, y)


def cos_gradient(x: Any, dy: Any, *, out: Any = None):
    """Gradient of :func:`cos`: ``dX = (-dY)·sin(X)``.

    >>> import numpy as np, caffe2ops as c2
    >>> c2.cos_gradient(np.array([0.0, np.pi / 2]), np.array([2.0, 2.0]))
    array([-0., -2.])
    """
    x = c.float_input("CosGradient", "input X", x)
    dy = c.array("CosGradient", "input dY", dy)
    c.same_dtype("CosGradient", "input dY", dy, "X", x)
    c.same_shape("CosGradient", "input dY", dy, "X", x)
    dx = c.output("CosGradient", out, x.shape, x.dtype)
    x, dy = c.unaliased(x, dx), c.unaliased(dy, dx)
    kernel = KERNELS.get("cos_gradient", x, dy, dx) or cos_gradient_reference
    return kernel(x, dy, dx)


def _run(op, inputs, outs):
    return [cos(inputs[0], out=c.reusable_like(outs[0], inputs[0]))]


def _run_gradient(op, inputs, outs):
    return [cos_gradient(inputs[0], inputs[1], out=c.reusable_like(outs[0], inputs[0]))]


def _gradient_maker(ctx):
    return [ctx.op("CosGradient", [ctx.I(0), ctx.GO(0)], [ctx.GI(0)])]


register(OpSchema(
    type="Cos", kernel=_run, inputs=("X",), outputs=("Y",), infer=c.same_as_input(0),
    gradient=_gradient_maker, doc=__doc__.split("\n\n")[1],
))
register(OpSchema(
    type="CosGradient", kernel=_run_gradient, num_inputs=(2, 2), inputs=("X", "dY"),
    outputs=("dX",), infer=c.same_as_input(0),
    doc="dX = (-dY) * sin(X).",
    gradient=GRADIENT_NOT_REGISTERED,
))
