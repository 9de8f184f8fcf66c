"""Fused CPU kernels (Numba) for the caffe2ops operators.

Importing this package does not import numba: the kernels in :mod:`caffe2ops.kernels.cpu` load
numba and their compiled code (cached on disk) on first use.

Thread count: the kernels use :func:`get_num_threads` threads for large arrays. The default and
the maximum is numba's thread-pool size, ``NUMBA_NUM_THREADS`` (default: the CPUs this process
may run on).

>>> import numpy as np
>>> from caffe2ops import kernels
>>> kernels.supports(np.float32), kernels.supports(np.float16), kernels.supports(np.int8, "clip")
(True, False, True)
>>> 1 <= kernels.get_num_threads() <= kernels.get_max_threads()
True
"""

from __future__ import annotations

import os
import sys

import numpy as np

__all__ = ["get_max_threads", "get_num_threads", "set_num_threads", "supports", "FLOAT_DTYPES",
           "CLIP_DTYPES"]

FLOAT_DTYPES = frozenset(np.dtype(t) for t in (np.float32, np.float64))
CLIP_DTYPES = FLOAT_DTYPES | frozenset(
    np.dtype(t)
    for t in (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64)
)
_CLIP_OPS = frozenset({"clip", "ensure_clipped"})


class _State:
    """Mutable settings shared with :mod:`caffe2ops.kernels.cpu` (read on every call)."""

    __slots__ = ("max_threads", "nt")

    def __init__(self) -> None:
        self.max_threads = 0
        self.nt = 0


STATE = _State()


def _default_max_threads() -> int:
    numba = sys.modules.get("numba")
    if numba is not None:
        return int(numba.config.NUMBA_NUM_THREADS)
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
    if not STATE.nt:
        STATE.nt = get_max_threads()
    return STATE.nt


def set_num_threads(n: int) -> None:
    """Use ``n`` threads (1 <= n <= :func:`get_max_threads`) for large arrays; process-wide."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        raise TypeError(f"set_num_threads: n must be an int, got {type(n).__name__}")
    hi = get_max_threads()
    if not 1 <= n <= hi:
        raise ValueError(
            f"set_num_threads: n must be between 1 and {hi} (NUMBA_NUM_THREADS), got {n}"
        )
    STATE.nt = int(n)


def supports(dtype: object, op: str | None = None) -> bool:
    """Whether the fast kernels handle ``dtype``: float32/float64 for every kernel, and the
    integer types int8..int64/uint8..uint64 too for ``op`` ``"clip"`` (float16: no)."""
    if not isinstance(dtype, np.dtype):
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            return False
    if op in _CLIP_OPS:
        return dtype in CLIP_DTYPES
    return dtype in FLOAT_DTYPES
