"""Fused CPU kernels (Numba), one module per operator family, loaded on first use.

Importing this package does not import numba; :func:`load` does (and the family modules
``clip``, ``thresholded_relu``, ``cos``, ``cosine_embedding_criterion``, ``cosine_similarity``,
``sparse_normalize``, ``activations``, ``sparse_lengths``, ``optimizers``); compiled code loads
per dtype on the first call, from numba's disk cache. :mod:`._stream` holds what the families
share (chunking, threads, streaming stores), :mod:`.norms` the row sums.

Preconditions (the operators check them; the kernels do not): every array is C-contiguous; the
float arrays of one call share one dtype the family supports; ``out`` has the right size;
``labels`` are int32 or int64, ``indices`` any integer type (already bounds-checked). ``out``
may be the same array as an input (in place) where the docstring says so.

>>> import numpy as np
>>> from caffe2ops.kernels import cpu
>>> x = np.array([-2.0, -0.0, 0.5, np.nan, 3.0], dtype=np.float32)
>>> cpu.clip.clip(x, np.float32(0.0), np.float32(1.0), np.empty_like(x))
array([ 0. , -0. ,  0.5,  nan,  1. ], dtype=float32)
>>> cpu.thresholded_relu.thresholded_relu(x, np.float32(0.25), x)  # in place
array([0. , 0. , 0.5, 0. , 3. ], dtype=float32)
"""

from __future__ import annotations

import glob
import importlib
import os
import time
import warnings
from types import ModuleType

import numpy as np

from caffe2ops import kernels

__all__ = ["CHUNKS_PER_THREAD", "FAMILIES", "PAR_MIN", "SHARED_MODULES", "STREAMING_MIN_BYTES",
           "cpu_vendor",
           "cpuinfo", "family", "llc_bytes", "load", "preload", "streaming_min_bytes",
           "supports"]

#: The operator families with CPU kernels (module names, as in ``caffe2ops.ops``).
FAMILIES = ("clip", "thresholded_relu", "cos", "cosine_embedding_criterion", "cosine_similarity",
            "sparse_normalize", "activations", "sparse_lengths", "optimizers", "gather")
#: Element count from which the memory-bound element-wise kernels use several threads. Measured
#: on a 2-core AMD EPYC (float32 Clip, warm caches): one thread is faster up to 2**19 elements
#: (47 vs 53 us), even at 2**20 (96 vs 95-105 us), and two are faster from 2**21 (119 vs 239 us).
PAR_MIN = 1 << 20
#: Element-wise calls touching at least this many bytes (inputs + output) write their output
#: with streaming (non-temporal) stores, through the parallel wrappers even with one thread.
#: Set by :func:`load` from :func:`streaming_min_bytes`. Measured at 1e7 float32, Clip: on a
#: 2-core share of an Intel 260 MB L3, 0.78x PyTorch's time with streaming stores and evicted
#: caches (1.00x with normal stores); on a 2-core AMD EPYC (32 MiB L3), 1.68x with streaming
#: stores and 1.04x with normal ones.
STREAMING_MIN_BYTES = 1 << 62
#: The memory-bound element-wise kernels split a parallel call into this many chunks per thread
#: (TBB balances them). 2 threads, float32 Clip, caches evicted: 1 chunk per thread, 3.6 ms at
#: 1e7 and 15.2 ms at 5e7 (one thread alone: 3.2 and 14.4); 8 per thread 2.7 and 13.0 ms, as
#: PyTorch (2.7, 13.1) and a parallel copy.
CHUNKS_PER_THREAD = 8

#: Kernel modules shared by several callers (not an operator family of their own): the norms
#: (toolkit reductions, row sums) and the toolkit's multi-array scaling and clamping.
SHARED_MODULES = ("norms", "scaling")
_MODULES = FAMILIES + SHARED_MODULES

_FAMILY_MODULES: dict[str, ModuleType] = {}


def load() -> None:
    """Import numba, choose its threading layer and import every family (idempotent; the
    caller holds :data:`caffe2ops.kernels._LOAD_LOCK` or accepts a racing import)."""
    global STREAMING_MIN_BYTES
    if len(_FAMILY_MODULES) == len(_MODULES):
        return
    with kernels._LOAD_LOCK:  # one thread loads; a fork waits until it is done
        if len(_FAMILY_MODULES) == len(_MODULES):
            return
        import numba

        kernels._LOADER["layer"] = kernels._configure_threading_layer()
        kernels.STATE.max_threads = int(numba.config.NUMBA_NUM_THREADS)  # numba's word is final
        if kernels.STATE.threads > kernels.STATE.max_threads:
            kernels.STATE.threads = kernels.STATE.max_threads
        STREAMING_MIN_BYTES = streaming_min_bytes()
        for name in _MODULES:
            _FAMILY_MODULES[name] = importlib.import_module(f"{__name__}.{name}")


