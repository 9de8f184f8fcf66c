"""Choose the kernel: the fused Numba one where it applies, else the NumPy reference.

Fast kernels take C-contiguous float32/float64 arrays (integers too for Clip); anything else, and
everything inside ``reference_kernels()``, runs the reference kernel. Both give the same bits
(Cos/Sin within the contract's tolerance), which the table-driven tests check.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

_state = {"reference": False, "module": None}


def _module() -> Any:
    mod = _state["module"]
    if mod is None:
        try:
            from caffe2ops.kernels import cpu as mod
        except ImportError:
            mod = False
        _state["module"] = mod
    return mod


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
