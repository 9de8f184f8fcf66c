"""Clip and ClipGradient (Caffe2 ``caffe2/operators/clip_op.{h,cc}``).

Forward, per element: ``m = x < lo ? lo : x;  y = hi < m ? hi : m`` — NaN stays NaN, ``lo > hi``
gives ``hi``, ties keep ``x`` (so ``-0.0`` stays ``-0.0`` with ``min=0``), a NaN bound is ignored.
Omitted bounds are the dtype's finite lowest/max, so ``±inf`` becomes ``±max``, as in Caffe2.
Gradient (reads the output Y, so the forward may run in place):
``dX = dY`` where ``lo < Y < hi`` strictly, else ``dY·0`` — 0 on the bounds, unlike PyTorch (1).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from caffe2ops.errors import OperatorValueError
from caffe2ops.ops import _common as c
from caffe2ops.ops._dispatch import CpuKernels
from caffe2ops.runtime.schema import GRADIENT_NOT_REGISTERED, Arg, OpSchema, register

KERNELS = CpuKernels("clip")  # caffe2ops/kernels/cpu/clip.py


def bounds(op: str, dtype: np.dtype, min: Any, max: Any) -> tuple[Any, Any]:
    """``(lo, hi)`` as scalars of ``dtype``: defaults are the dtype's limits; float bounds are
    rounded to the dtype (beyond its range: ±inf, which Clip then treats as ±max); for integer
    dtypes a bound is exact: integers as they are, floats rounded inward (ceil/floor), then
    saturated to the dtype's range; a NaN bound is ignored."""
    lowest, highest = c.LIMITS[dtype]
    if dtype.kind == "f":
        lo = lowest if min is None else c.to_float_dtype(dtype, c.float_arg(op, "min", min))
        hi = highest if max is None else c.to_float_dtype(dtype, c.float_arg(op, "max", max))
        return lo, hi
    lo = lowest if min is None else c.int_bound(dtype, c.number_arg(op, "min", min), False)
    hi = highest if max is None else c.int_bound(dtype, c.number_arg(op, "max", max), True)
    return lo, hi


def clip_reference(x: np.ndarray, lo: Any, hi: Any, out: np.ndarray) -> np.ndarray:
    """The formula, literally: ``m = x < lo ? lo : x; y = hi < m ? hi : m``."""
    mask = np.less(x, lo, out=np.empty(x.shape, dtype=bool))  # an array even for 0-d x
    if out is not x:
        np.copyto(out, x)
    np.copyto(out, lo, where=mask)
    np.less(hi, out, out=mask)
    np.copyto(out, hi, where=mask)
    return out


def clip_gradient_reference(
    y: np.ndarray, dy: np.ndarray, lo: Any, hi: Any, out: np.ndarray
) -> np.ndarray:
    """``dX = dY · (lo < Y < hi)``, multiplied in the dtype (masked entries are ±0 or NaN)."""
    mask = np.less(lo, y)
    mask &= np.less(y, hi)
    with np.errstate(invalid="ignore"):  # ±inf·0 = NaN, as documented
        return np.multiply(dy, mask, out=out)


def clip(x: Any, min: float | None = None, max: float | None = None, *, out: Any = None):
    """Clip ``x`` to ``[min, max]``: ``y = hi < m ? hi : m`` with ``m = x < lo ? lo : x``.

    Edge cases: NaN stays NaN; ``min > max`` gives ``max``; omitted bounds are the dtype's finite
    limits, so ``±inf`` becomes ``±max`` (Caffe2, onnxruntime); a NaN bound is ignored. Works on
    float16/32/64 and integer arrays; ``out`` may be ``x`` (in place).

    >>> import numpy as np, caffe2ops as c2
    >>> c2.clip(np.array([-2.0, 0.5, np.nan, np.inf], dtype=np.float32), min=-1, max=1)
    array([-1. ,  0.5,  nan,  1. ], dtype=float32)
    >>> c2.clip(np.array([np.inf], dtype=np.float32))
    array([3.4028235e+38], dtype=float32)
    >>> c2.clip(np.array([1, 5, 9]), min=2.5, max=8.5)
    array([3, 5, 8])
    """
    x = c.array("Clip", "input X", x)
    c.require_dtype("Clip", "input X", x, c.NUMERIC_DTYPES, c.NUMERIC_TEXT)
    lo, hi = bounds("Clip", x.dtype, min, max)
    y = c.output("Clip", out, x.shape, x.dtype)
    x = c.unaliased(x, y)
    kernel = KERNELS.get("clip", x, y) or clip_reference
    return kernel(x, lo, hi, y)


def clip_gradient(
    y: Any, dy: Any, min: float | None = None, max: float | None = None, *, out: Any = None
):
    """Gradient of :func:`clip` from its output: ``dX = dY`` where ``min < Y < max`` (strict),
    else ``dY·0``.

    Points on a bound (clipped or not) get 0; NaN ``Y`` gets 0; ``out`` may be ``dy``.

    >>> import numpy as np, caffe2ops as c2
    >>> y = np.array([-1.0, 0.5, 1.0], dtype=np.float32)
    >>> c2.clip_gradient(y, np.ones(3, np.float32), min=-1, max=1)
    array([0., 1., 0.], dtype=float32)
    """
    y = c.array("ClipGradient", "input Y", y)
    dy = c.array("ClipGradient", "input dY", dy)
    c.require_dtype("ClipGradient", "input Y", y, c.NUMERIC_DTYPES, c.NUMERIC_TEXT)
    c.same_dtype("ClipGradient", "input dY", dy, "Y", y)
    if dy.size != y.size:
        raise OperatorValueError(
            f"ClipGradient: input dY must have as many elements as Y ({y.size}); got {dy.size}"
        )
    dy = dy.reshape(y.shape)
    lo, hi = bounds("ClipGradient", y.dtype, min, max)
    dx = c.output("ClipGradient", out, y.shape, y.dtype)
    y, dy = c.unaliased(y, dx), c.unaliased(dy, dx)
    kernel = KERNELS.get("clip_gradient", y, dy, dx) or clip_gradient_reference
    return kernel(y, dy, lo, hi, dx)


def _run_clip(op, inputs, outs):
    x = inputs[0]
    return [clip(x, op.args["min"], op.args["max"], out=c.reusable_like(outs[0], x))]


def _run_clip_gradient(op, inputs, outs):
    y = inputs[0]
    return [clip_gradient(y, inputs[1], op.args["min"], op.args["max"],
                          out=c.reusable_like(outs[0], y))]


def _clip_gradient_maker(ctx):
    return [ctx.op("ClipGradient", [ctx.O(0), ctx.GO(0)], [ctx.GI(0)])]


_BOUNDS = (
    Arg("min", "float", None, "lower bound; default the dtype's lowest finite value"),
    Arg("max", "float", None, "upper bound; default the dtype's largest finite value"),
)

register(OpSchema(
    type="Clip", kernel=_run_clip, inputs=("X",), outputs=("Y",), args=_BOUNDS,
    allow_inplace={(0, 0)}, infer=c.same_as_input(0), gradient=_clip_gradient_maker,
    doc=__doc__.split("\n\n")[1],
))
register(OpSchema(
    type="ClipGradient", kernel=_run_clip_gradient, num_inputs=(2, 2), inputs=("Y", "dY"),
    outputs=("dX",), args=_BOUNDS, allow_inplace={(1, 0)}, infer=c.same_as_input(0),
    doc="dX = dY where min < Y < max (strict), else dY*0.",
    gradient=GRADIENT_NOT_REGISTERED,
))
