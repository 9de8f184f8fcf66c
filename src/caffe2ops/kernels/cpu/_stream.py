"""What every CPU kernel family shares: numba helpers and the one launch rule.

Launch rule (:func:`launch`): a call over ``n`` elements runs the serial kernel in the calling
thread when ``n`` is below its family's threshold (``PAR_MIN`` by default) and it does not
stream; otherwise the parallel wrapper runs ``threads x chunks_per_thread`` contiguous chunks,
64-element aligned, in a ``prange`` on numba's thread pool (TBB, or workqueue under
:data:`caffe2ops.kernels.LAUNCH_LOCK`). Memory-bound element-wise calls touching at least
:data:`caffe2ops.kernels.cpu.STREAMING_MIN_BYTES` bytes write their output with streaming
(non-temporal) stores. Every element gets the same instructions on every path, so results
depend neither on the thread count nor on the path.

Streaming stores: the kernel writes a 16 KiB block into a small buffer, which is then copied to
``out`` with 64-byte non-temporal vector stores (:func:`stream_copy`). This skips the
read-for-ownership of ``out``, a third of the memory traffic of a unary kernel. Only the cheap,
memory-bound kernels stream: cos/sin compute long enough per element that writing a block and
then streaming it out serialises compute and memory traffic (measured slower), and integer clip
does not stream.

Serial loops start at index 0 so that LLVM can prove the indices non-negative and vectorise
them. Kernels that may run in place compare data pointers and use a loop that reads and writes
the same array: LLVM's runtime alias check would otherwise send exact aliasing down its scalar
path. No fast-math flag except where a family says so (:data:`CONTRACT`: FMA contraction only).
"""

from __future__ import annotations

import platform
import threading
from collections.abc import Callable

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload
from numba.np.ufunc import parallel as _parallel

from caffe2ops import kernels
from caffe2ops.kernels import STATE, get_num_threads
from caffe2ops.kernels import cpu as settings

FLOAT_DTYPES = frozenset(np.dtype(t) for t in (np.float32, np.float64))
#: fastmath flags allowing FMA contraction only (for tolerance-based polynomials).
CONTRACT = {"contract"}
STREAM_BLOCK_BYTES = 16384


# ------------------------------------------------------------------------------ Python side


def flat(a: np.ndarray) -> np.ndarray:
    """1-D view of a C-contiguous array (raises rather than copy a non-contiguous one)."""
    if a.ndim == 1:
        return a
    v = a.view()
    v.shape = (a.size,)
    return v


def scalar(v: object, t: type) -> object:
    """``v`` as the numpy scalar type ``t`` (the kernels compile one variant per dtype)."""
    return v if type(v) is t else t(v)


class _WarmUp(threading.local):
    """Per-thread override of the thread count while ``preload`` runs (None: none); the module
    thresholds are never modified, so concurrent warm-ups cannot leave them changed."""

    threads: int | None = None


WARM_UP = _WarmUp()


def threads_for(n: int, minimum: int) -> int:
    """Threads for an n-element call: 1 below ``minimum``; else the configured count."""
    forced = WARM_UP.threads
    if forced is not None:
        return forced
    if n < minimum:
        return 1
    return STATE.threads or get_num_threads()


try:  # the public numba.set_num_threads re-validates on every call (~1 us); n is valid here
    _launch_threads = _parallel._launch_threads
    _set_num_threads = _parallel._set_num_threads

    def set_threads(n: int) -> None:
        """Set numba's thread count for the calling thread (n already validated)."""
        _launch_threads()
        _set_num_threads(n)

except AttributeError:  # pragma: no cover - other numba versions
    from numba import set_num_threads as set_threads  # noqa: F401


