"""Cos and CosGradient on the CPU.

float32: Cody-Waite reduction by pi/2 in float32 (4-part constant, exact products for |k| < 2^16),
minimax polynomials (Cephes sinf/cosf) on [-pi/4, pi/4], quadrant from the integer bits of the
rounding "magic number". |x| > 32768, inf and NaN take a float64 libm path (rare). Max error
about 7e-8 (absolute + relative) against float64 cos over all float32 in [1e-3, 2^20].
float64: libm cos/sin per element (the same functions NumPy calls).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

from caffe2ops.kernels.cpu._stream import BINARY, CONTRACT, UNARY, flat, launch_declared

#: Element count from which float32 cos / cos_gradient use several threads (about 0.4 ns per
#: element per core). Measured on the 2-core EPYC VM, 1 ms after the last call (as inside a net,
#: where the other operators run in between): one thread 85 / 405 / 899 us at 2**17 / 2**20 /
#: 2**21, two threads 233 / 625 / 979 us (the launch wakes the pool); two win from 2**22.
PAR_MIN_COS = 1 << 20
#: The same for float64 (libm, about 15-20 ns per element): one thread 192 / 603 / 1288 us at
#: 2**14 / 2**15 / 2**16, two 387 / 832 / 988 us.
PAR_MIN_COS64 = 1 << 16

_F64 = np.dtype(np.float64)


def cos(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = cos(x)``: float32 within 2.5e-7 (abs + rel) of float64 cos, float64 via libm;
    ±inf and NaN give NaN."""
    if x.dtype == _F64:
        launch_declared(cos64_s, (flat(x), flat(out)), x.size, minimum=PAR_MIN_COS64)
    else:
        launch_declared(cos32_s, (flat(x), flat(out)), x.size, minimum=PAR_MIN_COS)
    return out


