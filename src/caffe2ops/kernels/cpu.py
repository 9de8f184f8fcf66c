"""Fused CPU kernels: the public entry points (numba is imported on the first call).

Preconditions (the caller checks them; the kernels do not): every array is C-contiguous; the
float arrays of one call share one dtype from :func:`supports`; ``out`` has the right size;
``labels`` are int32 or int64, ``indices`` any integer type (already bounds-checked). ``out``
may be the same array as an input (in place) where the docstring says so. Scalars should
already be the array's dtype (``np.float32(0.5)``); other numbers are converted with
``dtype.type(v)``.

Arrays of any shape are processed as flat element sequences. Arrays with fewer than
:data:`PAR_MIN` elements (``PAR_MIN_COS``/``PAR_MIN_ROWS`` for the compute-heavier kernels) run
serially in the calling thread; larger ones are split into :func:`get_num_threads` contiguous
chunks. Memory-bound element-wise calls touching more than :data:`NT_MIN_BYTES` (the last-level
cache) write ``out`` with streaming stores. Every element gets the same instructions on every
path, so results depend neither on the thread count nor on the path. Each function returns its
output.

>>> import numpy as np
>>> from caffe2ops.kernels import cpu
>>> x = np.array([-2.0, -0.0, 0.5, np.nan, 3.0], dtype=np.float32)
>>> cpu.clip(x, np.float32(0.0), np.float32(1.0), np.empty_like(x))
array([ 0. , -0. ,  0.5,  nan,  1. ], dtype=float32)
>>> cpu.thresholded_relu(x, np.float32(0.25), x)  # in place
array([0. , 0. , 0.5, 0. , 3. ], dtype=float32)
"""

from __future__ import annotations

import os
import threading
import warnings
from types import ModuleType

import numpy as np

from caffe2ops import kernels as _kernels
from caffe2ops.kernels import (
    STATE,
    get_max_threads,
    get_num_threads,
    set_num_threads,
    supports,
)

__all__ = [
    "PAR_MIN",
    "PAR_MIN_COS",
    "PAR_MIN_COS64",
    "PAR_MIN_ROWS",
    "NT_MIN_BYTES",
    "clip",
    "clip_gradient",
    "copy",
    "cos",
    "cos_gradient",
    "cosine_embedding_criterion",
    "cosine_embedding_criterion_gradient",
    "cosine_similarity",
    "cosine_similarity_gradient",
    "get_max_threads",
    "get_num_threads",
    "preload",
    "relu",
    "relu_gradient",
    "set_num_threads",
    "sigmoid",
    "sigmoid_gradient",
    "sparse_normalize",
    "sum_of_squares",
    "supports",
    "tanh",
    "tanh_gradient",
    "thresholded_relu",
    "thresholded_relu_gradient",
    "thresholded_relu_gradient_from_x",
]

#: Element count from which the memory-bound element-wise kernels use several threads. Measured
#: on a 2-core AMD EPYC (float32 Clip, warm caches): one thread is faster up to 2**19 elements
#: (47 vs 53 us), even at 2**20 (96 vs 95-105 us), and two are faster from 2**21 (119 vs 239 us).
PAR_MIN = 1 << 20
#: The same for float32 cos / cos_gradient (about 0.3 ns per element per core).
PAR_MIN_COS = 1 << 15
#: The same for float64 cos / cos_gradient (libm, about 15 ns per element).
PAR_MIN_COS64 = 1 << 11
#: The same for the row kernels (counted in elements, rows x row length / index count x row).
PAR_MIN_ROWS = 1 << 15
#: Element-wise calls touching at least this many bytes (inputs + output) write their output
#: with streaming (non-temporal) stores, through the parallel wrappers even with one thread.
#: Set on first use by :func:`_streaming_min_bytes`: a quarter of the last-level cache on Intel
#: CPUs, never elsewhere; ``CAFFE2OPS_STREAMING_STORES`` (``on``, ``off`` or a byte count)
#: overrides. Measured at 1e7 float32, Clip: on a 2-core share of an Intel 260 MB L3, 0.78x
#: PyTorch's time with streaming stores and evicted caches (1.00x with normal stores); on a
#: 2-core AMD EPYC (32 MiB L3), 1.68x with streaming stores and 1.04x with normal ones.
NT_MIN_BYTES = 1 << 62
#: The memory-bound element-wise kernels split a parallel call into this many chunks per thread
#: (TBB balances them). 2 threads, float32 Clip, caches evicted: 1 chunk per thread, 3.6 ms at
#: 1e7 and 15.2 ms at 5e7 (one thread alone: 3.2 and 14.4); 8 per thread 2.7 and 13.0 ms, as
#: PyTorch (2.7, 13.1) and a parallel copy.
CHUNKS_PER_THREAD = 8

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_EPS = {_F32: np.float32(1e-12), _F64: np.float64(1e-12)}
_FLOAT_TYPES = frozenset({np.float32, np.float64})

