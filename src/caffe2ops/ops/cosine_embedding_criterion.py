"""CosineEmbeddingCriterion and its gradient (Caffe2 ``cosine_embedding_criterion_op``).

Takes an already computed similarity S and an integer label with the same element count; the
loss is element-wise, no reduction: ``loss = 1 - S`` where ``label == 1``, else
``max(0, S - margin)`` (every label other than 1 is dissimilar; NaN gives +0 there).
Gradient: ``dS = dLoss·(label == 1 ? -1 : [S >= margin])`` (non-strict at the margin).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from caffe2ops.errors import OperatorValueError
from caffe2ops.ops import _common as c
from caffe2ops.ops._dispatch import CpuKernels
from caffe2ops.runtime.schema import GRADIENT_NOT_REGISTERED, Arg, OpSchema, register

KERNELS = CpuKernels("cosine_embedding_criterion")  # kernels/cpu/cosine_embedding_criterion.py

OP, GRAD = "CosineEmbeddingCriterion", "CosineEmbeddingCriterionGradient"


def _margin(op: str, dtype: np.dtype, margin: Any):
    return c.to_float_dtype(dtype, c.float_arg(op, "margin", margin))


def _label(op: str, s: np.ndarray, label: Any) -> np.ndarray:
    label = c.array(op, "input label", label)
    c.require_dtype(op, "input label", label, c.INT_DTYPES, "an integer type")
    if label.size != s.size:
        raise OperatorValueError(
            f"{op}: input label must have as many elements as S ({s.size}); got {label.size} "
            "(the embedding and label should have the same size)"
        )
    return label.reshape(s.shape)


def criterion_reference(s, label, margin, out):
    v = np.subtract(s, margin)
    dissimilar = np.where(v > 0, v, s.dtype.type(0))
    np.copyto(out, np.where(label == 1, s.dtype.type(1) - s, dissimilar))
    return out


def criterion_gradient_reference(s, label, dloss, margin, out):
    with np.errstate(invalid="ignore"):  # ±inf·0 = NaN, as documented
        np.copyto(out, np.where(label == 1, -dloss, dloss * (s >= margin)))
    return out


def cosine_embedding_criterion(s: Any, label: Any, margin: float = 0.0, *, out: Any = None):
    """Element-wise ``1 - S`` where ``label == 1``, else ``max(0, S - margin)``.

    >>> import numpy as np, caffe2ops as c2
    >>> s = np.array([0.75, 0.5, -0.25, 0.5], dtype=np.float32)
    >>> c2.cosine_embedding_criterion(s, np.array([1, -1, -1, 0], dtype=np.int32), margin=0.25)
    array([0.25, 0.25, 0.  , 0.25], dtype=float32)
    """
    s = c.float_input(OP, "input S", s)
    label = _label(OP, s, label)
    m = _margin(OP, s.dtype, margin)
    loss = c.output(OP, out, s.shape, s.dtype, no_alias=(s, label))
    kernel = KERNELS.get("cosine_embedding_criterion", s, loss)
    if kernel is not None and label.flags.c_contiguous:
        return kernel(s, label, m, loss)
    return criterion_reference(s, label, m, loss)


def cosine_embedding_criterion_gradient(
    s: Any, label: Any, dloss: Any, margin: float = 0.0, *, out: Any = None
):
    """``dS = -dLoss`` where ``label == 1``, else ``dLoss·[S >= margin]``.

    >>> import numpy as np, caffe2ops as c2
    >>> s = np.array([0.9, 0.1, -0.2], dtype=np.float32)
    >>> c2.cosine_embedding_criterion_gradient(s, np.array([1, -1, -1]), np.ones(3, np.float32),
    ...                                        margin=0.1)
    array([-1.,  1.,  0.], dtype=float32)
    """
    s = c.float_input(GRAD, "input S", s)
    label = _label(GRAD, s, label)
    dloss = c.array(GRAD, "input dLoss", dloss)
    c.same_dtype(GRAD, "input dLoss", dloss, "S", s)
    if dloss.size != s.size:
        raise OperatorValueError(
            f"{GRAD}: input dLoss must have as many elements as S ({s.size}); got {dloss.size}"
        )
    dloss = dloss.reshape(s.shape)
    m = _margin(GRAD, s.dtype, margin)
    ds = c.output(GRAD, out, s.shape, s.dtype, no_alias=(s, label, dloss))
    kernel = KERNELS.get("cosine_embedding_criterion_gradient", s, dloss, ds)
    if kernel is not None and label.flags.c_contiguous:
        return kernel(s, label, dloss, m, ds)
    return criterion_gradient_reference(s, label, dloss, m, ds)


def _run(op, inputs, outs):
    out = c.reusable_like(outs[0], inputs[0])
    return [cosine_embedding_criterion(inputs[0], inputs[1], op.args["margin"], out=out)]


def _run_gradient(op, inputs, outs):
    out = c.reusable_like(outs[0], inputs[0])
    return [cosine_embedding_criterion_gradient(inputs[0], inputs[1], inputs[2],
                                                op.args["margin"], out=out)]


def _gradient_maker(ctx):
    return [ctx.op(GRAD, [ctx.I(0), ctx.I(1), ctx.GO(0)], [ctx.GI(0)])]


_MARGIN = (Arg("margin", "float", 0.0, "margin of the dissimilar branch"),)

register(OpSchema(
    type=OP, kernel=_run, num_inputs=(2, 2), inputs=("S", "label"), outputs=("loss",),
    args=_MARGIN, infer=c.same_as_input(0), gradient=_gradient_maker,
    doc=__doc__.split("\n\n")[1],
))
register(OpSchema(
    type=GRAD, kernel=_run_gradient, num_inputs=(3, 3), inputs=("S", "label", "dLoss"),
    outputs=("dS",), args=_MARGIN, infer=c.same_as_input(0),
    doc="dS = dLoss * (label == 1 ? -1 : [S >= margin]).",
    gradient=GRADIENT_NOT_REGISTERED,
))
