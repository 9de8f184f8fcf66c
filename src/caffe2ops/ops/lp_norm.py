"""LpNorm and LpNormGradient (Caffe2 ``caffe2/operators/lpnorm_op.{h,cc}``).

``p=1``: ``N = Σ|x|``; ``p=2``: ``N = Σx²`` (Caffe2's definition: the square, not the root);
divided by ``numel`` if ``average``. Output shape ``[1]`` in the input's dtype; the sum
accumulates in float64 and is rounded once. Gradient (Caffe2's formula), with
``s = dN/size`` (``size = numel`` if average, else 1): ``p=2``: ``dX = (2x)·s``;
``p=1``: ``dX = sign(x)·s`` with a dead zone ``|x| <= 1e-12`` (and NaN) giving 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from caffe2ops.errors import OperatorTypeError, OperatorValueError
from caffe2ops.ops import _common as c
from caffe2ops.ops._dispatch import CpuKernels
from caffe2ops.runtime.schema import GRADIENT_NOT_REGISTERED, Arg, OpSchema, register

KERNELS = CpuKernels("norms")  # caffe2ops/kernels/cpu/norms.py (shared with the toolkit)
OP, GRAD = "LpNorm", "LpNormGradient"
EPS = 1e-12
_CHUNK = 1 << 18  # elements of |x| held at a time
_SMALL = 1 << 13  # below this, a float64 copy and a dot product are faster than einsum


def check_p(op: str, p: Any) -> int:
    """``p`` must be 1 or 2 (an int; an integral float is accepted)."""
    if isinstance(p, bool) or not isinstance(p, int | float | np.integer | np.floating):
        raise OperatorTypeError(f"{op}: argument 'p' must be an int (1 or 2); got "
                                f"{type(p).__name__}")
    if p not in (1, 2):
        raise OperatorValueError(f"{op}: argument 'p' must be 1 or 2; got {p}")
    return int(p)


def lp_norm_reference(x: np.ndarray, p: int, average: bool, out: np.ndarray,
                      total: float | None = None) -> np.ndarray:
    """``Σ|x|`` or ``Σx²`` (/numel) accumulated in float64, rounded once into ``out`` ([1]);
    ``total``: that float64 sum, computed by the caller."""
    flat = x.reshape(-1)
    with np.errstate(over="ignore", invalid="ignore"):
        if total is None:
            total = _reference_total(flat, p)
        if average:
            total /= flat.size
        np.copyto(out, np.float64(total), casting="unsafe")
    return out


def _reference_total(flat: np.ndarray, p: int) -> float:
    if p == 2 and flat.size <= _SMALL:
        f64 = flat.astype(np.float64, copy=False)
        return float(np.dot(f64, f64))
    if p == 2:  # einsum casts to float64 in buffered blocks: no float64 copy of x
        return float(np.einsum("i,i->", flat, flat, dtype=np.float64))
    total = 0.0
    for start in range(0, flat.size, _CHUNK):
        total += float(np.add.reduce(np.abs(flat[start:start + _CHUNK]), dtype=np.float64))
    return total


def _fast_total(x: np.ndarray, p: int) -> float | None:
    """The float64 sum from the CPU norms kernel (one thread, vector lanes) for float32 ``x``,
    else None. Each float32 square is exact in float64, so the float64 sums of the kernel and of
    the reference differ by rounding alone (relative ~n·2^-53) and round to the same float32
    except within that distance of a float32 rounding boundary. float64 ``x`` keeps the
    reference, whose float64 result depends on the summation order."""
    if x.dtype != np.float32:
        return None
    kernel = KERNELS.get("sum_squares" if p == 2 else "sum_abs", x)
    return None if kernel is None else float(kernel(x.reshape(-1)))


def lp_norm_gradient_reference(
    x: np.ndarray, dn: Any, p: int, average: bool, out: np.ndarray
) -> np.ndarray:
    """Caffe2's ``dX``: ``(2x)·(dN/size)`` for p=2, ``sign_eps(x)·(dN/size)`` for p=1."""
    if x.size == 0:
        return out
    ct = c.compute_dtype(x.dtype)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        s = ct.type(ct.type(dn) / ct.type(x.size if average else 1))
        xc = x.astype(ct, copy=False)
        if p == 2:
            r = (xc * ct.type(2)) * s
        else:
            eps = ct.type(EPS)
            r = ((xc > eps).astype(ct) - (xc < -eps).astype(ct)) * s
        np.copyto(out, r, casting="same_kind")
    return out


