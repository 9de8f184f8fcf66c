"""CosineSimilarity and its gradient (Caffe2 ``caffe2/operators/distance_op.{h,cc}``).

Rows are slices along dim 0 flattened over the rest (a 1-D input is N rows of length 1, so its
"similarity" is element-wise, as in Caffe2). Per row, with ``eps = 1e-12`` clamping the *squared*
norms: ``z = x·y / sqrt(max(x·x, eps)·max(y·y, eps))``; output shape ``[N]``. The three dot
products accumulate in float64 and are rounded to the dtype; float16 rows are computed in
float32 and rounded once.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from caffe2ops.errors import OperatorValueError
from caffe2ops.ops import _common as c
from caffe2ops.ops._dispatch import CpuKernels
from caffe2ops.runtime.schema import GRADIENT_NOT_REGISTERED, OpSchema, register

KERNELS = CpuKernels("cosine_similarity")  # caffe2ops/kernels/cpu/cosine_similarity.py

OP, GRAD = "CosineSimilarity", "CosineSimilarityGradient"


def _dots(X: np.ndarray, Y: np.ndarray, dtype: np.dtype):
    def dot(a, b):
        return np.einsum("ij,ij->i", a, b, dtype=np.float64).astype(dtype)

    return dot(X, X), dot(Y, Y), dot(X, Y)


def similarity_reference(X: np.ndarray, Y: np.ndarray, out: np.ndarray) -> np.ndarray:
    ct = c.compute_dtype(X.dtype)
    x2, y2, xy = _dots(X, Y, ct)
    eps = ct.type(1e-12)
    with np.errstate(invalid="ignore", over="ignore"):  # NaN/inf rows give NaN, as documented
        z = xy / np.sqrt(np.maximum(x2, eps) * np.maximum(y2, eps))
        np.copyto(out, z, casting="same_kind")
    return out


def similarity_gradient_reference(X, Y, dz, dX, dY):
    ct = c.compute_dtype(X.dtype)
    x2, y2, xy = _dots(X, Y, ct)
    eps = ct.type(1e-12)
    dz = dz.astype(ct, copy=False)
    with np.errstate(invalid="ignore", over="ignore"):  # NaN/inf propagate; f16 may overflow
        xn = np.sqrt(np.maximum(x2, eps))
        yn = np.sqrt(np.maximum(y2, eps))
        xyn = xn * yn
        a = (dz / xyn)[:, None]
        Xc, Yc = X.astype(ct, copy=False), Y.astype(ct, copy=False)
        gx = a * Yc - ((dz * xy) / (xn * xn * xyn))[:, None] * Xc
        gy = a * Xc - ((dz * xy) / (yn * yn * xyn))[:, None] * Yc
        np.copyto(dX, gx, casting="same_kind")
        np.copyto(dY, gy, casting="same_kind")
    return dX, dY


def _inputs(op: str, x: Any, y: Any):
    x = c.float_input(op, "input X", x)
    y = c.array(op, "input Y", y)
    c.same_dtype(op, "input Y", y, "X", x)
    c.same_shape(op, "input Y", y, "X", x)
    n, d = c.rows_view(x)
    return x, y, n, d


def cosine_similarity(x: Any, y: Any, *, out: Any = None):
    """Row-wise ``z = x·y / sqrt(max(x·x, 1e-12)·max(y·y, 1e-12))``, rows along dim 0.

    A 1-D input is N rows of length 1 (Caffe2's layout), so it gives ±1 (or 0) per element.

    >>> import numpy as np, caffe2ops as c2
    >>> x = np.array([[1.0, 0.0], [3.0, 4.0]], dtype=np.float32)
    >>> c2.cosine_similarity(x, np.array([[0.0, 2.0], [3.0, 4.0]], dtype=np.float32))
    array([0., 1.], dtype=float32)
    >>> c2.cosine_similarity(np.zeros((1, 3)), np.ones((1, 3)))
    array([0.])
    """
    x, y, n, d = _inputs(OP, x, y)
    z = c.output(OP, out, (n,), x.dtype, no_alias=(x, y))
    X, Y = x.reshape(n, d), y.reshape(n, d)
    kernel = KERNELS.get("cosine_similarity", X, Y, z)
    return (kernel or similarity_reference)(X, Y, z)


def cosine_similarity_gradient(x: Any, y: Any, dz: Any, *, out: Any = None):
    """``(dX, dY)`` of :func:`cosine_similarity` (Caffe2's formulas), with
    ``XN = sqrt(max(x·x, eps))``, ``YN`` likewise and ``XYN = XN·YN``:
    ``dX = (dZ/XYN)·y - (dZ·x·y/(XN²·XYN))·x`` and symmetrically for ``dY``.
    ``out`` is an optional ``(dx, dy)`` pair.

    >>> import numpy as np, caffe2ops as c2
    >>> dx, dy = c2.cosine_similarity_gradient(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]),
    ...                                        np.array([1.0]))
    >>> dx, dy
    (array([[0., 1.]]), array([[1., 0.]]))
    """
    x, y, n, d = _inputs(GRAD, x, y)
    dz = c.array(GRAD, "input dZ", dz)
    c.same_dtype(GRAD, "input dZ", dz, "X", x)
    if dz.shape != (n,):
        raise OperatorValueError(f"{GRAD}: input dZ must have shape ({n},); got {dz.shape}")
    if out is None:
        out = (None, None)
    if not isinstance(out, tuple | list) or len(out) != 2:
        raise OperatorValueError(f"{GRAD}: out must be a (dx, dy) pair")
    dx = c.output(GRAD, out[0], x.shape, x.dtype, no_alias=(x, y, dz))
    dy = c.output(GRAD, out[1], x.shape, x.dtype, no_alias=(x, y, dz, dx))
    if not (dx.flags.c_contiguous and dy.flags.c_contiguous):
        raise OperatorValueError(f"{GRAD}: out arrays must be C-contiguous")
    X, Y = x.reshape(n, d), y.reshape(n, d)
    dX, dY = dx.reshape(n, d), dy.reshape(n, d)
    kernel = KERNELS.get("cosine_similarity_gradient", X, Y, dz, dX, dY)
    (kernel or similarity_gradient_reference)(X, Y, dz, dX, dY)
    return dx, dy


def _run(op, inputs, outs):
    x = inputs[0]
    rows = (x.shape[0] if x.ndim else 1,) if type(x) is np.ndarray else None
    return [cosine_similarity(x, inputs[1], out=c.reusable_like(outs[0], x, rows))]


def _run_gradient(op, inputs, outs):
    x = inputs[0]
    out = (c.reusable_like(outs[0], x), c.reusable_like(outs[1], x))
    if out[0] is not None and out[0] is out[1]:
        out = (out[0], None)
    return list(cosine_similarity_gradient(x, inputs[1], inputs[2], out=out))


def _gradient_maker(ctx):
    return [ctx.op(GRAD, [ctx.I(0), ctx.I(1), ctx.GO(0)], [ctx.GI(0), ctx.GI(1)])]


def _infer(inputs, args):
    shape, dtype = inputs[0]
    return [((shape[0] if shape else 1,), dtype)]


register(OpSchema(
    type=OP, kernel=_run, num_inputs=(2, 2), inputs=("X", "Y"), outputs=("Z",), infer=_infer,
    gradient=_gradient_maker, doc=__doc__.split("\n\n")[1],
))
register(OpSchema(
    type=GRAD, kernel=_run_gradient, num_inputs=(3, 3), num_outputs=(2, 2),
    inputs=("X", "Y", "dZ"), outputs=("dX", "dY"),
    infer=lambda inputs, args: [inputs[0], inputs[1]], doc="Caffe2's CosineSimilarity gradient.",
    gradient=GRADIENT_NOT_REGISTERED,
))