def cos_gradient(x: np.ndarray, dy: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = (-dy) * sin(x)``: ``sin(x)`` computed like :func:`cos` (float32: the same
    polynomial and tolerance; float64: libm) and rounded to the dtype, then one multiply in the
    dtype. ``out`` may be ``dy`` or ``x``. ``cos_gradient(x, -1)`` is exactly that sine."""
    args = (flat(x), flat(dy), flat(out))
    if x.dtype == _F64:
        launch_declared(cos_gradient64_s, args, x.size, minimum=PAR_MIN_COS64)
    else:
        launch_declared(cos_gradient32_s, args, x.size, minimum=PAR_MIN_COS)
    return out


def warm_up_calls(a: np.ndarray, b: np.ndarray, o: np.ndarray) -> dict:
    """One small call per entry point (``a``, ``b``, ``o``: 1-D arrays of one dtype)."""
    return {"cos": lambda: cos(a, o), "cos_gradient": lambda: cos_gradient(a, b, o)}


_F = np.float32
_TWO_OVER_PI = _F(0.636619772367581343075535053490)
_MAGIC = _F(12582912.0)  # 1.5 * 2**23: adding it rounds to an integer held in the low bits
_PIO2_A = _F(1.5703125)  # pi/2 in four parts; the first three have <= 9 significant bits,
_PIO2_B = _F(4.835128784179688e-4)  # so k * part is exact for |k| < 2**15 even without FMA
_PIO2_C = _F(3.1385570764541626e-07)
_PIO2_D = _F(6.077100628276710381e-11)
_C1 = _F(2.443315711809948e-05)
_C2 = _F(-1.388731625493765e-03)
_C3 = _F(4.166664568298827e-02)
_S1 = _F(-1.9515295891e-4)
_S2 = _F(8.3321608736e-3)
_S3 = _F(-1.6666654611e-1)
_HALF = _F(0.5)
_ONE = _F(1.0)
_KBIG = 20860
_MAGIC_BITS = 0x4B400000


@intrinsic
def _wide_vectors(typingctx):
    """Let LLVM vectorise the calling function with 512-bit registers where the CPU has them.

    LLVM prefers 256-bit vectors on recent Intel server CPUs; for the compute-bound sine/cosine
    polynomial, 512-bit vectors are ~1.4x faster (same operations, so the same bits). llvmlite
    only accepts known attribute names, so the string attributes are added to the set directly;
    if that ever fails the kernel simply keeps the default width.
    """
    sig = types.void()

    def codegen(context, builder, signature, args):
        try:
            attrs = builder.function.attributes
            set.add(attrs, '"prefer-vector-width"="512"')
            set.add(attrs, '"min-legal-vector-width"="512"')
        except Exception:  # pragma: no cover - other llvmlite versions
            pass
        return context.get_dummy_value()

    return sig, codegen


@njit(fastmath=CONTRACT, inline="always")
def _sincos_f32(v):
    """(sin r, cos r, int32 bits of t, out-of-range flag) with v = k*pi/2 + r, float32."""
    t = v * _TWO_OVER_PI + _MAGIC
    k = t - _MAGIC
    q = np.float32(t).view(np.int32)
    r = v - k * _PIO2_A
    r = r - k * _PIO2_B
    r = r - k * _PIO2_C
    r = r - k * _PIO2_D
    z = r * r
    c = (_ONE - _HALF * z) + z * z * (_C3 + z * (_C2 + z * _C1))
    s = r + r * z * (_S3 + z * (_S2 + z * _S1))
    u = np.uint32(q - np.int32(_MAGIC_BITS) + np.int32(_KBIG))
    return s, c, q, u


@njit(fastmath=CONTRACT, inline="always")
def _cos_f32(v):
    s, c, q, u = _sincos_f32(v)
    res = s if (q & np.int32(1)) != np.int32(0) else c
    return (-res if ((q + np.int32(1)) & np.int32(2)) != np.int32(0) else res), u


@njit(fastmath=CONTRACT, inline="always")
def _sin_f32(v):
    s, c, q, u = _sincos_f32(v)
    res = c if (q & np.int32(1)) != np.int32(0) else s
    return (-res if (q & np.int32(2)) != np.int32(0) else res), u


@njit([UNARY[np.dtype(np.float32)]], fastmath=CONTRACT, cache=True)
def cos32_s(x, out):
    _wide_vectors()
    big = np.uint32(2 * _KBIG)
    m = np.uint32(0)
    for i in range(x.size):
        v = x[i]
        y, u = _cos_f32(v)
        out[i] = y if u <= big else v
        m = max(m, u)
    if m > big:
        for i in range(out.size):
            v = out[i]
            if _cos_f32(v)[1] > big:
                out[i] = np.float32(math.cos(np.float64(v)))


@njit([BINARY[np.dtype(np.float32)]], fastmath=CONTRACT, cache=True)
def cos_gradient32_s(x, dy, out):
    _wide_vectors()
    if x.ctypes.data == out.ctypes.data:
        x = x.copy()  # out = x: keep the inputs for the libm pass
    big = np.uint32(2 * _KBIG)
    m = np.uint32(0)
    if dy.ctypes.data == out.ctypes.data:
        for i in range(out.size):
            y, u = _sin_f32(x[i])
            g = out[i]
            out[i] = (-g) * y if u <= big else g
            m = max(m, u)
    else:
        for i in range(x.size):
            y, u = _sin_f32(x[i])
            g = dy[i]
            out[i] = (-g) * y if u <= big else g
            m = max(m, u)
    if m > big:
        for i in range(x.size):
            v = x[i]
            if _sin_f32(v)[1] > big:  # out[i] still holds dy[i]
                out[i] = (-out[i]) * np.float32(math.sin(np.float64(v)))


@njit([UNARY[np.dtype(np.float64)]], cache=True)
def cos64_s(x, out):
    for i in range(x.size):
        out[i] = math.cos(x[i])


@njit([BINARY[np.dtype(np.float64)]], cache=True)
def cos_gradient64_s(x, dy, out):
    for i in range(x.size):
        out[i] = (-dy[i]) * math.sin(x[i])