_K: ModuleType | None = None  # caffe2ops.kernels._nb once loaded
_COS: dict = {}
_COSGRAD: dict = {}


def _load() -> ModuleType:
    """Import numba and the kernel module (compiled code loads per dtype on first call)."""
    global _K, NT_MIN_BYTES
    if _K is not None:
        return _K
    with _kernels._LOAD_LOCK:  # one thread loads; a fork waits until it is done
        if _K is not None:
            return _K
        import numba

        from caffe2ops.kernels import _nb

        _kernels._LOADER["layer"] = _kernels._configure_threading_layer()
        STATE.max_threads = int(numba.config.NUMBA_NUM_THREADS)  # numba's word is final
        if STATE.nt > STATE.max_threads:
            STATE.nt = STATE.max_threads
        NT_MIN_BYTES = _streaming_min_bytes()

        _COS.update({_F32: (_nb.cos32_s, _nb.cos32_p), _F64: (_nb.cos64_s, _nb.cos64_p)})
        _COSGRAD.update({_F32: (_nb.cos_gradient32_s, _nb.cos_gradient32_p),
                         _F64: (_nb.cos_gradient64_s, _nb.cos_gradient64_p)})
        _K = _nb
    return _K


def _streaming_min_bytes() -> int:
    """The :data:`NT_MIN_BYTES` threshold for this machine (see there)."""
    quarter_llc = (_llc_bytes() // 4) or (32 << 20)
    setting = os.environ.get("CAFFE2OPS_STREAMING_STORES", "").strip().lower()
    if setting in ("on", "1", "true"):
        return quarter_llc
    if setting in ("off", "0", "false"):
        return 1 << 62
    if setting:
        try:
            return max(0, int(setting))
        except ValueError:
            warnings.warn("CAFFE2OPS_STREAMING_STORES must be 'on', 'off' or a byte count, "
                          f"got {setting!r}; using the default", RuntimeWarning, stacklevel=2)
    return quarter_llc if _cpu_vendor() == "GenuineIntel" else 1 << 62


def _cpuinfo(field: str) -> str:
    """The first ``field`` of /proc/cpuinfo (e.g. ``vendor_id``, ``model name``; '' if unknown)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(field):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _cpu_vendor() -> str:
    return _cpuinfo("vendor_id")


def _llc_bytes() -> int:
    """Size of the largest CPU cache (Linux sysfs), 0 if unknown."""
    import glob

    best = 0
    for d in glob.glob("/sys/devices/system/cpu/cpu0/cache/index*"):
        try:
            with open(f"{d}/size") as f:
                txt = f.read().strip()
        except OSError:
            continue
        mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(txt[-1:], 1)
        try:
            best = max(best, int(txt.rstrip("KMG")) * mult)
        except ValueError:
            continue
    return best


def _flat(a: np.ndarray) -> np.ndarray:
    """1-D view of a C-contiguous array (raises rather than copy a non-contiguous one)."""
    if a.ndim == 1:
        return a
    v = a.view()
    v.shape = (a.size,)
    return v


class _WarmUp(threading.local):
    """Per-thread override of the size thresholds while :func:`preload` runs (None: none);
    the module's thresholds are never modified, so concurrent warm-ups cannot leave them
    changed."""

    threads: int | None = None


_WARM = _WarmUp()


def _threads(n: int, minimum: int) -> int:
    """Threads for an n-element call: 1 below ``minimum``; else the configured count."""
    forced = _WARM.threads
    if forced is not None:
        return forced
    if n < minimum:
        return 1
    return STATE.nt or get_num_threads()


# ---------------------------------------------------------------------------------------------
# element-wise


def clip(x: np.ndarray, lo: object, hi: object, out: np.ndarray) -> np.ndarray:
    """``m = lo if x < lo else x; out = hi if hi < m else m`` (NaN stays NaN, lo > hi gives hi).
    Float and integer dtypes; ``out`` may be ``x``."""
    k = _K or _load()
    t = x.dtype.type
    if type(lo) is not t:
        lo = t(lo)
    if type(hi) is not t:
        hi = t(hi)
    xf = _flat(x)
    of = _flat(out)
    nt = _threads(xf.size, PAR_MIN)
    if t in _FLOAT_TYPES:
        st = 2 * of.nbytes >= NT_MIN_BYTES
        if nt == 1 and not st:
            k.clip_s(xf, lo, hi, of)
        else:
            with _kernels.LAUNCH_LOCK:
                k.set_threads(nt)
                k.clip_p(xf, lo, hi, of, nt * CHUNKS_PER_THREAD, st)
    elif nt == 1:
        k.clip_s(xf, lo, hi, of)
    else:  # integers: no streaming stores
        with _kernels.LAUNCH_LOCK:
            k.set_threads(nt)
            k.clip_plain_p(xf, lo, hi, of, nt * CHUNKS_PER_THREAD)
    return out


def clip_gradient(y: np.ndarray, dy: np.ndarray, lo: object, hi: object,
                  out: np.ndarray) -> np.ndarray:
    """``out = dy * (1 if lo < y < hi else 0)`` in the dtype (masked entries are ``dy*0``).
    ``out`` may be ``dy``."""
    k = _K or _load()
    t = y.dtype.type
    if type(lo) is not t:
        lo = t(lo)
    if type(hi) is not t:
        hi = t(hi)
    yf = _flat(y)
    nt = _threads(yf.size, PAR_MIN)
    st = 3 * out.nbytes >= NT_MIN_BYTES
    if nt == 1 and not st:
        k.clip_gradient_s(yf, _flat(dy), lo, hi, _flat(out))
    else:
        with _kernels.LAUNCH_LOCK:
            k.set_threads(nt)
            k.clip_gradient_p(yf, _flat(dy), lo, hi, _flat(out), nt * CHUNKS_PER_THREAD, st)
    return out


def thresholded_relu(x: np.ndarray, alpha: object, out: np.ndarray) -> np.ndarray:
    """``out = x if x > alpha else +0`` (NaN gives +0). ``out`` may be ``x``."""
    k = _K or _load()
    t = x.dtype.type
    if type(alpha) is not t:
        alpha = t(alpha)
    xf = _flat(x)
    of = _flat(out)
    nt = _threads(xf.size, PAR_MIN)
    st = 2 * of.nbytes >= NT_MIN_BYTES
    if nt == 1 and not st:
        k.thresholded_relu_s(xf, alpha, of)
    else:
        with _kernels.LAUNCH_LOCK:
            k.set_threads(nt)
            k.thresholded_relu_p(xf, alpha, of, nt * CHUNKS_PER_THREAD, st)
    return out


def _trelu_grad(k: ModuleType, a: np.ndarray, dy: np.ndarray, alpha: object,
                out: np.ndarray) -> np.ndarray:
    af = _flat(a)
    nt = _threads(af.size, PAR_MIN)
    st = 3 * out.nbytes >= NT_MIN_BYTES
    if nt == 1 and not st:
        k.thresholded_relu_gradient_s(af, _flat(dy), alpha, _flat(out))
    else:
        with _kernels.LAUNCH_LOCK:
            k.set_threads(nt)
            k.thresholded_relu_gradient_p(af, _flat(dy), alpha, _flat(out),
                                             nt * CHUNKS_PER_THREAD, st)
    return out


def thresholded_relu_gradient(y: np.ndarray, dy: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = dy if y > 0 else +0``. ``out`` may be ``dy``."""
    k = _K or _load()
    return _trelu_grad(k, y, dy, y.dtype.type(0), out)


def thresholded_relu_gradient_from_x(x: np.ndarray, dy: np.ndarray, alpha: object,
                                     out: np.ndarray) -> np.ndarray:
    """``out = dy if x > alpha else +0`` (correct for every alpha). ``out`` may be ``dy``."""
    k = _K or _load()
    t = x.dtype.type
    if type(alpha) is not t:
        alpha = t(alpha)
    return _trelu_grad(k, x, dy, alpha, out)


def cos(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = cos(x)``: float32 within 2.5e-7 (abs + rel) of float64 cos, float64 via libm;
    ±inf and NaN give NaN."""
    if _K is None:
        _load()
    s, p = _COS[x.dtype]
    xf = _flat(x)
    nt = _threads(xf.size, PAR_MIN_COS64 if x.dtype == _F64 else PAR_MIN_COS)
    if nt == 1:
        s(xf, _flat(out))
    else:
        with _kernels.LAUNCH_LOCK:
            _K.set_threads(nt)
            p(xf, _flat(out), nt)
    return out


def cos_gradient(x: np.ndarray, dy: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = (-dy) * sin(x)``: ``sin(x)`` computed like :func:`cos` (float32: the same
    polynomial and tolerance; float64: libm) and rounded to the dtype, then one multiply in the
    dtype. ``out`` may be ``dy`` or ``x``. ``cos_gradient(x, -1)`` is exactly that sine."""
    if _K is None:
        _load()
    s, p = _COSGRAD[x.dtype]
    xf = _flat(x)
    nt = _threads(xf.size, PAR_MIN_COS64 if x.dtype == _F64 else PAR_MIN_COS)
    if nt == 1:
        s(xf, _flat(dy), _flat(out))
    else:
        with _kernels.LAUNCH_LOCK:
            _K.set_threads(nt)
            p(xf, _flat(dy), _flat(out), nt)
    return out


def cosine_embedding_criterion(s: np.ndarray, label: np.ndarray, margin: object,
                               out: np.ndarray) -> np.ndarray:
    """``out = 1 - s if label == 1 else max(s - margin, +0)`` (NaN gives +0 on that branch);
    ``label`` is int32/int64 with as many elements as ``s``."""
    k = _K or _load()
    t = s.dtype.type
    if type(margin) is not t:
        margin = t(margin)
    sf = _flat(s)
    nt = _threads(sf.size, PAR_MIN)
    st = 2 * out.nbytes + label.nbytes >= NT_MIN_BYTES
    if nt == 1 and not st:
        k.cec_s(sf, _flat(label), margin, _flat(out))
    else:
        with _kernels.LAUNCH_LOCK:
            k.set_threads(nt)
            k.cec_p(sf, _flat(label), margin, _flat(out), nt, st)
    return out


def cosine_embedding_criterion_gradient(s: np.ndarray, label: np.ndarray, dloss: np.ndarray,
                                        margin: object, out: np.ndarray) -> np.ndarray:
    """``out = -dloss if label == 1 else dloss * (1 if s >= margin else 0)``."""
    k = _K or _load()
    t = s.dtype.type
    if type(margin) is not t:
        margin = t(margin)
    sf = _flat(s)
    nt = _threads(sf.size, PAR_MIN)
    st = 3 * out.nbytes + label.nbytes >= NT_MIN_BYTES
    if nt == 1 and not st:
        k.cec_gradient_s(sf, _flat(label), _flat(dloss), margin, _flat(out))
    else:
        with _kernels.LAUNCH_LOCK:
            k.set_threads(nt)
            k.cec_gradient_p(sf, _flat(label), _flat(dloss), margin, _flat(out), nt, st)
    return out


# ---------------------------------------------------------------------------------------------
# row kernels


def cosine_similarity(x: np.ndarray, y: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Per row of the (N, D) arrays: ``x2, y2, xy`` summed in float64 in index order and
    rounded to the dtype, then ``out = xy / sqrt(max(x2, eps) * max(y2, eps))``, eps = 1e-12."""
    k = _K or _load()
    eps = _EPS[x.dtype]
    of = _flat(out)
    nt = _threads(x.size, PAR_MIN_ROWS)
    if nt == 1:
        k.cosine_similarity_s(x, y, eps, of)
    else:
        with _kernels.LAUNCH_LOCK:
            k.set_threads(nt)
            k.cosine_similarity_p(x, y, eps, of, nt)
    return out


def cosine_similarity_gradient(x: np.ndarray, y: np.ndarray, dz: np.ndarray, dx: np.ndarray,
                               dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Caffe2's gradient of :func:`cosine_similarity` for (N, D) ``x, y`` and (N,) ``dz``, with
    the same sums; in the dtype: ``XN = sqrt(max(x2, eps))``, ``YN`` likewise, ``XYN = XN*YN``,
    ``dx = (dz/XYN)*y - (dz*xy/(XN*XN*XYN))*x`` and ``dy = (dz/XYN)*x - (dz*xy/(YN*YN*XYN))*y``.
    """
    k = _K or _load()
    eps = _EPS[x.dtype]
    dzf = _flat(dz)
    nt = _threads(x.size, PAR_MIN_ROWS)
    if nt == 1:
        k.cosine_similarity_gradient_s(x, y, dzf, eps, dx, dy)
    else:
        with _kernels.LAUNCH_LOCK:
            k.set_threads(nt)
            k.cosine_similarity_gradient_p(x, y, dzf, eps, dx, dy, nt)
    return dx, dy


def sparse_normalize(param: np.ndarray, indices: np.ndarray, norm: object,
                     use_max_norm: bool) -> np.ndarray:
    """In place on the (rows, D) ``param``, once per distinct index:
    ``n = dtype(sqrt(float64 sum of squares))``; skip if ``use_max_norm and n <= norm``; else
    ``row *= norm / (n + 1e-12)`` (all in the dtype). Indices must be in range."""
    k = _K or _load()
    t = param.dtype.type
    if type(norm) is not t:
        norm = t(norm)
    eps = _EPS[param.dtype]
    idx = _flat(indices)
    if idx.dtype != np.int64:  # one compiled variant; O(k) and small next to the row work
        idx = idx.astype(np.int64)
    use = bool(use_max_norm)
    nt = _threads(idx.size * (param.size // max(param.shape[0], 1)), PAR_MIN_ROWS)
    if nt == 1:
        k.sparse_normalize_s(param, idx, norm, use, eps)
    else:
        with _kernels.LAUNCH_LOCK:
            k.set_threads(nt)
            k.sparse_normalize_p(param, idx, norm, use, eps, nt)
    return param


def sum_of_squares(x: np.ndarray) -> float:
    """``sum(float64(x)**2)`` with a fixed summation order (blocks of 16384 elements, 64 lanes
    per block), so the result does not depend on the thread count."""
    k = _K or _load()
    xf = _flat(x)
    nt = _threads(xf.size, PAR_MIN)
    if nt == 1:
        return float(k.sum_of_squares_s(xf, k.SUMSQ_BLOCK, k.SUMSQ_LANES))
    with _kernels.LAUNCH_LOCK:
        k.set_threads(nt)
        return float(k.sum_of_squares_p(xf, k.SUMSQ_BLOCK, k.SUMSQ_LANES, nt))


def copy(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out[...] = x`` with the kernels' threading and streaming stores (the benchmark's
    bandwidth reference)."""
    k = _K or _load()
    xf = _flat(x)
    nt = _threads(xf.size, PAR_MIN)
    st = 2 * out.nbytes >= NT_MIN_BYTES
    if nt == 1 and not st:
        np.copyto(out, x)
    else:
        with _kernels.LAUNCH_LOCK:
            k.set_threads(nt)
            k.copy_p(xf, _flat(out), nt * CHUNKS_PER_THREAD, st)
    return out


# ---------------------------------------------------------------------------------------------
# Relu / Sigmoid / Tanh (kernels in _nb_activations; Sigmoid and Tanh float32 only)

_ACT: ModuleType | None = None


def _activations() -> ModuleType:
    global _ACT
    if _ACT is None:
        _K or _load()
        from caffe2ops.kernels import _nb_activations

        _ACT = _nb_activations
    return _ACT


def _unary(name: str, x: np.ndarray, out: np.ndarray) -> np.ndarray:
    k = _ACT or _activations()
    xf, of = _flat(x), _flat(out)
    nt = _threads(xf.size, PAR_MIN)
    if nt == 1:
        getattr(k, name + "_s")(xf, of)
    else:
        _K.set_threads(nt)
        getattr(k, name + "_p")(xf, of, nt)
    return out


def _binary(name: str, y: np.ndarray, dy: np.ndarray, out: np.ndarray) -> np.ndarray:
    k = _ACT or _activations()
    yf = _flat(y)
    nt = _threads(yf.size, PAR_MIN)
    if nt == 1:
        getattr(k, name + "_s")(yf, _flat(dy), _flat(out))
    else:
        _K.set_threads(nt)
        getattr(k, name + "_p")(yf, _flat(dy), _flat(out), nt)
    return out


def relu(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = 0 if x < 0 else x`` (NaN and -0 pass). ``out`` may be ``x``."""
    return _unary("relu", x, out)


def sigmoid(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """float32 ``out = 1 / (1 + exp(-x))`` with Eigen's float ``exp`` (Caffe2's bits)."""
    return _unary("sigmoid", x, out)


def tanh(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """float32 ``out = tanh(x)`` by Eigen's rational approximation (Caffe2's bits)."""
    return _unary("tanh", x, out)


def relu_gradient(y: np.ndarray, dy: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = dy if y > 0 else +0``. ``out`` may be ``dy``."""
    return _binary("relu_gradient", y, dy, out)


def sigmoid_gradient(y: np.ndarray, dy: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = (dy·y)·(1 − y)``. ``out`` may be ``dy``."""
    return _binary("sigmoid_gradient", y, dy, out)


def tanh_gradient(y: np.ndarray, dy: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = dy·(1 − y·y)``. ``out`` may be ``dy``."""
    return _binary("tanh_gradient", y, dy, out)


# ---------------------------------------------------------------------------------------------
# warm-up


def _calls(dt: np.dtype) -> dict:
    """One small call per kernel for dtype ``dt`` (each also runs the parallel wrapper)."""
    n = 4
    a = np.linspace(-1, 1, n).astype(dt)
    b = np.ones(n, dt)
    o = np.empty(n, dt)
    lab = np.array([1, -1, 0, 1], np.int32)
    m = np.ones((2, 2), dt)
    one = dt.type(1)
    return {
        "clip": lambda: clip(a, one, one, o),
        "clip_gradient": lambda: clip_gradient(a, b, -one, one, o),
        "thresholded_relu": lambda: thresholded_relu(a, one, o),
        "thresholded_relu_gradient": lambda: thresholded_relu_gradient(a, b, o),
        "cos": lambda: cos(a, o),
        "cos_gradient": lambda: cos_gradient(a, b, o),
        "cosine_embedding_criterion": lambda: cosine_embedding_criterion(a, lab, one, o),
        "cosine_embedding_criterion_gradient":
            lambda: cosine_embedding_criterion_gradient(a, lab, b, one, o),
        "cosine_similarity": lambda: cosine_similarity(m, m, o[:2]),
        "cosine_similarity_gradient":
            lambda: cosine_similarity_gradient(m, m, b[:2], np.empty_like(m), np.empty_like(m)),
        "sparse_normalize": lambda: sparse_normalize(m.copy(), lab[:2] * 0, one, True),
    }


def preload(names: list[str] | None = None,
            dtypes: tuple = (np.float32, np.float64)) -> dict[str, float]:
    """Load (compiling if the disk cache is cold) the serial and parallel kernels of ``names``
    (default: all operators) for ``dtypes``; returns seconds per ``"name[dtype]"``."""
    import time

    _load()
    times = {}
    try:
        for dt in dtypes:
            dt = np.dtype(dt)
            calls = _calls(dt)
            for name in names or list(calls):
                t0 = time.perf_counter()
                _WARM.threads = 1  # the serial kernel
                calls[name]()
                if get_num_threads() > 1:
                    _WARM.threads = get_num_threads()  # the parallel wrapper
                    calls[name]()
                times[f"{name}[{dt}]"] = time.perf_counter() - t0
    finally:
        _WARM.threads = None
    return times


# Sparse lookups and sparse optimizers (kernels/cpu_sparse.py), dispatched through this module.
from caffe2ops.kernels.cpu_sparse import (  # noqa: E402, F401
    rowwise_sparse_adagrad,
    sparse_adagrad,
    sparse_adam,
    sparse_lengths_gradient,
    sparse_lengths_sum,
    sparse_lengths_weighted_sum,
)
