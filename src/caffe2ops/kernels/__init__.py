"""Fused CPU kernels (Numba) for the caffe2ops operators.

Importing this package does not import numba: the kernels in :mod:`caffe2ops.kernels.cpu` (one
module per operator family) load numba and their compiled code (cached on disk) on first use.

Loading: :func:`load` imports numba and the kernels now (blocking, idempotent, safe to call from
many threads) and returns whether they loaded; :func:`loaded_module` is the non-blocking form the
operators use (through ``caffe2ops.ops._dispatch``): it starts loading on a background thread and
returns None until it is done.

Threading layer: numba's parallel kernels run on TBB (the ``tbb`` package), which is fork-safe
and thread-safe; without TBB on numba's ``workqueue`` (fork-safe; its launches are serialised
by :data:`LAUNCH_LOCK` because it is not thread-safe). An explicit ``NUMBA_THREADING_LAYER`` in
the environment is respected. A ``fork`` waits for a load in progress, and the child starts
with fresh loader state, so it loads (or has) the kernels like its parent.

Thread count: the kernels use :func:`get_num_threads` threads for large arrays. The default and
the maximum is numba's thread-pool size, ``NUMBA_NUM_THREADS`` (default: the CPUs this process
may run on).

>>> import numpy as np
>>> from caffe2ops import kernels
>>> 1 <= kernels.get_num_threads() <= kernels.get_max_threads()
True
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from types import ModuleType
from typing import Any

import numpy as np

__all__ = ["disable", "get_max_threads", "get_num_threads", "load", "loaded_module",
           "set_num_threads", "threading_layer"]


class _State:
    """Mutable settings shared with :mod:`caffe2ops.kernels.cpu` (read on every call)."""

    __slots__ = ("max_threads", "threads")

    def __init__(self) -> None:
        self.max_threads = 0
        self.threads = 0


STATE = _State()


def _default_max_threads() -> int:
    # Only a fully imported numba has the final word (a half-imported one may lack its config).
    if _LOADER["module"]:
        return int(sys.modules["numba"].config.NUMBA_NUM_THREADS)
    env = os.environ.get("NUMBA_NUM_THREADS")
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def get_max_threads() -> int:
    """The largest thread count the kernels can use (``NUMBA_NUM_THREADS``)."""
    if not STATE.max_threads:
        STATE.max_threads = _default_max_threads()
    return STATE.max_threads


def get_num_threads() -> int:
    """Threads the kernels use for large arrays (default: :func:`get_max_threads`)."""
    if not STATE.threads:
        STATE.threads = get_max_threads()
    return STATE.threads


def set_num_threads(n: int) -> None:
    """Use ``n`` threads (1 <= n <= :func:`get_max_threads`) for large arrays; process-wide."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        raise TypeError(f"set_num_threads: n must be an int, got {type(n).__name__}")
    hi = get_max_threads()
    if not 1 <= n <= hi:
        raise ValueError(
            f"set_num_threads: n must be between 1 and {hi} (NUMBA_NUM_THREADS), got {n}"
        )
    STATE.threads = int(n)


# ---------------------------------------------------------------------------------- loading

#: Held around every parallel launch when the threading layer is not thread-safe (workqueue);
#: a no-op context otherwise.
LAUNCH_LOCK: Any = contextlib.nullcontext()

_LOADER: dict[str, Any] = {"module": None, "thread": None, "layer": None}
_LOAD_LOCK = threading.RLock()  # held while loading; fork() waits for it
_START_LOCK = threading.Lock()


def _preload_tbb() -> bool:
    """Make ``libtbb.so.12`` (from the ``tbb`` wheel, installed under ``sys.prefix/lib``)
    loadable for numba's TBB layer; True if numba's tbbpool imports."""
    try:
        from numba.np.ufunc import tbbpool  # noqa: F401
        return True
    except ImportError:
        pass
    import ctypes

    candidates = [os.path.join(p, "lib", "libtbb.so.12")
                  for p in dict.fromkeys((sys.prefix, sys.base_prefix, sys.exec_prefix))]
    for path in candidates:
        if os.path.exists(path):
            try:
                ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
                from numba.np.ufunc import tbbpool  # noqa: F401, F811
                return True
            except (OSError, ImportError):
                continue
    return False


