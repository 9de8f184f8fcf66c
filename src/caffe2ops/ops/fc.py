"""FC and FCGradient (Caffe2 ``caffe2/operators/fully_connected_op.{h,cc}``).

``X`` is read as an ``M×K`` matrix (``M`` = product of the dimensions before ``axis``, ``K`` = the
rest), ``W`` as ``N×K`` (``N`` = product of the dimensions before ``axis_w``), ``b`` has ``N``
elements; ``Y = X·Wᵀ + b`` has shape ``X.shape[:axis] + (N,)``. As in Caffe2 the product is one
BLAS GEMM written into the output buffer and the bias is then added (``fl(fl(X·Wᵀ) + b)``), so
results differ from Caffe2's MKL only by the GEMM's summation order (bound in tests/parity).
Gradient ``FCGradient(X, W, dY) -> (dW, db[, dX])``: ``dW = dYᵀ·X`` (W's shape),
``db = dYᵀ·1`` (shape ``[N]``), ``dX = dY·W`` (X's shape). float16 computes in float32 and rounds
once; float64 uses double-precision BLAS.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from caffe2ops.errors import OperatorTypeError, OperatorValueError
from caffe2ops.ops import _common as c
from caffe2ops.runtime.schema import Arg, OpSchema, register

OP, GRAD = "FC", "FCGradient"
F16, F32 = np.dtype(np.float16), np.dtype(np.float32)


def _axis(op: str, name: str, value: Any, ndim: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise OperatorTypeError(f"{op}: argument '{name}' must be an int; got "
                                f"{type(value).__name__}")
    value = int(value)
    if not -ndim <= value < ndim:
        raise OperatorValueError(
            f"{op}: argument '{name}' = {value} is out of range for {what} with {ndim} "
            f"dimensions (expected {-ndim} <= {name} < {ndim})"
        )
    return value + ndim if value < 0 else value


def _prod(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def fc_dims(op: str, x: np.ndarray, w: np.ndarray, axis: Any, axis_w: Any):
    """``(M, K, N, canonical axis)``, checking that X's and W's inner dimensions agree."""
    ax = _axis(op, "axis", axis, max(x.ndim, 1), "input X")
    axw = _axis(op, "axis_w", axis_w, max(w.ndim, 1), "input W")
    m, k = _prod(x.shape[:ax]), _prod(x.shape[ax:])
    n, kw = _prod(w.shape[:axw]), _prod(w.shape[axw:])
    if k != kw:
        raise OperatorValueError(
            f"{op}: input W {w.shape} (axis_w={axw}) has inner size {kw}, but input X {x.shape} "
            f"(axis={ax}) has inner size {k}"
        )
    return m, k, n, ax


def _matrix(x: np.ndarray, rows: int, cols: int, dtype: np.dtype) -> np.ndarray:
    return x.reshape(rows, cols).astype(dtype, copy=False)


def fc_reference(x, w, b, m, k, n, out2d: np.ndarray) -> np.ndarray:
    """``out2d (M×N) = fl(X·Wᵀ) + b`` in the compute dtype (one GEMM, then the bias)."""
    ct = out2d.dtype
    xm, wm = _matrix(x, m, k, ct), _matrix(w, n, k, ct)
    with np.errstate(all="ignore"):
        np.matmul(xm, wm.T, out=out2d)
        np.add(out2d, b.reshape(n).astype(ct, copy=False), out=out2d)
    return out2d


def _check_inputs(op: str, x, w, b):
    x = c.float_input(op, "input X", x)
    w = c.array(op, "input W", w)
    c.same_dtype(op, "input W", w, "X", x)
    if b is not None:
        b = c.array(op, "input b", b)
        c.same_dtype(op, "input b", b, "X", x)
    return x, w, b


def fc(x: Any, w: Any, b: Any, axis: int = 1, axis_w: int = 1, *, out: Any = None):
    """``Y = X·Wᵀ + b`` with X as ``M×K`` (split at ``axis``) and W as ``N×K`` (split at
    ``axis_w``); ``Y.shape = X.shape[:axis] + (N,)``. Empty ``M`` gives an empty Y, empty ``K``
    gives ``Y = b`` broadcast.

    >>> import numpy as np, caffe2ops as c2
    >>> x = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    >>> w = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, -1.0]], np.float32)
    >>> c2.fc(x, w, np.array([0.5, 0.0, 1.0], np.float32))
    array([[ 1.5,  3. , -1. ],
           [ 3.5,  7. , -3. ]], dtype=float32)
    """
    x, w, b = _check_inputs(OP, x, w, b)
    m, k, n, ax = fc_dims(OP, x, w, axis, axis_w)
    if b.size != n or b.ndim < 1 or b.shape[0] != n:
        raise OperatorValueError(f"{OP}: input b must have shape [{n}] (N = rows of W); "
                                 f"got {b.shape}")
    shape = tuple(x.shape[:ax]) + (n,)
    y = c.output(OP, out, shape, x.dtype, no_alias=(x, w, b))
    ct = c.compute_dtype(x.dtype)
    if ct == x.dtype and y.flags.c_contiguous:
        fc_reference(x, w, b, m, k, n, y.reshape(m, n))
        return y
    tmp = np.empty((m, n), ct)
    fc_reference(x, w, b, m, k, n, tmp)
    np.copyto(y, tmp.reshape(shape), casting="same_kind")
    return y


def fc_gradient(x: Any, w: Any, dy: Any, axis: int = 1, axis_w: int = 1, *,
                need_dx: bool = True, out: tuple | None = None):
    """``(dW, db, dX)`` of :func:`fc` for the output gradient ``dy`` (``M·N`` elements):
    ``dW = dYᵀ·X`` (W's shape), ``db = dYᵀ·1`` (shape ``[N]``), ``dX = dY·W`` (X's shape;
    ``None`` unless ``need_dx``). ``out`` optionally gives ``(dW, db, dX)`` buffers to reuse.

    >>> import numpy as np, caffe2ops as c2
    >>> x = np.array([[1.0, 2.0]]); w = np.array([[3.0, 4.0], [5.0, 6.0]])
    >>> dw, db, dx = c2.fc_gradient(x, w, np.array([[1.0, -1.0]]))
    >>> dw, db, dx
    (array([[ 1.,  2.],
           [-1., -2.]]), array([ 1., -1.]), array([[-2., -2.]]))
    """
    x, w, _ = _check_inputs(GRAD, x, w, None)
    dy = c.array(GRAD, "input dY", dy)
    c.same_dtype(GRAD, "input dY", dy, "X", x)
    m, k, n, _ = fc_dims(GRAD, x, w, axis, axis_w)
    if dy.size != m * n:
        raise OperatorValueError(
            f"{GRAD}: input dY must have M*N = {m}*{n} = {m * n} elements; got {dy.size} "
            f"(shape {dy.shape})"
        )
    outs = tuple(out) if out is not None else (None, None, None)
    if len(outs) != 3:
        raise OperatorValueError(f"{GRAD}: out must be a (dW, db, dX) triple; got {len(outs)}")
    dw = c.output(GRAD, outs[0], w.shape, w.dtype, no_alias=(x, w, dy))
    db = c.output(GRAD, outs[1], (n,), x.dtype, no_alias=(x, w, dy))
    dx = c.output(GRAD, outs[2], x.shape, x.dtype, no_alias=(x, w, dy)) if need_dx else None
    ct = c.compute_dtype(x.dtype)
    xm, wm, dym = _matrix(x, m, k, ct), _matrix(w, n, k, ct), _matrix(dy, m, n, ct)
    with np.errstate(all="ignore"):
        _gemm_into(dym.T, xm, dw)
        _gemm_into(np.ones((1, m), ct), dym, db)
        if dx is not None:
            _gemm_into(dym, wm, dx)
    return dw, db, dx


def _gemm_into(a: np.ndarray, b: np.ndarray, dst: np.ndarray) -> None:
    """``dst = a·b`` (one BLAS GEMM), written in place when ``dst`` has the compute dtype."""
    if dst.dtype == a.dtype and dst.flags.c_contiguous:
        np.matmul(a, b, out=dst.reshape(a.shape[0], b.shape[1]))
    else:
        np.copyto(dst, np.matmul(a, b).reshape(dst.shape), casting="same_kind")


def _run(op, inputs, outs):
    x, w, b = _check_inputs(OP, *inputs)
    m, k, n, ax = fc_dims(OP, x, w, op.args["axis"], op.args["axis_w"])
    shape = tuple(x.shape[:ax]) + (n,)
    out = c.reusable(outs[0], shape, x.dtype)
    if out is not None and any(np.may_share_memory(out, a) for a in (x, w, b)):
        out = None
    return [fc(x, w, b, op.args["axis"], op.args["axis_w"], out=out)]


def _run_gradient(op, inputs, outs):
    x, w, dy = inputs
    x, w, _ = _check_inputs(GRAD, x, w, None)
    m, k, n, _ = fc_dims(GRAD, x, w, op.args["axis"], op.args["axis_w"])
    need_dx = len(outs) == 3
    shapes = (w.shape, (n,), x.shape)
    reuse = []
    for buf, shape in zip(outs, shapes, strict=False):
        r = c.reusable(buf, shape, x.dtype)
        if r is not None and any(np.may_share_memory(r, a) for a in (x, w, dy)):
            r = None
        reuse.append(r)
    reuse += [None] * (3 - len(reuse))
    if len({id(r) for r in reuse if r is not None}) < sum(r is not None for r in reuse):
        reuse = [None, None, None]
    dw, db, dx = fc_gradient(x, w, dy, op.args["axis"], op.args["axis_w"], need_dx=need_dx,
                             out=tuple(reuse))
    return [dw, db, dx] if need_dx else [dw, db]


def _gradient_maker(ctx):
    return [ctx.op(GRAD, [ctx.I(0), ctx.I(1), ctx.GO(0)], [ctx.GI(1), ctx.GI(2), ctx.GI(0)])]


def _infer(inputs, args):
    (xs, xd), (ws, _) = inputs[0], inputs[1]
    ax, axw = args["axis"], args["axis_w"]
    ax = ax + len(xs) if ax < 0 else ax
    axw = axw + len(ws) if axw < 0 else axw
    return [(tuple(xs[:ax]) + (_prod(ws[:axw]),), xd)]


def _infer_gradient(inputs, args):
    (xs, xd), (ws, wd) = inputs[0], inputs[1]
    axw = args["axis_w"]
    axw = axw + len(ws) if axw < 0 else axw
    return [(tuple(ws), wd), ((_prod(ws[:axw]),), xd), (tuple(xs), xd)]


def _check_args(op_type: str, args: dict) -> None:
    for name in ("axis", "axis_w"):
        value = args[name]
        if isinstance(value, bool) or not isinstance(value, int):
            raise OperatorTypeError(f"{op_type}: argument '{name}' must be an int; got "
                                    f"{type(value).__name__}")


_ARGS = (
    Arg("axis", "int", 1, "X is M×K with M = product of the dimensions before axis"),
    Arg("axis_w", "int", 1, "W is N×K with N = product of the dimensions before axis_w"),
    Arg("float16_compute", "bool", False, "Caffe2's float16 GEMM request; float16 inputs "
        "always compute in float32 here"),
    # What brew.fc and arg_scope pass; accepted and ignored on the CPU.
    Arg("order", "string", None, "layout; ignored"),
    Arg("use_cudnn", "bool", None, "ignored"),
    Arg("cudnn_exhaustive_search", "bool", None, "ignored"),
    Arg("ws_nbytes_limit", "int", None, "ignored"),
    Arg("enable_tensor_core", "bool", None, "ignored"),
)

register(OpSchema(
    type=OP, kernel=_run, num_inputs=(3, 3), inputs=("X", "W", "b"), outputs=("Y",),
    args=_ARGS, infer=_infer, check_args=_check_args, gradient=_gradient_maker,
    doc="Y = X·Wᵀ + b, X flattened to M×K at axis and W to N×K at axis_w.",
))
register(OpSchema(
    type=GRAD, kernel=_run_gradient, num_inputs=(3, 3), num_outputs=(2, 3),
    inputs=("X", "W", "dY"), outputs=("dW", "db", "dX"), args=_ARGS, infer=_infer_gradient,
    check_args=_check_args,
    doc="dW = dYᵀ·X, db = dYᵀ·1, dX = dY·W (dX only with three outputs).",
))
