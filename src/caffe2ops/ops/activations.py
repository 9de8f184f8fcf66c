"""Relu, Sigmoid, Tanh and their gradients (Caffe2 ``relu_op``, ``sigmoid_op``, ``tanh_op``).

Forward, bit-identical to Caffe2 1.5.0's CPU kernels for float32:

* ``Relu``: ``y = x < 0 ? 0 : x`` (Eigen ``cwiseMax(0)``): NaN stays NaN, ``-0`` stays ``-0``.
* ``Sigmoid``: ``y = 1 / (1 + exp(-x))`` with Eigen's float ``exp`` (Cephes polynomial, clamped to
  ``±88.376``), so the bits are Caffe2's rather than ``libm``'s.
* ``Tanh``: Eigen's rational approximation (odd degree-13 numerator over even degree-6 denominator,
  input clamped to ``[-9, 9]``), again Caffe2's bits (``tanh(1e-30)`` is ``9.999999e-31``).

float16 and float64 (which Caffe2 did not register) use the exact formula in float64, rounded once.
Gradients read the output Y: ``ReluGradient: dX = Y > 0 ? dY : +0``,
``SigmoidGradient: dX = (dY·Y)·(1 − Y)``, ``TanhGradient: dX = dY·(1 − Y·Y)``, each rounded after
every operation as Caffe2's Eigen expressions were. All six may run in place (X→Y; dY→dX).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from caffe2ops.ops import _common as c
from caffe2ops.ops._dispatch import CpuKernels
from caffe2ops.runtime.schema import Arg, OpSchema, register

KERNELS = CpuKernels("activations")  # caffe2ops/kernels/cpu/activations.py

F32 = np.dtype(np.float32)
_f = np.float32

# Arguments that brew and arg_scope pass to activations; accepted and ignored on the CPU.
BREW_ARGS = (
    Arg("order", "string", None, "layout (NCHW/NHWC); ignored by element-wise operators"),
    Arg("use_cudnn", "bool", None, "cuDNN engine request; ignored on the CPU"),
    Arg("cudnn_exhaustive_search", "bool", None, "cuDNN setting; ignored"),
    Arg("ws_nbytes_limit", "int", None, "cuDNN workspace limit; ignored"),
)

_EXP_HI, _EXP_LO = _f(88.3762626647950), _f(-88.3762626647949)
_LOG2E, _C1, _C2 = _f(1.44269504088896341), _f(0.693359375), _f(-2.12194440e-4)
_EXP_POLY = tuple(_f(v) for v in (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3,
                                  4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1))
_TANH_NUM = tuple(_f(v) for v in (-2.76076847742355e-16, 2.00018790482477e-13,
                                  -8.60467152213735e-11, 5.12229709037114e-08,
                                  1.48572235717979e-05, 6.37261928875436e-04,
                                  4.89352455891786e-03))
_TANH_DEN = tuple(_f(v) for v in (1.19825839466702e-06, 1.18534705686654e-04,
                                  2.26843463243900e-03, 4.89352518554385e-03))


def eigen_exp_float32(x: np.ndarray) -> np.ndarray:
    """Eigen 3.3's vectorised float ``exp`` (what Caffe2's CPU kernels computed), in float32."""
    with np.errstate(all="ignore"):
        t = np.minimum(x, _EXP_HI)
        np.maximum(t, _EXP_LO, out=t)
        m = t * _LOG2E
        m += _f(0.5)
        np.floor(m, out=m)
        t -= m * _C1
        t -= m * _C2
        r2 = t * t
        y = np.full(t.shape, _EXP_POLY[0], F32)
        for coef in _EXP_POLY[1:]:
            y *= t
            y += coef
        y *= r2
        y += t
        y += _f(1)
        m += _f(127)
        scale = (m.astype(np.int32) << 23).view(F32)
        y *= scale
        # pmax(result, x): SSE max returns its second operand when either is NaN.
        return np.where(np.isnan(x) | (x > y), x, y)


def _tanh_float32(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        t = np.minimum(x, _f(9))
        np.maximum(t, _f(-9), out=t)
        x2 = t * t
        p = np.full(t.shape, _TANH_NUM[0], F32)
        for coef in _TANH_NUM[1:]:
            p *= x2
            p += coef
        p *= t
        q = np.full(t.shape, _TANH_DEN[0], F32)
        for coef in _TANH_DEN[1:]:
            q *= x2
            q += coef
        return np.divide(p, q, out=p)


def relu_reference(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    neg = np.less(x, 0, out=np.empty(x.shape, dtype=bool))
    if out is not x:
        np.copyto(out, x)
    np.copyto(out, 0, where=neg)
    return out


def sigmoid_reference(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        if x.dtype == F32:
            e = eigen_exp_float32(np.negative(x.reshape(-1)))
            e += _f(1)
            np.divide(_f(1), e, out=e)
            np.copyto(out, e.reshape(x.shape))
            return out
        v = x.astype(np.float64)
        np.copyto(out, 1.0 / (1.0 + np.exp(-v)), casting="same_kind")
    return out


def tanh_reference(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    if x.dtype == F32:
        np.copyto(out, _tanh_float32(x.reshape(-1)).reshape(x.shape))
        return out
    np.copyto(out, np.tanh(x.astype(np.float64)), casting="same_kind")
    return out


def relu_gradient_reference(y: np.ndarray, dy: np.ndarray, out: np.ndarray) -> np.ndarray:
    drop = np.greater(y, 0, out=np.empty(y.shape, dtype=bool))
    np.logical_not(drop, out=drop)
    if out is not dy:
        np.copyto(out, dy)
    np.copyto(out, 0, where=drop)
    return out


def sigmoid_gradient_reference(y: np.ndarray, dy: np.ndarray, out: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        one_minus = np.subtract(y.dtype.type(1), y)
        np.multiply(dy, y, out=out)
        return np.multiply(out, one_minus, out=out)


def tanh_gradient_reference(y: np.ndarray, dy: np.ndarray, out: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        one_minus = np.multiply(y, y)
        np.subtract(y.dtype.type(1), one_minus, out=one_minus)
        return np.multiply(dy, one_minus, out=out)


def _kernel(name: str, reference, *arrays: np.ndarray):
    # The fused kernels give the reference kernels' bits; Sigmoid and Tanh have them for
    # float32 only (their DTYPES in kernels/cpu/activations.py; float64 keeps NumPy's exp/tanh).
    return KERNELS.get(name, *arrays) or reference


def _forward(op: str, name: str, reference, x: Any, out: Any):
    x = c.float_input(op, "input X", x)
    y = c.output(op, out, x.shape, x.dtype)
    x = c.unaliased(x, y)
    return _kernel(name, reference, x, y)(x, y)


def _backward(op: str, name: str, reference, y: Any, dy: Any, out: Any):
    y = c.float_input(op, "input Y", y)
    dy = c.array(op, "input dY", dy)
    c.same_dtype(op, "input dY", dy, "Y", y)
    c.same_shape(op, "input dY", dy, "Y", y)
    dx = c.output(op, out, y.shape, y.dtype)
    y, dy = c.unaliased(y, dx), c.unaliased(dy, dx)
    return _kernel(name, reference, y, dy, dx)(y, dy, dx)


def relu(x: Any, *, out: Any = None):
    """``y = x < 0 ? 0 : x``: NaN and ``-0`` pass through unchanged. ``out`` may be ``x``.

    >>> import numpy as np, caffe2ops as c2
    >>> c2.relu(np.array([-2.0, -0.0, 0.5, np.nan], dtype=np.float32))
    array([ 0. , -0. ,  0.5,  nan], dtype=float32)
    """
    return _forward("Relu", "relu", relu_reference, x, out)


def relu_gradient(y: Any, dy: Any, *, out: Any = None):
    """``dX = Y > 0 ? dY : +0`` (from the forward output). ``out`` may be ``dy``.

    >>> import numpy as np, caffe2ops as c2
    >>> c2.relu_gradient(np.array([0.0, 2.0, np.nan]), np.array([5.0, 5.0, 5.0]))
    array([0., 5., 0.])
    """
    return _backward("ReluGradient", "relu_gradient", relu_gradient_reference, y, dy,
                     out)


def sigmoid(x: Any, *, out: Any = None):
    """``y = 1 / (1 + exp(-x))``; float32 gives Caffe2's bits (Eigen's ``exp``). NaN stays NaN.

    >>> import numpy as np, caffe2ops as c2
    >>> c2.sigmoid(np.array([0.0, 100.0, -np.inf], dtype=np.float32))
    array([0.5, 1. , 0. ], dtype=float32)
    """
    return _forward("Sigmoid", "sigmoid", sigmoid_reference, x, out)


def sigmoid_gradient(y: Any, dy: Any, *, out: Any = None):
    """``dX = (dY·Y)·(1 − Y)`` from the forward output Y. ``out`` may be ``dy``.

    >>> import numpy as np, caffe2ops as c2
    >>> c2.sigmoid_gradient(np.array([0.5, 0.25]), np.array([1.0, 2.0]))
    array([0.25 , 0.375])
    """
    return _backward("SigmoidGradient", "sigmoid_gradient", sigmoid_gradient_reference, y, dy,
                     out)


def tanh(x: Any, *, out: Any = None):
    """``y = tanh(x)``; float32 gives Caffe2's bits (Eigen's rational approximation, so
    ``|x| >= 9`` gives exactly ±1 and tiny inputs lose their last bit). NaN stays NaN.

    >>> import numpy as np, caffe2ops as c2
    >>> c2.tanh(np.array([0.0, -0.0, 10.0, -np.inf], dtype=np.float32))
    array([ 0., -0.,  1., -1.], dtype=float32)
    """
    return _forward("Tanh", "tanh", tanh_reference, x, out)


def tanh_gradient(y: Any, dy: Any, *, out: Any = None):
    """``dX = dY·(1 − Y·Y)`` from the forward output Y. ``out`` may be ``dy``.

    >>> import numpy as np, caffe2ops as c2
    >>> c2.tanh_gradient(np.array([0.5, 0.0]), np.array([2.0, 3.0]))
    array([1.5, 3. ])
    """
    return _backward("TanhGradient", "tanh_gradient", tanh_gradient_reference, y, dy,
                     out)


def _register(op_type: str, forward, backward, names: tuple[str, str]) -> None:
    grad_type = f"{op_type}Gradient"

    def run(op, inputs, outs):
        x = c.float_input(op_type, "input X", inputs[0])
        return [forward(x, out=c.reusable(outs[0], x.shape, x.dtype))]

    def run_gradient(op, inputs, outs):
        y = c.float_input(grad_type, "input Y", inputs[0])
        out = c.reusable(outs[0], y.shape, y.dtype)
        if out is not None and out is not inputs[1] and np.may_share_memory(out, inputs[1]):
            out = None
        return [backward(y, inputs[1], out=out)]

    def maker(ctx):
        return [ctx.op(grad_type, [ctx.O(0), ctx.GO(0)], [ctx.GI(0)])]

    register(OpSchema(
        type=op_type, kernel=run, inputs=(names[0],), outputs=(names[1],), args=BREW_ARGS,
        allow_inplace={(0, 0)}, infer=c.same_as_input(0), gradient=maker,
        doc=(forward.__doc__ or "").split("\n\n")[0].strip(),
    ))
    register(OpSchema(
        type=grad_type, kernel=run_gradient, num_inputs=(2, 2), inputs=("Y", "dY"),
        outputs=("dX",), args=BREW_ARGS, allow_inplace={(1, 0)}, infer=c.same_as_input(0),
        doc=(backward.__doc__ or "").split("\n\n")[0].strip(),
    ))


_register("Relu", relu, relu_gradient, ("X", "Y"))
_register("Sigmoid", sigmoid, sigmoid_gradient, ("X", "Y"))
_register("Tanh", tanh, tanh_gradient, ("input", "output"))
