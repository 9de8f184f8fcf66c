"""ClipTensorByScaling (Caffe2 ``caffe2/sgd/clip_tensor_op.{h,cc}``).

Inputs ``x``, ``val`` (1 element, usually a precomputed norm of ``x``) and an optional
``additional_threshold`` (1 element); argument ``threshold`` > 0. With
``t = threshold·additional_threshold``: ``y = x·fl(t/val)`` (one multiply per element) if
``val > t`` (strict), else ``y = x``. Unlike Caffe2 the threshold is never stored back, so a net
created once and run many times gives the same result every run. In place allowed; no gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from caffe2ops.errors import OperatorTypeError, OperatorValueError
from caffe2ops.ops import _common as c
from caffe2ops.runtime.schema import SHOULD_NOT_DO_GRADIENT, Arg, OpSchema, register

OP = "ClipTensorByScaling"


def check_threshold(op: str, threshold: Any) -> float:
    """``threshold`` as a float; it must be > 0 (Caffe2: "Threshold must be greater than 0")."""
    threshold = c.float_arg(op, "threshold", threshold)
    if not threshold > 0:
        raise OperatorValueError(
            f"{op}: argument 'threshold' must be greater than 0; got {threshold}"
        )
    return threshold


def _scalar(op: str, what: str, v: Any) -> np.ndarray:
    """A 1-element float input (a Python int/float is accepted by the functional API)."""
    if isinstance(v, int | float) and not isinstance(v, bool):
        v = np.float64(c.float_arg(op, what, v))  # an int beyond float64 becomes ±inf
    v = c.array(op, what, v)
    if v.dtype not in c.FLOAT_DTYPES:
        raise OperatorTypeError(f"{op}: {what} must be {c.FLOAT_TEXT}; got {v.dtype}")
    if v.size != 1:
        raise OperatorValueError(
            f"{op}: {what} must have exactly 1 element; got {v.size} (shape {v.shape})"
        )
    return v


def scaling_factor(dtype: np.dtype, val: Any, threshold: float, additional: Any = None):
    """``fl(t/val)`` as a scalar of ``dtype`` when ``val > t``, else None (no clipping).

    ``t = fl(threshold)·fl(additional)``, computed like Caffe2's float arithmetic (float32 for
    float16/float32 tensors, float64 for float64 tensors); ``threshold`` is first rounded to the
    tensor's dtype.
    """
    ct = c.compute_dtype(dtype)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        t = ct.type(dtype.type(threshold))
        if additional is not None:
            t = ct.type(t * ct.type(np.asarray(additional).reshape(-1)[0]))
        v = ct.type(np.asarray(val).reshape(-1)[0])
        if not v > t:  # strict; a NaN val never clips
            return None
        return dtype.type(ct.type(t / v))


def clip_tensor_by_scaling_reference(x: np.ndarray, factor: Any, out: np.ndarray) -> np.ndarray:
    """``out = x·factor`` (one multiply per element), or a copy of ``x`` if factor is None."""
    if factor is None:
        if out is not x:
            np.copyto(out, x)
        return out
    with np.errstate(over="ignore", invalid="ignore"):
        return np.multiply(x, factor, out=out)


def clip_tensor_by_scaling(
    x: Any, val: Any, threshold: float, additional_threshold: Any = None, *, out: Any = None
):
    """Scale ``x`` down to the threshold: ``y = x·(t/val)`` if ``val > t`` else ``x``, where
    ``t = threshold·additional_threshold`` (``additional_threshold`` defaults to 1).

    ``val`` and ``additional_threshold`` are 1-element float arrays or Python numbers;
    ``threshold`` must be > 0. The factor ``t/val`` is rounded to the dtype and applied with one
    multiply per element; ``val <= t`` or a NaN ``val`` returns ``x`` unchanged (a copy unless
    ``out is x``). A new array is returned unless ``out`` is given (``out`` may be ``x``).
    Stateless: repeated calls never compound the threshold (Caffe2's operator did).

    >>> import numpy as np, caffe2ops as c2
    >>> x = np.array([3.0, 4.0], dtype=np.float32)
    >>> c2.clip_tensor_by_scaling(x, np.linalg.norm(x), threshold=1.0)
    array([0.6, 0.8], dtype=float32)
    >>> c2.clip_tensor_by_scaling(x, 5.0, threshold=2.0, additional_threshold=3.0)
    array([3., 4.], dtype=float32)
    """
    x = c.float_input(OP, "input x", x)
    val = _scalar(OP, "input val", val)
    if additional_threshold is not None:
        additional_threshold = _scalar(OP, "input additional_threshold", additional_threshold)
    threshold = check_threshold(OP, threshold)
    y = c.output(OP, out, x.shape, x.dtype)
    factor = scaling_factor(x.dtype, val, threshold, additional_threshold)
    return clip_tensor_by_scaling_reference(x, factor, y)


def _run(op, inputs, outs):
    additional = inputs[2] if len(inputs) > 2 else None
    return [clip_tensor_by_scaling(inputs[0], inputs[1], op.args["threshold"], additional,
                                   out=c.reusable_like(outs[0], inputs[0]))]


def _check_args(op_type: str, args: dict) -> None:
    check_threshold(op_type, args["threshold"])


register(OpSchema(
    type=OP, kernel=_run, num_inputs=(2, 3), inputs=("input_tensor", "val", "additional_threshold"),
    outputs=("clipped",),
    args=(Arg("threshold", "float", 0.0, "threshold (> 0) that val is compared with"),),
    allow_inplace={(0, 0)}, infer=c.same_as_input(0), check_args=_check_args,
    gradient=SHOULD_NOT_DO_GRADIENT, doc=__doc__.split("\n\n")[1],
))