def launch(serial: Callable | None, parallel: Callable, args: tuple, n: int, *,
           minimum: int | None = None, stream_bytes: int | None = None,
           chunks_per_thread: int | None = None) -> object:
    """Run ``serial(*args)`` or ``parallel(*args, chunks[, stream])`` by the launch rule.

    ``stream_bytes``: bytes the call touches, for wrappers that take a ``stream`` flag (None:
    the wrapper takes none). ``serial`` None: always the parallel wrapper (it also serves one
    thread). ``chunks_per_thread`` defaults to :data:`caffe2ops.kernels.cpu.CHUNKS_PER_THREAD`
    for streaming-capable (memory-bound) calls and 1 otherwise.
    """
    threads = threads_for(n, settings.PAR_MIN if minimum is None else minimum)
    stream = stream_bytes is not None and stream_bytes >= settings.STREAMING_MIN_BYTES
    if serial is not None and threads == 1 and not stream:
        return serial(*args)
    if chunks_per_thread is None:
        chunks_per_thread = 1 if stream_bytes is None else settings.CHUNKS_PER_THREAD
    chunks = threads * chunks_per_thread
    with kernels.LAUNCH_LOCK:
        set_threads(threads)
        if stream_bytes is None:
            return parallel(*args, chunks)
        return parallel(*args, chunks, stream)


# ------------------------------------------------------------------------------- numba side


def cast_like(v, like):  # pragma: no cover - replaced by the overload inside jitted code
    """Round ``v`` to the (numba) type of ``like``; jitted code only."""
    raise NotImplementedError


@overload(cast_like, jit_options={"cache": True})
def _cast_like_ol(v, like):
    target = like

    def impl(v, like):
        return target(v)

    return impl


@njit(cache=True)
def chunk_length(n, chunks):
    """Chunk length: n split into ``chunks`` parts, rounded up to a multiple of 64 elements."""
    ch = (n + chunks - 1) // chunks
    return (ch + 63) // 64 * 64


@intrinsic
def _stream_store_line(typingctx, dst, i, src, j):
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
        store = builder.store(v, dp, align=64)
        store.set_metadata("nontemporal",
                           builder.module.add_metadata([ir.Constant(ir.IntType(32), 1)]))
        return context.get_dummy_value()

    return sig, codegen


_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")


@intrinsic
def store_fence(typingctx):
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
def streaming_span(out):
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
def stream_copy(dst, src):
    """dst[:] = src[:dst.size] with streaming stores (dst 64-byte aligned, whole lines)."""
    line = 64 // dst.itemsize
    for j in range(0, dst.size, line):
        _stream_store_line(dst, j, src, j)


#: How many lookups ahead the kernels prefetch rows (as Caffe2's embedding kernels do).
PREFETCH = 16


@intrinsic
def fma(typingctx, a, b, c):
    """``a*b + c`` rounded once (LLVM ``llvm.fma``), for float32/float64 scalars."""
    if not (isinstance(a, types.Float) and a == b == c):
        return None
    sig = a(a, b, c)

    def codegen(context, builder, signature, args):
        ty = context.get_value_type(signature.return_type)
        fn = builder.module.declare_intrinsic("llvm.fma", [ty],
                                              fnty=ir.FunctionType(ty, [ty, ty, ty]))
        return builder.call(fn, args)

    return sig, codegen


@intrinsic
def prefetch_row(typingctx, table, row):
    """Hint the CPU to load row ``row`` of the 2-D C-contiguous ``table`` (every 64-byte line;
    LLVM ``llvm.prefetch``, read, high locality). No effect on results; ``row`` must be valid."""
    if not (isinstance(table, types.Array) and table.ndim == 2 and isinstance(row, types.Integer)):
        return None
    sig = types.void(table, row)

    def codegen(context, builder, signature, args):
        aty = signature.args[0]
        arr = context.make_array(aty)(context, builder, args[0])
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = builder.module.declare_intrinsic(
            "llvm.prefetch", [i8p], fnty=ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]))
        ncols = builder.extract_value(arr.shape, 1)
        itemsize = context.get_abi_sizeof(context.get_value_type(aty.dtype))
        row_bytes = builder.mul(ncols, ir.Constant(ncols.type, itemsize))
        start = builder.mul(builder.sext(args[1], ncols.type), row_bytes)
        base = builder.bitcast(arr.data, i8p)
        with builder.goto_entry_block():
            off_ptr = builder.alloca(ncols.type)
        builder.store(ir.Constant(ncols.type, 0), off_ptr)
        loop = builder.append_basic_block("prefetch.loop")
        body = builder.append_basic_block("prefetch.body")
        done = builder.append_basic_block("prefetch.done")
        builder.branch(loop)
        builder.position_at_end(loop)
        off = builder.load(off_ptr)
        builder.cbranch(builder.icmp_signed("<", off, row_bytes), body, done)
        builder.position_at_end(body)
        ptr = builder.gep(base, [builder.add(start, off)])
        builder.call(fn, [ptr, i32(0), i32(3), i32(1)])
        builder.store(builder.add(off, ir.Constant(ncols.type, 64)), off_ptr)
        builder.branch(loop)
        builder.position_at_end(done)
        return context.get_dummy_value()

    return sig, codegen


