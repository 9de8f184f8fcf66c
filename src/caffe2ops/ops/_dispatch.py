"""Choose the kernel: the fused Numba one where it applies, else the NumPy reference.

Fast kernels take C-contiguous float32/float64 arrays (integers too for Clip); anything else, and
everything inside ``reference_kernels()`` (per thread), runs the reference kernel. Both give the
same bits (Cos/Sin within the contract's tolerance), which the table-driven tests check.

Numba costs ~0.3 s to import, so the first call that could use a fast kernel starts loading it on
a background thread and runs the reference kernel meanwhile: no call waits for the compiler.
``caffe2ops.kernels.load()`` loads them now (benchmarks use it to time the fast path only).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

import numpy as np

from caffe2ops import kernels


class _Reference(threading.local):
    on = False


_reference = _Reference()


def load_kernels() -> bool:
    """Deprecated name of :func:`caffe2ops.kernels.load`."""
    return kernels.load()


def fast(name: str, *arrays: np.ndarray) -> Callable | None:
    """The fast kernel ``name`` if it exists and suits ``arrays``, else None."""
    if _reference.on:
        return None
    mod = kernels.loaded_module()
    if mod is None:
        return None
    for a in arrays:
        if not a.flags.c_contiguous or not mod.supports(a.dtype, name):
            return None
    return getattr(mod, name, None)


@contextlib.contextmanager
def reference_kernels() -> Iterator[None]:
    """Run every operator with its NumPy reference kernel inside this block (this thread only;
    other threads keep their own setting)."""
    old = _reference.on
    _reference.on = True
    try:
        yield
    finally:
        _reference.on = old
