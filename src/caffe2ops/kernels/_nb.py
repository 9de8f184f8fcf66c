"""Numba kernels behind :mod:`caffe2ops.kernels.cpu` (this module imports numba; load it lazily).

Layout: every operator has a *serial* kernel ``<name>_s`` working on 1-D C-contiguous arrays (or
2-D row-major ones for the row kernels) whose loops start at index 0 so that LLVM can prove the
indices non-negative and vectorise them, and a *parallel* wrapper ``<name>_p(..., nt)`` that cuts
the arrays into ``nt`` contiguous, 64-element-aligned chunks and runs the serial kernel on each
chunk in a ``prange``. Both paths run the same machine code on every element, so results do not
depend on the thread count. Element-wise kernels use no fast-math flag (every result is the exact
IEEE formula); only the float32 sine/cosine polynomial (tolerance-based) allows FMA contraction.

Kernels that may run in place compare data pointers and use a loop that reads and writes the same
array: LLVM's runtime alias check would otherwise send exact aliasing down its scalar path.

Two LLVM-level helpers (``@intrinsic``): 64-byte non-temporal stores for outputs larger than the
last-level cache, and a 512-bit vector-width preference for the sine/cosine polynomial.
"""

from __future__ import annotations

import math
import platform

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload
from numba.np.ufunc import parallel as _parallel

_CONTRACT = {"contract"}

# ---------------------------------------------------------------------------------------------
# helpers


def cast_like(v, like):  # pragma: no cover - replaced by the overload inside jitted code
    """Round ``v`` to the (numba) type of ``like``; jitted code only."""
    raise NotImplementedError


@overload(cast_like, jit_options={"cache": True})
def _cast_like_ol(v, like):
    target = like

    def impl(v, like):
        return target(v)

    return impl


try:  # the public numba.set_num_threads re-validates on every call (~1 us); n is valid here
    _launch_threads = _parallel._launch_threads
    _set_num_threads = _parallel._set_num_threads

    def set_threads(n: int) -> None:
        """Set numba's thread count for the calling thread (n already validated)."""
        _launch_threads()
        _set_num_threads(n)

except AttributeError:  # pragma: no cover - other numba versions
    from numba import set_num_threads as set_threads  # noqa: F401


@njit(cache=True)
def _chunk(n, nt):
    """Chunk length: n split into nt parts, rounded up to a multiple of 64 elements."""
    ch = (n + nt - 1) // nt
    return (ch + 63) // 64 * 64


# Streaming (non-temporal) stores for outputs larger than the last-level cache: the kernel writes
# a 16 KiB block into a small buffer, which is then copied to ``out`` with 64-byte non-temporal
# vector stores. This skips the read-for-ownership of ``out``, a third of the memory traffic of
# a unary kernel. ``<op>_nt(..., out, stream)`` runs one chunk (plain when ``stream`` is False)
# and ``<op>_p(..., out, nt, stream)`` runs the chunks in parallel. Only the cheap, memory-bound
# kernels stream: cos/sin/cos_gradient compute long enough per element that writing a block and
# then streaming it out serialises compute and memory traffic (measured slower), and integer clip
# keeps a plain wrapper.

NT_BLOCK_BYTES = 16384