def _configure_threading_layer() -> str:
    """Choose a fork-safe numba threading layer before numba's first parallel launch."""
    global LAUNCH_LOCK
    import numba
    from numba.np.ufunc import parallel

    if not parallel._is_initialized and "NUMBA_THREADING_LAYER" not in os.environ:
        numba.config.THREADING_LAYER = "tbb" if _preload_tbb() else "workqueue"
    try:
        parallel._launch_threads()
    except (ValueError, ImportError):  # TBB present but unusable: fall back, still fork-safe
        numba.config.THREADING_LAYER = "workqueue"
        parallel._launch_threads()
    layer = numba.threading_layer()
    if layer == "workqueue":
        LAUNCH_LOCK = threading.Lock()
    return layer


def _load_now() -> ModuleType | bool:
    try:
        from caffe2ops.kernels import cpu

        cpu.load()
        # Numba's one-time set-up (LLVM target, thread pool) happens at the first dispatch of a
        # compiled kernel: do it here, with the float32 Clip kernels from the disk cache.
        cpu.preload(["clip"], dtypes=(np.float32,))
    except Exception:  # no usable Numba: every call runs the reference kernels
        return False
    return cpu


def load() -> bool:
    """Import Numba and the fast kernels now (blocks until done; idempotent, thread-safe) and
    return whether they loaded. Without it the first calls run the reference kernels while the
    fast ones load on a background thread."""
    if _LOADER["module"] is None:
        with _LOAD_LOCK:
            if _LOADER["module"] is None:
                _LOADER["module"] = _load_now()
    return bool(_LOADER["module"])


def disable() -> None:
    """Run the NumPy reference kernels (the same bits) from now on in this whole process and
    never import Numba: e.g. for memory-tight worker processes. Unlike
    ``caffe2ops.reference_kernels()`` (a block, this thread only) it cannot be undone, and it
    does not unload kernels that have already loaded."""
    with _LOAD_LOCK:
        if _LOADER["module"] is None:
            _LOADER["module"] = False


def loaded_module() -> ModuleType | None:
    """:mod:`caffe2ops.kernels.cpu` once loaded, else None (loading starts in the background;
    None for good if numba cannot be used)."""
    mod = _LOADER["module"]
    if mod is not None:
        return mod or None
    cpu = sys.modules.get("caffe2ops.kernels.cpu")
    loaded = getattr(cpu, "loaded", None)  # None while another thread imports it
    if loaded is not None and loaded():
        _LOADER["module"] = cpu  # loaded directly (cpu.preload), not through load()
        return cpu
    if _LOADER["thread"] is None:
        with _START_LOCK:
            if _LOADER["thread"] is None:
                thread = threading.Thread(target=load, name="caffe2ops-kernel-loader",
                                          daemon=True)
                _LOADER["thread"] = thread
                thread.start()
    return None


def threading_layer() -> str | None:
    """numba's threading layer for the kernels ("tbb" or "workqueue"), None before loading."""
    return _LOADER["layer"]


def _before_fork() -> None:
    _LOAD_LOCK.acquire()  # a load in progress finishes first (the child could not finish it)


def _after_fork_in_parent() -> None:
    _LOAD_LOCK.release()


def _after_fork_in_child() -> None:
    global _LOAD_LOCK, _START_LOCK, LAUNCH_LOCK
    _LOAD_LOCK = threading.RLock()
    _START_LOCK = threading.Lock()
    if isinstance(LAUNCH_LOCK, type(threading.Lock())):
        LAUNCH_LOCK = threading.Lock()
    _LOADER["thread"] = None  # the parent's loader thread does not exist here
    if _LOADER["module"] is False:
        _LOADER["module"] = None  # let the child try again


if hasattr(os, "register_at_fork"):
    # Handlers run before a fork in the reverse order of registration, and _before_fork waits
    # for a load in progress. A module whose handler takes a lock the loader needs (logging's,
    # which numba takes while importing; concurrent.futures') must register first, or a fork
    # during loading deadlocks: that handler holds its lock while ours waits for the loader.
    import concurrent.futures.thread  # noqa: F401
    import logging  # noqa: F401

    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)