def lp_norm(x: Any, p: int = 2, average: bool = False, *, out: Any = None):
    """``N = Σ|x|`` (p=1) or ``N = Σx²`` (p=2, the square: no root), ``/numel`` if ``average``.

    Returns shape ``(1,)`` in ``x``'s dtype; accumulates in float64 and rounds once (float16
    inputs too). NaN propagates; an empty ``x`` gives 0, but ``average`` with an empty ``x``
    raises (Caffe2: size > 0).

    >>> import numpy as np, caffe2ops as c2
    >>> c2.lp_norm(np.array([5.0, 2.0], dtype=np.float32))
    array([29.], dtype=float32)
    >>> c2.lp_norm(np.array([-1.0, 2.0, -3.0]), p=1, average=True)
    array([2.])
    """
    x = c.float_input(OP, "input X", x)
    p = check_p(OP, p)
    average = c.bool_arg(OP, "average", average)
    if average and x.size == 0:
        raise OperatorValueError(f"{OP}: input X is empty, so its average norm is undefined")
    y = c.output(OP, out, (1,), x.dtype)
    return lp_norm_reference(x, p, average, y, _fast_total(x, p))


def lp_norm_gradient(x: Any, dn: Any, p: int = 2, average: bool = False, *, out: Any = None):
    """Gradient of :func:`lp_norm` (Caffe2's formula), ``s = dN/size`` with ``size = numel``
    if ``average`` else 1: ``p=2``: ``dX = (2x)·s``; ``p=1``: ``dX = sign(x)·s`` where
    ``|x| <= 1e-12`` (and NaN) gives 0. ``dn`` has 1 element of ``x``'s dtype.

    >>> import numpy as np, caffe2ops as c2
    >>> c2.lp_norm_gradient(np.array([5.0, -2.0]), np.array([0.5]))
    array([ 5., -2.])
    >>> c2.lp_norm_gradient(np.array([3.0, 0.0, -1e-13, -2.0]), np.array([1.0]), p=1)
    array([ 1.,  0.,  0., -1.])
    """
    x = c.float_input(GRAD, "input X", x)
    dn = c.array(GRAD, "input dN", dn)
    c.same_dtype(GRAD, "input dN", dn, "X", x)
    if dn.size != 1:
        raise OperatorValueError(
            f"{GRAD}: input dN must have exactly 1 element; got {dn.size} (shape {dn.shape})"
        )
    p = check_p(GRAD, p)
    average = c.bool_arg(GRAD, "average", average)
    dx = c.output(GRAD, out, x.shape, x.dtype)
    return lp_norm_gradient_reference(x, dn.reshape(-1)[0], p, average, dx)


def _run(op, inputs, outs):
    x = inputs[0]
    return [lp_norm(x, op.args["p"], op.args["average"], out=c.reusable_like(outs[0], x, (1,)))]


def _run_gradient(op, inputs, outs):
    x = inputs[0]
    out = c.reusable_like(outs[0], x)
    if out is not None and np.may_share_memory(out, inputs[1]):
        out = None
    return [lp_norm_gradient(x, inputs[1], op.args["p"], op.args["average"], out=out)]


def _gradient_maker(ctx):
    return [ctx.op(GRAD, [ctx.I(0), ctx.GO(0)], [ctx.GI(0)])]


def _check_args(op_type: str, args: dict) -> None:
    check_p(op_type, args["p"])


def _infer(inputs, args):
    return [((1,), inputs[0][1])]


_ARGS = (
    Arg("p", "int", 2, "order of the norm: 1 (sum |x|) or 2 (sum x^2)"),
    Arg("average", "bool", False, "divide by the number of elements"),
)

register(OpSchema(
    type=OP, kernel=_run, inputs=("X",), outputs=("Z",), args=_ARGS, infer=_infer,
    check_args=_check_args, gradient=_gradient_maker, doc=__doc__.split("\n\n")[1],
))
register(OpSchema(
    type=GRAD, kernel=_run_gradient, num_inputs=(2, 2), inputs=("X", "dout"), outputs=("dx",),
    args=_ARGS, infer=c.same_as_input(0), check_args=_check_args,
    doc="p=2: dX = 2x*dN/size; p=1: dX = sign(x)*dN/size, 0 where |x| <= 1e-12.",
    gradient=GRADIENT_NOT_REGISTERED,
))
