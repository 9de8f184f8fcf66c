"""Relu, Sigmoid, Tanh and their gradients on the CPU.

``<name>_s`` runs serially over 1-D C-contiguous arrays (declared signatures ``UNARY`` /
``BINARY``), and ``_stream.unary_p`` / ``binary_p`` run it on contiguous chunks in a ``prange``;
every element gets the same instructions on either path. No
fast-math: each result is the reference kernel's IEEE formula (ops/activations.py), bit for bit.
Sigmoid and Tanh are float32 only (Eigen's ``exp`` and rational ``tanh``, as Caffe2 computed
them); the others take float32 and float64.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from caffe2ops.kernels.cpu._stream import BINARY, UNARY, cast_like, flat, launch_declared

_F32_ONLY = frozenset({np.dtype(np.float32)})
#: dtypes per entry point (every other entry point: float32 and float64).
DTYPES = {"sigmoid": _F32_ONLY, "tanh": _F32_ONLY}


def _unary(kernel, x: np.ndarray, out: np.ndarray) -> np.ndarray:
    launch_declared(kernel, (flat(x), flat(out)), x.size)
    return out


def _binary(kernel, y: np.ndarray, dy: np.ndarray, out: np.ndarray) -> np.ndarray:
    launch_declared(kernel, (flat(y), flat(dy), flat(out)), y.size)
    return out


def relu(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = 0 if x < 0 else x`` (NaN and -0 pass). ``out`` may be ``x``."""
    return _unary(relu_s, x, out)


def sigmoid(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """float32 ``out = 1 / (1 + exp(-x))`` with Eigen's float ``exp`` (Caffe2's bits)."""
    return _unary(sigmoid_s, x, out)


def tanh(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """float32 ``out = tanh(x)`` by Eigen's rational approximation (Caffe2's bits)."""
    return _unary(tanh_s, x, out)


def relu_gradient(y: np.ndarray, dy: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = dy if y > 0 else +0``. ``out`` may be ``dy``."""
    return _binary(relu_gradient_s, y, dy, out)


def sigmoid_gradient(y: np.ndarray, dy: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = (dy·y)·(1 − y)``. ``out`` may be ``dy``."""
    return _binary(sigmoid_gradient_s, y, dy, out)


def tanh_gradient(y: np.ndarray, dy: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = dy·(1 − y·y)``. ``out`` may be ``dy``."""
    return _binary(tanh_gradient_s, y, dy, out)


_f = np.float32
EXP_HI, EXP_LO = _f(88.3762626647950), _f(-88.3762626647949)
LOG2E, C1, C2 = _f(1.44269504088896341), _f(0.693359375), _f(-2.12194440e-4)
P0, P1, P2 = _f(1.9875691500e-4), _f(1.3981999507e-3), _f(8.3334519073e-3)
P3, P4, P5 = _f(4.1665795894e-2), _f(1.6666665459e-1), _f(5.0000001201e-1)
HALF, ONE, NINE = _f(0.5), _f(1.0), _f(9.0)
A13, A11, A9 = _f(-2.76076847742355e-16), _f(2.00018790482477e-13), _f(-8.60467152213735e-11)
A7, A5, A3 = _f(5.12229709037114e-08), _f(1.48572235717979e-05), _f(6.37261928875436e-04)
A1 = _f(4.89352455891786e-03)
B6, B4, B2 = _f(1.19825839466702e-06), _f(1.18534705686654e-04), _f(2.26843463243900e-03)
B0 = _f(4.89352518554385e-03)


@intrinsic
def _float32_from_bits(typingctx, bits):
    """The float32 whose bit pattern is the low 32 bits of the integer ``bits``."""
    sig = types.float32(bits)

    def codegen(context, builder, signature, args):
        value = args[0]
        if value.type.width > 32:
            value = builder.trunc(value, ir.IntType(32))
        return builder.bitcast(value, ir.FloatType())

    return sig, codegen


@njit(cache=True, inline="always", error_model="numpy")
def _eigen_exp(v):
    # Branch-free so that LLVM vectorises the loops; a NaN input is selected back at the end.
    t = EXP_HI if v > EXP_HI else v
    t = EXP_LO if t < EXP_LO else t
    m = t * LOG2E + HALF
    m = _f(np.floor(m))
    t = t - m * C1
    t = t - m * C2
    r2 = t * t
    y = P0 * t + P1
    y = y * t + P2
    y = y * t + P3
    y = y * t + P4
    y = y * t + P5
    y = y * r2 + t
    y = y + ONE
    # 2**m built in the exponent field, as Eigen does: m = -127 gives +0, m = 128 gives +inf.
    y = y * _float32_from_bits((np.int32(m) + np.int32(127)) << np.int32(23))
    return v if (v != v or v > y) else y


@njit([UNARY[np.dtype(np.float32)]], cache=True, error_model="numpy")
def sigmoid_s(x, out):
    for i in range(x.size):
        out[i] = ONE / (_eigen_exp(-x[i]) + ONE)


@njit([UNARY[np.dtype(np.float32)]], cache=True, error_model="numpy")
def tanh_s(x, out):
    for i in range(x.size):
        v = x[i]
        t = NINE if v > NINE else v
        t = -NINE if t < -NINE else t
        x2 = t * t
        p = x2 * A13 + A11
        p = p * x2 + A9
        p = p * x2 + A7
        p = p * x2 + A5
        p = p * x2 + A3
        p = p * x2 + A1
        p = p * t
        q = x2 * B6 + B4
        q = q * x2 + B2
        q = q * x2 + B0
        out[i] = p / q


@njit(list(UNARY.values()), cache=True)
def relu_s(x, out):
    for i in range(x.size):
        v = x[i]
        zero = cast_like(0, v)
        out[i] = zero if v < zero else v


@njit(list(BINARY.values()), cache=True)
def relu_gradient_s(y, dy, out):
    for i in range(y.size):
        g = dy[i]
        zero = cast_like(0, g)
        out[i] = g if y[i] > zero else zero


@njit(list(BINARY.values()), cache=True)
def sigmoid_gradient_s(y, dy, out):
    for i in range(y.size):
        v = y[i]
        one = cast_like(1, v)
        out[i] = (dy[i] * v) * (one - v)


@njit(list(BINARY.values()), cache=True)
def tanh_gradient_s(y, dy, out):
    for i in range(y.size):
        v = y[i]
        one = cast_like(1, v)
        out[i] = dy[i] * (one - v * v)
