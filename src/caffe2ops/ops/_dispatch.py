"""Choose the kernel: the fused Numba one where it applies, else the NumPy reference.

Fast kernels take C-contiguous float32/float64 arrays (integers too for Clip); anything else, and
everything inside ``reference_kernels()``, runs the reference kernel. Both give the same bits
(Cos/Sin within the contract's tolerance), which the table-driven tests check.

Numba costs ~0.3 s to import, so the first call that could use a fast kernel starts loading it on
a background thread and runs the reference kernel meanwhile: no call waits for the compiler.
``load_kernels()`` loads them now (benchmarks use it to time the fast path only).
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

_state: dict[str, Any] = {"reference": False, "module": None, "loader": None}
_lock = threading.Lock()


def load_kernels() -> bool:
    """Import Numba and the fast kernels now; False if they cannot be loaded."""
    try:
        from caffe2ops.kernels import cpu

        cpu._load()
        # Numba's one-time set-up (LLVM target, thread pool) happens at the first dispatch of a
        # compiled kernel: do it here, with the float32 Clip kernels from the disk cache.
        cpu.preload(["clip"], dtypes=(np.float32,))
    except Exception:  # no usable Numba: every call runs the reference kernels
        _state["module"] = False
        return False
    _state["module"] = cpu
    return True


def _module() -> Any:
    mod = _state["module"]
    if mod is not None:
        return mod
    cpu = sys.modules.get("caffe2ops.kernels.cpu")
    if getattr(cpu, "_K", None) is not None:  # loaded elsewhere (preload, another thread)
        _state["module"] = cpu
        return cpu
    with _lock:
        if _state["loader"] is None:
            _state["loader"] = threading.Thread(
                target=load_kernels, name="caffe2ops-kernel-loader", daemon=True
            )
            _state["loader"].start()
    return None


def fast(name: str, *arrays: np.ndarray) -> Callable | None:
    """The fast kernel ``name`` if it exists and suits ``arrays``, else None."""
    if _state["reference"]:
        return None
    mod = _module()
    if not mod:
        return None
    for a in arrays:
        if not a.flags.c_contiguous or not mod.supports(a.dtype, name):
            return None
    return getattr(mod, name, None)


@contextlib.contextmanager
def reference_kernels() -> Iterator[None]:
    """Run every operator with its NumPy reference kernel inside this block."""
    old = _state["reference"]
    _state["reference"] = True
    try:
        yield
    finally:
        _state["reference"] = old