# --------------------------------------------------------- generic parallel wrappers (cached)
#
# A kernel handed to a parallel wrapper as a *dispatcher* (or captured in a closure) becomes
# part of numba's cache key and is recompiled in every process (measured); as a first-class
# function of an explicit signature it is cached. So the element-wise kernels without scalar
# arguments declare their signatures (UNARY: ``kernel(x, out)``, BINARY: ``kernel(a, b, out)``,
# float32 and float64, 1-D C-contiguous) and share the two wrappers below. The arrays are typed
# as possibly unaligned, which aligned arrays convert to (measured: the same speed), so an
# unaligned buffer (e.g. unpickled out of band) runs the same kernel.


def _vector(t):
    return types.Array(t, 1, "C", aligned=False)


# The wrappers below compile when this module is imported, and compiling a parallel function
# starts numba's thread pool: choose the fork-safe threading layer first, whoever imports us
# (measured: imported before caffe2ops.kernels.load(), numba picked "omp").
kernels._LOADER["layer"] = kernels._configure_threading_layer()


UNARY = {np.dtype(np.float32): types.void(_vector(types.float32), _vector(types.float32)),
         np.dtype(np.float64): types.void(_vector(types.float64), _vector(types.float64))}
BINARY = {np.dtype(t): types.void(_vector(nt), _vector(nt), _vector(nt))
          for t, nt in ((np.float32, types.float32), (np.float64, types.float64))}


@njit([types.void(types.FunctionType(s), *s.args, types.int64) for s in UNARY.values()],
      parallel=True, cache=True)
def unary_p(kernel, x, out, chunks):
    """``kernel(x[chunk], out[chunk])`` for ``chunks`` 64-element-aligned chunks, in parallel."""
    n = x.size
    ch = chunk_length(n, chunks)
    for c in prange(chunks):
        s = min(n, c * ch)
        e = min(n, s + ch)
        kernel(x[s:e], out[s:e])


@njit([types.void(types.FunctionType(s), *s.args, types.int64) for s in BINARY.values()],
      parallel=True, cache=True)
def binary_p(kernel, a, b, out, chunks):
    """``kernel(a[chunk], b[chunk], out[chunk])`` for ``chunks`` chunks, in parallel."""
    n = a.size
    ch = chunk_length(n, chunks)
    for c in prange(chunks):
        s = min(n, c * ch)
        e = min(n, s + ch)
        kernel(a[s:e], b[s:e], out[s:e])


def launch_declared(kernel, arrays: tuple, n: int, *, minimum: int | None = None) -> None:
    """:func:`launch` for a kernel of a declared UNARY/BINARY signature: ``kernel(*arrays)`` in
    the calling thread, or :func:`unary_p` / :func:`binary_p` over one chunk per thread."""
    threads = threads_for(n, settings.PAR_MIN if minimum is None else minimum)
    if threads == 1:
        kernel(*arrays)
        return
    parallel = unary_p if len(arrays) == 2 else binary_p
    with kernels.LAUNCH_LOCK:
        set_threads(threads)
        parallel(kernel, *arrays, threads)