def family(name: str) -> ModuleType:
    """The kernel module of family ``name`` (or of :data:`SHARED_MODULES`), loading the kernels
    first if needed."""
    mod = _FAMILY_MODULES.get(name)
    if mod is None:
        if name not in _MODULES:
            raise ValueError(f"no CPU kernel family {name!r}; the families: {', '.join(FAMILIES)}")
        load()
        mod = _FAMILY_MODULES[name]
    return mod


def loaded() -> bool:
    """Whether :func:`load` has finished."""
    return len(_FAMILY_MODULES) == len(_MODULES)


_FLOATS = frozenset(np.dtype(t) for t in (np.float32, np.float64))


def supports(dtype: object, kernel: str | None = None) -> bool:
    """Whether the CPU kernel ``kernel`` (an entry point name such as ``"clip"``; None: any
    float kernel) takes ``dtype``: float32/float64 everywhere, integers for ``"clip"``,
    float32 only for ``"sigmoid"``/``"tanh"``. Loads the kernels when ``kernel`` is given."""
    if not isinstance(dtype, np.dtype):
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            return False
    if kernel is None:
        return dtype in _FLOATS
    for name in FAMILIES:
        mod = family(name)
        if hasattr(mod, kernel):
            return dtype in getattr(mod, "DTYPES", {}).get(kernel, _FLOATS)
    raise ValueError(f"supports: no CPU kernel named {kernel!r}")


# ------------------------------------------------------------------------------ the machine


def cpuinfo(field: str) -> str:
    """The first ``field`` of /proc/cpuinfo (e.g. ``vendor_id``, ``model name``; '' if unknown)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(field):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def cpu_vendor() -> str:
    """``vendor_id`` of /proc/cpuinfo (``GenuineIntel``, ``AuthenticAMD``; '' if unknown)."""
    return cpuinfo("vendor_id")


def llc_bytes() -> int:
    """Size of the largest CPU cache (Linux sysfs), 0 if unknown."""
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


def streaming_min_bytes() -> int:
    """The :data:`STREAMING_MIN_BYTES` threshold for this machine: a quarter of the last-level
    cache on Intel CPUs, never elsewhere; ``CAFFE2OPS_STREAMING_STORES`` (``on``, ``off`` or a
    byte count) overrides."""
    quarter_llc = (llc_bytes() // 4) or (32 << 20)
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
    return quarter_llc if cpu_vendor() == "GenuineIntel" else 1 << 62


# --------------------------------------------------------------------------------- warm-up


def preload(names: list[str] | None = None,
            dtypes: tuple = (np.float32, np.float64)) -> dict[str, float]:
    """Load (compiling if the disk cache is cold) the serial and parallel kernels of the entry
    points ``names`` (default: every family's warm-up calls) for ``dtypes``; returns seconds per
    ``"name[dtype]"``."""
    load()
    from caffe2ops.kernels.cpu._stream import WARM_UP

    times = {}
    try:
        for dt in dtypes:
            dt = np.dtype(dt)
            a = np.linspace(-1, 1, 4).astype(dt)
            b = np.ones(4, dt)
            o = np.empty(4, dt)
            calls: dict = {}
            for name in FAMILIES:
                warm = getattr(_FAMILY_MODULES[name], "warm_up_calls", None)
                if warm is not None:
                    calls.update(warm(a, b, o))
            for name in names or list(calls):
                t0 = time.perf_counter()
                WARM_UP.threads = 1  # the serial kernel
                calls[name]()
                if kernels.get_num_threads() > 1:
                    WARM_UP.threads = kernels.get_num_threads()  # the parallel wrapper
                    calls[name]()
                times[f"{name}[{dt}]"] = time.perf_counter() - t0
    finally:
        WARM_UP.threads = None
    return times


_SHARED = ("launch", "flat", "scalar", "threads_for", "chunk_length", "streaming_span",
           "stream_copy", "store_fence", "STREAM_BLOCK_BYTES")


def __getattr__(name: str):
    """A family module (``cpu.clip`` is ``family("clip")``: loads the kernels), and the shared
    launch and streaming helpers of :mod:`._stream` (importing numba), for kernels written
    outside the package (the benchmark's bandwidth reference)."""
    if name in _MODULES:
        return family(name)
    if name in _SHARED:
        load()
        from caffe2ops.kernels.cpu import _stream

        return getattr(_stream, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
