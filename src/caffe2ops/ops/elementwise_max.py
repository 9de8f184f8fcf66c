"""Max and MaxGradient (Caffe2 ``caffe2/operators/minmax_ops.{h,cc}``).

``Max(X0, X1, ...) -> M``: inputs of one shape and dtype, folded left to right with Caffe2's
``m = m < x ? x : m`` (Eigen ``max``): a NaN already in ``m`` stays, a NaN in a later input is
skipped, and of ``-0``/``+0`` the earlier one wins. ``MaxGradient(M, dM, X0, X1, ...)`` gives
every input ``dX_i = dM·(X_i == M ? 1 : 0)`` (ties all receive the gradient; ``inf·0`` is NaN,
as in Caffe2). Caffe2 1.5.0 read past the end of a smaller second input; we refuse any shape
mismatch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from caffe2ops.errors import OperatorValueError
from caffe2ops.ops import _common as c
from caffe2ops.runtime.schema import OpSchema, register

OP, GRAD = "Max", "MaxGradient"


def _inputs(op: str, xs, first: str = "input 0", offset: int = 0) -> list[np.ndarray]:
    if not xs:
        raise OperatorValueError(f"{op}: needs at least one input")
    x0 = c.float_input(op, first, xs[0])
    arrays = [x0]
    for i, x in enumerate(xs[1:], 1):
        what = f"input {i + offset}"
        x = c.array(op, what, x)
        c.same_dtype(op, what, x, first, x0)
        c.same_shape(op, what, x, first, x0)
        arrays.append(x)
    return arrays


def max_reference(arrays: list[np.ndarray], out: np.ndarray) -> np.ndarray:
    later = [x.copy() if np.may_share_memory(x, out) and x is not out else x for x in arrays[1:]]
    if out is not arrays[0]:
        np.copyto(out, arrays[0])
    mask = np.empty(out.shape, dtype=bool)
    for x in later:
        np.less(out, x, out=mask)
        np.copyto(out, x, where=mask)
    return out


def elementwise_max(*xs: Any, out: Any = None):
    """Element-wise maximum of one or more arrays of the same shape and dtype, folded left to
    right as ``m = m < x ? x : m`` (a NaN in the first input stays; in later ones it is skipped).
    ``out`` may be the first input.

    >>> import numpy as np, caffe2ops as c2
    >>> c2.elementwise_max(np.array([1.0, np.nan, 3.0]), np.array([2.0, 0.0, np.nan]))
    array([ 2., nan,  3.])
    """
    arrays = _inputs(OP, xs)
    y = c.output(OP, out, arrays[0].shape, arrays[0].dtype, no_alias=tuple(arrays[1:]))
    return max_reference(arrays, y)


def elementwise_max_gradient(m: Any, dm: Any, *xs: Any, out: tuple | None = None) -> tuple:
    """``dX_i = dM·(X_i == M)`` for each forward input ``X_i`` (ties all get ``dM``).

    >>> import numpy as np, caffe2ops as c2
    >>> c2.elementwise_max_gradient(np.array([2.0, 3.0]), np.array([1.0, 5.0]),
    ...                             np.array([2.0, 3.0]), np.array([1.0, 3.0]))
    (array([1., 5.]), array([0., 5.]))
    """
    m = c.float_input(GRAD, "input M", m)
    dm = c.array(GRAD, "input dM", dm)
    c.same_dtype(GRAD, "input dM", dm, "M", m)
    c.same_shape(GRAD, "input dM", dm, "M", m)
    arrays = _inputs(GRAD, (m, *xs), first="input M", offset=1)[1:]
    outs = tuple(out) if out is not None else (None,) * len(arrays)
    if len(outs) != len(arrays):
        raise OperatorValueError(f"{GRAD}: out must hold {len(arrays)} arrays; got {len(outs)}")
    result = []
    with np.errstate(invalid="ignore"):
        for x, buf in zip(arrays, outs, strict=True):
            dx = c.output(GRAD, buf, m.shape, m.dtype, no_alias=(m, dm, *arrays, *result))
            np.multiply(dm, np.equal(x, m).astype(m.dtype), out=dx)
            result.append(dx)
    return tuple(result)


def _run(op, inputs, outs):
    arrays = _inputs(OP, inputs)
    out = c.reusable(outs[0], arrays[0].shape, arrays[0].dtype)
    if out is not None and any(np.may_share_memory(out, x) for x in arrays[1:]):
        out = None
    return [elementwise_max(*arrays, out=out)]


def _run_gradient(op, inputs, outs):
    if len(outs) != len(inputs) - 2:
        raise OperatorValueError(
            f"{GRAD}: needs one output per forward input: {len(inputs) - 2} inputs after M and "
            f"dM, but {len(outs)} outputs"
        )
    m = c.float_input(GRAD, "input M", inputs[0])
    bufs = []
    for buf in outs:
        r = c.reusable(buf, m.shape, m.dtype)
        if r is not None and (any(np.may_share_memory(r, x) for x in inputs)
                              or any(r is b for b in bufs)):
            r = None
        bufs.append(r)
    return list(elementwise_max_gradient(m, inputs[1], *inputs[2:], out=tuple(bufs)))


def _gradient_maker(ctx):
    n = len(ctx.def_.input)
    return [ctx.op(GRAD, [ctx.O(0), ctx.GO(0), *(ctx.I(i) for i in range(n))],
                   [ctx.GI(i) for i in range(n)])]


def _infer_gradient(inputs, args):
    return [inputs[0]] * (len(inputs) - 2)


register(OpSchema(
    type=OP, kernel=_run, num_inputs=(1, 1 << 30), inputs=("X",), outputs=("M",),
    allow_inplace={(0, 0)}, infer=c.same_as_input(0), gradient=_gradient_maker,
    doc="Element-wise max of inputs of one shape: m = m < x ? x : m.",
))
register(OpSchema(
    type=GRAD, kernel=_run_gradient, num_inputs=(3, 1 << 30), num_outputs=(1, 1 << 30),
    inputs=("M", "dM", "X"), outputs=("dX",), infer=_infer_gradient,
    doc="dX_i = dM·(X_i == M) for every forward input.",
))