@intrinsic
def _nt_store_line(typingctx, dst, i, src, j):
    """dst[i:i+L] = src[j:j+L] for L = 64 bytes, one non-temporal store (dst + i 64-B aligned)."""
    sig = types.void(dst, i, src, j)

    def codegen(context, builder, signature, args):
        dty, _, sty, _ = signature.args
        d = context.make_array(dty)(context, builder, args[0])
        s = context.make_array(sty)(context, builder, args[2])
        elty = context.get_value_type(dty.dtype)
        size = context.get_abi_sizeof(elty)
        vecty = ir.VectorType(elty, 64 // size)
        sp = builder.bitcast(builder.gep(s.data, [args[3]], inbounds=True), vecty.as_pointer())
        dp = builder.bitcast(builder.gep(d.data, [args[1]], inbounds=True), vecty.as_pointer())
        v = builder.load(sp, align=size)
        st = builder.store(v, dp, align=64)
        st.set_metadata("nontemporal",
                        builder.module.add_metadata([ir.Constant(ir.IntType(32), 1)]))
        return context.get_dummy_value()

    return sig, codegen


_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")


@intrinsic
def _sfence(typingctx):
    """Order the non-temporal stores before whatever follows (x86 ``sfence``; elsewhere a full
    fence)."""
    sig = types.void()

    def codegen(context, builder, signature, args):
        if _X86:
            fn = builder.module.declare_intrinsic(
                "llvm.x86.sse.sfence", fnty=ir.FunctionType(ir.VoidType(), []))
            builder.call(fn, [])
        else:  # pragma: no cover - not x86
            builder.fence("seq_cst")
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True)
def _nt_span(out):
    """(h, stop): out[h:stop] starts 64-byte aligned and holds whole 64-byte lines; (n, n) if
    the array is not itemsize-aligned."""
    n = out.size
    size = out.itemsize
    addr = out.ctypes.data
    if addr % size != 0:
        return n, n
    h = min(n, ((64 - (addr & 63)) & 63) // size)
    line = 64 // size
    return h, h + (n - h) // line * line


@njit(cache=True)
def _nt_copy(dst, src):
    """dst[:] = src[:dst.size] with streaming stores (dst 64-byte aligned, whole lines)."""
    line = 64 // dst.itemsize
    for j in range(0, dst.size, line):
        _nt_store_line(dst, j, src, j)


# ---------------------------------------------------------------------------------------------
# Clip


@njit(cache=True)
def clip_s(x, lo, hi, out):
    if x.ctypes.data == out.ctypes.data:
        for i in range(out.size):
            v = out[i]
            m = lo if v < lo else v
            out[i] = hi if hi < m else m
    else:
        for i in range(x.size):
            v = x[i]
            m = lo if v < lo else v
            out[i] = hi if hi < m else m
    return out


@njit(cache=True)
def clip_nt(x, lo, hi, out, stream):
    if not stream:
        return clip_s(x, lo, hi, out)
    h, stop = _nt_span(out)
    blk = NT_BLOCK_BYTES // out.itemsize
    buf = np.empty(blk, out.dtype)
    clip_s(x[:h], lo, hi, out[:h])
    for b in range(h, stop, blk):
        m = min(blk, stop - b)
        clip_s(x[b:b + m], lo, hi, buf[:m])
        _nt_copy(out[b:b + m], buf)
    clip_s(x[stop:], lo, hi, out[stop:])
    _sfence()
    return out


@njit(parallel=True, cache=True)
def clip_p(x, lo, hi, out, nt, stream):
    n = x.size
    ch = _chunk(n, nt)
    if not stream:  # straight to the serial kernel: measured faster than through _nt
        for c in prange(nt):
            s = min(n, c * ch)
            e = min(n, s + ch)
            clip_s(x[s:e], lo, hi, out[s:e])
        return out
    for c in prange(nt):
        s = min(n, c * ch)
        e = min(n, s + ch)
        clip_nt(x[s:e], lo, hi, out[s:e], stream)
    return out


@njit(parallel=True, cache=True)
def clip_plain_p(x, lo, hi, out, nt):
    n = x.size
    ch = _chunk(n, nt)
    for c in prange(nt):
        s = min(n, c * ch)
        e = min(n, s + ch)
        clip_s(x[s:e], lo, hi, out[s:e])
    return out


@njit(cache=True)
def clip_gradient_s(y, dy, lo, hi, out):
    one = cast_like(1, lo)
    zero = cast_like(0, lo)
    if dy.ctypes.data == out.ctypes.data:
        for i in range(out.size):
            v = y[i]
            out[i] = out[i] * (one if (lo < v) & (v < hi) else zero)
    else:
        for i in range(y.size):
            v = y[i]
            out[i] = dy[i] * (one if (lo < v) & (v < hi) else zero)
    return out


@njit(cache=True)
def clip_gradient_nt(y, dy, lo, hi, out, stream):
    if not stream:
        return clip_gradient_s(y, dy, lo, hi, out)
    h, stop = _nt_span(out)
    blk = NT_BLOCK_BYTES // out.itemsize
    buf = np.empty(blk, out.dtype)
    clip_gradient_s(y[:h], dy[:h], lo, hi, out[:h])
    for b in range(h, stop, blk):
        m = min(blk, stop - b)
        clip_gradient_s(y[b:b + m], dy[b:b + m], lo, hi, buf[:m])
        _nt_copy(out[b:b + m], buf)
    clip_gradient_s(y[stop:], dy[stop:], lo, hi, out[stop:])
    _sfence()
    return out


@njit(parallel=True, cache=True)
def clip_gradient_p(y, dy, lo, hi, out, nt, stream):
    n = y.size
    ch = _chunk(n, nt)
    if not stream:  # straight to the serial kernel: measured faster than through _nt
        for c in prange(nt):
            s = min(n, c * ch)
            e = min(n, s + ch)
            clip_gradient_s(y[s:e], dy[s:e], lo, hi, out[s:e])
        return out
    for c in prange(nt):
        s = min(n, c * ch)
        e = min(n, s + ch)
        clip_gradient_nt(y[s:e], dy[s:e], lo, hi, out[s:e], stream)
    return out


# ---------------------------------------------------------------------------------------------
# ThresholdedRelu


@njit(cache=True)
def thresholded_relu_s(x, alpha, out):
    zero = cast_like(0, alpha)
    if x.ctypes.data == out.ctypes.data:
        for i in range(out.size):
            v = out[i]
            out[i] = v if v > alpha else zero
    else:
        for i in range(x.size):
            v = x[i]
            out[i] = v if v > alpha else zero
    return out


@njit(cache=True)
def thresholded_relu_nt(x, alpha, out, stream):
    if not stream:
        return thresholded_relu_s(x, alpha, out)
    h, stop = _nt_span(out)
    blk = NT_BLOCK_BYTES // out.itemsize
    buf = np.empty(blk, out.dtype)
    thresholded_relu_s(x[:h], alpha, out[:h])
    for b in range(h, stop, blk):
        m = min(blk, stop - b)
        thresholded_relu_s(x[b:b + m], alpha, buf[:m])
        _nt_copy(out[b:b + m], buf)
    thresholded_relu_s(x[stop:], alpha, out[stop:])
    _sfence()
    return out


@njit(parallel=True, cache=True)
def thresholded_relu_p(x, alpha, out, nt, stream):
    n = x.size
    ch = _chunk(n, nt)
    if not stream:  # straight to the serial kernel: measured faster than through _nt
        for c in prange(nt):
            s = min(n, c * ch)
            e = min(n, s + ch)
            thresholded_relu_s(x[s:e], alpha, out[s:e])
        return out
    for c in prange(nt):
        s = min(n, c * ch)
        e = min(n, s + ch)
        thresholded_relu_nt(x[s:e], alpha, out[s:e], stream)
    return out


@njit(cache=True)
def thresholded_relu_gradient_s(y, dy, alpha, out):
    # alpha is the threshold applied to y (0 for the Y-based gradient, alpha for the X-based one)
    zero = cast_like(0, alpha)
    if dy.ctypes.data == out.ctypes.data:
        for i in range(out.size):
            out[i] = out[i] if y[i] > alpha else zero
    else:
        for i in range(y.size):
            out[i] = dy[i] if y[i] > alpha else zero
    return out


@njit(cache=True)
def thresholded_relu_gradient_nt(y, dy, alpha, out, stream):
    if not stream:
        return thresholded_relu_gradient_s(y, dy, alpha, out)
    h, stop = _nt_span(out)
    blk = NT_BLOCK_BYTES // out.itemsize
    buf = np.empty(blk, out.dtype)
    thresholded_relu_gradient_s(y[:h], dy[:h], alpha, out[:h])
    for b in range(h, stop, blk):
        m = min(blk, stop - b)
        thresholded_relu_gradient_s(y[b:b + m], dy[b:b + m], alpha, buf[:m])
        _nt_copy(out[b:b + m], buf)
    thresholded_relu_gradient_s(y[stop:], dy[stop:], alpha, out[stop:])
    _sfence()
    return out


@njit(parallel=True, cache=True)
def thresholded_relu_gradient_p(y, dy, alpha, out, nt, stream):
    n = y.size
    ch = _chunk(n, nt)
    if not stream:  # straight to the serial kernel: measured faster than through _nt
        for c in prange(nt):
            s = min(n, c * ch)
            e = min(n, s + ch)
            thresholded_relu_gradient_s(y[s:e], dy[s:e], alpha, out[s:e])
        return out
    for c in prange(nt):
        s = min(n, c * ch)
        e = min(n, s + ch)
        thresholded_relu_gradient_nt(y[s:e], dy[s:e], alpha, out[s:e], stream)
    return out


# ---------------------------------------------------------------------------------------------
# Cos / Sin / CosGradient
#
# float32: Cody-Waite reduction by pi/2 in float32 (4-part constant, exact products for |k| < 2^16),
# minimax polynomials (Cephes sinf/cosf) on [-pi/4, pi/4], quadrant from the integer bits of the
# rounding "magic number". |x| > 32768, inf and NaN take a float64 libm path (rare). Max error
# about 7e-8 (absolute + relative) against float64 cos over all float32 in [1e-3, 2^20].
# float64: libm cos/sin per element (the same functions NumPy calls).

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
# t = v*2/pi + MAGIC holds k in its low bits: int32 bits of t = 0x4B400000 + k for |k| < 2**22.
# u = uint32(bits - 0x4B400000 + KBIG) > 2*KBIG flags |k| > KBIG = 20860 (|v| > ~32767.6) and
# every huge, infinite or NaN v; the kernels max-reduce u and redo the flagged elements of such
# chunks in float64 libm.
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


@njit(fastmath=_CONTRACT, inline="always")
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


@njit(fastmath=_CONTRACT, inline="always")
def _cos_f32(v):
    s, c, q, u = _sincos_f32(v)
    res = s if (q & np.int32(1)) != np.int32(0) else c
    return (-res if ((q + np.int32(1)) & np.int32(2)) != np.int32(0) else res), u


@njit(fastmath=_CONTRACT, inline="always")
def _sin_f32(v):
    s, c, q, u = _sincos_f32(v)
    res = c if (q & np.int32(1)) != np.int32(0) else s
    return (-res if (q & np.int32(2)) != np.int32(0) else res), u


# The float32 kernels store, in their vector loop, the result for unflagged elements and the
# input itself for flagged ones; the libm pass then finds the flagged elements again from what
# ``out`` holds (results of unflagged elements lie in [-1, 1] and are never flagged), so ``out``
# may alias ``x`` (or ``dy`` for the gradient).


@njit(fastmath=_CONTRACT, cache=True)
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
    return out


@njit(fastmath=_CONTRACT, cache=True)
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
    return out


@njit(cache=True)
def cos64_s(x, out):
    for i in range(x.size):
        out[i] = math.cos(x[i])
    return out


@njit(cache=True)
def cos_gradient64_s(x, dy, out):
    for i in range(x.size):
        out[i] = (-dy[i]) * math.sin(x[i])
    return out


@njit(parallel=True, cache=True)
def cos32_p(x, out, nt):
    n = x.size
    ch = _chunk(n, nt)
    for c in prange(nt):
        s = min(n, c * ch)
        e = min(n, s + ch)
        cos32_s(x[s:e], out[s:e])
    return out


@njit(parallel=True, cache=True)
def cos_gradient32_p(x, dy, out, nt):
    n = x.size
    ch = _chunk(n, nt)
    for c in prange(nt):
        s = min(n, c * ch)
        e = min(n, s + ch)
        cos_gradient32_s(x[s:e], dy[s:e], out[s:e])
    return out


@njit(parallel=True, cache=True)
def cos64_p(x, out, nt):
    n = x.size
    ch = _chunk(n, nt)
    for c in prange(nt):
        s = min(n, c * ch)
        e = min(n, s + ch)
        cos64_s(x[s:e], out[s:e])
    return out


@njit(parallel=True, cache=True)
def cos_gradient64_p(x, dy, out, nt):
    n = x.size
    ch = _chunk(n, nt)
    for c in prange(nt):
        s = min(n, c * ch)
        e = min(n, s + ch)
        cos_gradient64_s(x[s:e], dy[s:e], out[s:e])
    return out


# ---------------------------------------------------------------------------------------------
# CosineEmbeddingCriterion


@njit(cache=True)
def cec_s(s, label, margin, out):
    one = cast_like(1, margin)
    zero = cast_like(0, margin)
    for i in range(s.size):
        v = s[i]
        d = v - margin
        d = d if d > zero else zero
        out[i] = (one - v) if label[i] == 1 else d
    return out


@njit(cache=True)
def cec_nt(s_, label, margin, out, stream):
    if not stream:
        return cec_s(s_, label, margin, out)
    h, stop = _nt_span(out)
    blk = NT_BLOCK_BYTES // out.itemsize
    buf = np.empty(blk, out.dtype)
    cec_s(s_[:h], label[:h], margin, out[:h])
    for b in range(h, stop, blk):
        m = min(blk, stop - b)
        cec_s(s_[b:b + m], label[b:b + m], margin, buf[:m])
        _nt_copy(out[b:b + m], buf)
    cec_s(s_[stop:], label[stop:], margin, out[stop:])
    _sfence()
    return out


@njit(parallel=True, cache=True)
def cec_p(s_, label, margin, out, nt, stream):
    n = s_.size
    ch = _chunk(n, nt)
    for c in prange(nt):
        s = min(n, c * ch)
        e = min(n, s + ch)
        cec_nt(s_[s:e], label[s:e], margin, out[s:e], stream)
    return out


@njit(cache=True)
def cec_gradient_s(s, label, dloss, margin, out):
    one = cast_like(1, margin)
    zero = cast_like(0, margin)
    for i in range(s.size):
        g = dloss[i]
        out[i] = -g if label[i] == 1 else g * (one if s[i] >= margin else zero)
    return out


@njit(cache=True)
def cec_gradient_nt(s_, label, dloss, margin, out, stream):
    if not stream:
        return cec_gradient_s(s_, label, dloss, margin, out)
    h, stop = _nt_span(out)
    blk = NT_BLOCK_BYTES // out.itemsize
    buf = np.empty(blk, out.dtype)
    cec_gradient_s(s_[:h], label[:h], dloss[:h], margin, out[:h])
    for b in range(h, stop, blk):
        m = min(blk, stop - b)
        cec_gradient_s(s_[b:b + m], label[b:b + m], dloss[b:b + m], margin, buf[:m])
        _nt_copy(out[b:b + m], buf)
    cec_gradient_s(s_[stop:], label[stop:], dloss[stop:], margin, out[stop:])
    _sfence()
    return out


@njit(parallel=True, cache=True)
def cec_gradient_p(s_, label, dloss, margin, out, nt, stream):
    n = s_.size
    ch = _chunk(n, nt)
    for c in prange(nt):
        s = min(n, c * ch)
        e = min(n, s + ch)
        cec_gradient_nt(s_[s:e], label[s:e], dloss[s:e], margin, out[s:e], stream)
    return out


# ---------------------------------------------------------------------------------------------
# Row kernels: CosineSimilarity (+gradient), SparseNormalize. Row sums accumulate in float64,
# sequentially in index order.


@njit(cache=True)
def _row_sums(xr, yr):
    a = 0.0
    b = 0.0
    c = 0.0
    for i in range(xr.size):
        xv = np.float64(xr[i])
        yv = np.float64(yr[i])
        a += xv * xv
        b += yv * yv
        c += xv * yv
    return a, b, c


@njit(cache=True)
def cosine_similarity_s(x, y, eps, out):
    for r in range(x.shape[0]):
        a, b, c = _row_sums(x[r], y[r])
        x2 = cast_like(a, eps)
        y2 = cast_like(b, eps)
        xy = cast_like(c, eps)
        out[r] = xy / np.sqrt(max(x2, eps) * max(y2, eps))
    return out


@njit(parallel=True, cache=True)
def cosine_similarity_p(x, y, eps, out, nt):
    n = x.shape[0]
    ch = (n + nt - 1) // nt
    for c in prange(nt):
        a = min(n, c * ch)
        e = min(n, a + ch)
        cosine_similarity_s(x[a:e], y[a:e], eps, out[a:e])
    return out


@njit(cache=True)
def cosine_similarity_gradient_s(x, y, dz, eps, dx, dy):
    for r in range(x.shape[0]):
        xr = x[r]
        yr = y[r]
        a, b, c = _row_sums(xr, yr)
        x2 = cast_like(a, eps)
        y2 = cast_like(b, eps)
        xy = cast_like(c, eps)
        g = dz[r]
        xn = np.sqrt(max(x2, eps))
        yn = np.sqrt(max(y2, eps))
        xyn = xn * yn
        k = g / xyn
        kx = (g * xy) / ((xn * xn) * xyn)
        ky = (g * xy) / ((yn * yn) * xyn)
        dxr = dx[r]
        dyr = dy[r]
        for i in range(xr.size):
            xv = xr[i]
            yv = yr[i]
            dxr[i] = k * yv - kx * xv
            dyr[i] = k * xv - ky * yv
    return dx, dy


@njit(parallel=True, cache=True)
def cosine_similarity_gradient_p(x, y, dz, eps, dx, dy, nt):
    n = x.shape[0]
    ch = (n + nt - 1) // nt
    for c in prange(nt):
        a = min(n, c * ch)
        e = min(n, a + ch)
        cosine_similarity_gradient_s(x[a:e], y[a:e], dz[a:e], eps, dx[a:e], dy[a:e])
    return dx, dy


@njit(cache=True)
def _unique_rows(indices, rows):
    """Distinct indices in increasing order (indices already checked: 0 <= i < rows).

    Sorted rows give the parallel pass disjoint, contiguous row ranges per thread (no two
    threads write one cache line) and a prefetch-friendly order. Few indices: sort them;
    many: mark a byte per row and scan the marks.
    """
    k = indices.size
    if k * 8 < rows:
        srt = np.sort(indices)
        uniq = np.empty(k, np.int64)
        cnt = 0
        prev = -1
        for j in range(k):
            i = srt[j]
            if i != prev:
                uniq[cnt] = i
                cnt += 1
                prev = i
        return uniq[:cnt]
    seen = np.zeros(rows, np.uint8)
    for j in range(k):
        seen[indices[j]] = 1
    cnt = 0
    for i in range(rows):
        cnt += seen[i]
    uniq = np.empty(cnt + 1, np.int64)
    c = 0
    for i in range(rows):  # branch-free compaction
        uniq[c] = i
        c += seen[i]
    return uniq[:cnt]


@njit(inline="always")
def _rescale_row(pr, a, norm, use_max_norm, eps):
    n = cast_like(np.sqrt(a), norm)
    if use_max_norm and n <= norm:
        return
    scale = norm / (n + eps)
    for i in range(pr.size):
        pr[i] = pr[i] * scale


@njit(cache=True)
def _normalize_rows(param, rows, norm, use_max_norm, eps):
    """Rescale param[rows]; four rows at a time so that four sums are in flight."""
    m = rows.size
    d = param.shape[1]
    j = 0
    while j + 3 < m:
        pa = param[rows[j]]
        pb = param[rows[j + 1]]
        pc = param[rows[j + 2]]
        pd = param[rows[j + 3]]
        a = 0.0
        b = 0.0
        c = 0.0
        e = 0.0
        for i in range(d):
            va = np.float64(pa[i])
            vb = np.float64(pb[i])
            vc = np.float64(pc[i])
            vd = np.float64(pd[i])
            a += va * va
            b += vb * vb
            c += vc * vc
            e += vd * vd
        _rescale_row(pa, a, norm, use_max_norm, eps)
        _rescale_row(pb, b, norm, use_max_norm, eps)
        _rescale_row(pc, c, norm, use_max_norm, eps)
        _rescale_row(pd, e, norm, use_max_norm, eps)
        j += 4
    while j < m:
        pa = param[rows[j]]
        a = 0.0
        for i in range(d):
            va = np.float64(pa[i])
            a += va * va
        _rescale_row(pa, a, norm, use_max_norm, eps)
        j += 1


@njit(cache=True)
def sparse_normalize_s(param, indices, norm, use_max_norm, eps):
    _normalize_rows(param, _unique_rows(indices, param.shape[0]), norm, use_max_norm, eps)
    return param


@njit(parallel=True, cache=True)
def sparse_normalize_p(param, indices, norm, use_max_norm, eps, nt):
    rows = _unique_rows(indices, param.shape[0])
    n = rows.size
    ch = (n + nt - 1) // nt
    for c in prange(nt):
        a = min(n, c * ch)
        e = min(n, a + ch)
        _normalize_rows(param, rows[a:e], norm, use_max_norm, eps)
    return param


# ---------------------------------------------------------------------------------------------
# Sum of squares: blocks of SUMSQ_BLOCK elements; inside a block 64 lanes (lane k takes the
# elements at offsets = k mod 64, in order), lanes then added in order; block partials added in
# order. The order is fixed, so the result does not depend on the thread count.

SUMSQ_BLOCK = 16384
SUMSQ_LANES = 64


@njit(cache=True)
def _sumsq_block(x, acc):
    lanes = acc.size
    for k in range(lanes):
        acc[k] = 0.0
    m = x.size // lanes
    for j in range(m):
        xb = x[j * lanes:(j + 1) * lanes]
        for k in range(lanes):
            v = np.float64(xb[k])
            acc[k] += v * v
    t = x[m * lanes:]
    for k in range(t.size):
        v = np.float64(t[k])
        acc[k] += v * v
    s = 0.0
    for k in range(lanes):
        s += acc[k]
    return s


@njit(cache=True)
def _sumsq_blocks(x, b0, b1, block, lanes, part):
    acc = np.empty(lanes)
    n = x.size
    for b in range(b0, b1):
        part[b] = _sumsq_block(x[b * block:min(n, (b + 1) * block)], acc)


@njit(cache=True)
def sum_of_squares_s(x, block, lanes):
    nb = (x.size + block - 1) // block
    part = np.empty(nb)
    _sumsq_blocks(x, 0, nb, block, lanes, part)
    s = 0.0
    for b in range(nb):
        s += part[b]
    return s


@njit(parallel=True, cache=True)
def sum_of_squares_p(x, block, lanes, nt):
    nb = (x.size + block - 1) // block
    part = np.empty(nb)
    per = (nb + nt - 1) // nt
    for c in prange(nt):
        _sumsq_blocks(x, min(nb, c * per), min(nb, (c + 1) * per), block, lanes, part)
    s = 0.0
    for b in range(nb):
        s += part[b]
    return s


# ---------------------------------------------------------------------------------------------
# bandwidth reference for the benchmark


@njit(cache=True)
def copy_s(x, out):
    for i in range(x.size):
        out[i] = x[i]
    return out


@njit(cache=True)
def copy_nt(x, out, stream):
    if not stream:
        return copy_s(x, out)
    h, stop = _nt_span(out)
    blk = NT_BLOCK_BYTES // out.itemsize
    buf = np.empty(blk, out.dtype)
    copy_s(x[:h], out[:h])
    for b in range(h, stop, blk):
        m = min(blk, stop - b)
        copy_s(x[b:b + m], buf[:m])
        _nt_copy(out[b:b + m], buf)
    copy_s(x[stop:], out[stop:])
    _sfence()
    return out


@njit(parallel=True, cache=True)
def copy_p(x, out, nt, stream):
    n = x.size
    ch = _chunk(n, nt)
    if not stream:  # straight to the serial kernel: measured faster than through _nt
        for c in prange(nt):
            s = min(n, c * ch)
            e = min(n, s + ch)
            copy_s(x[s:e], out[s:e])
        return out
    for c in prange(nt):
        s = min(n, c * ch)
        e = min(n, s + ch)
        copy_nt(x[s:e], out[s:e], stream)
    return out
