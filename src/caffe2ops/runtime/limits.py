"""Resource limits a NetDef cannot exceed.

The largest blob an operator may allocate from its arguments alone (``ConstantFill`` with
``shape=[2**20, 2**20, 2**10]`` is a 30-byte NetDef): by default half the machine's physical
memory, or ``CAFFE2OPS_MAX_BLOB_BYTES`` from the environment (read once, at import), or what
:func:`set_max_blob_bytes` sets.

>>> from caffe2ops.runtime import limits
>>> old = limits.get_max_blob_bytes()
>>> _ = limits.set_max_blob_bytes(1 << 30)
>>> limits.check_blob_size("ConstantFill", "output", (1024, 1024), 4)
>>> try:
...     limits.check_blob_size("ConstantFill", "output", (1 << 20, 1 << 20), 4)
... except ValueError as exc:
...     print(str(exc).split(" bytes,")[0])
ConstantFill: output of shape (1048576, 1048576) would take 4398046511104
>>> _ = limits.set_max_blob_bytes(old)
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from caffe2ops.errors import OperatorValueError

__all__ = ["check_blob_size", "get_max_blob_bytes", "set_max_blob_bytes"]


def _default() -> int:
    env = os.environ.get("CAFFE2OPS_MAX_BLOB_BYTES")
    if env:
        try:
            return max(0, int(env))
        except ValueError:
            pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 1 << 34


_MAX = [_default()]


def get_max_blob_bytes() -> int:
    """The largest blob (in bytes) an operator may allocate from its arguments."""
    return _MAX[0]


def set_max_blob_bytes(n: int) -> int:
    """Set :func:`get_max_blob_bytes` (process-wide); returns the previous limit."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise OperatorValueError(f"set_max_blob_bytes: n must be an int >= 0; got {n!r}")
    previous, _MAX[0] = _MAX[0], n
    return previous


def check_blob_size(op: str, what: str, shape: Sequence[int], itemsize: int) -> None:
    """Raise (naming ``op`` and ``what``) if a blob of ``shape`` would exceed the limit; exact
    for any shape (Python integers, no overflow)."""
    count = 1
    for d in shape:
        count *= int(d)
    nbytes = count * int(itemsize)
    if nbytes > _MAX[0]:
        raise OperatorValueError(
            f"{op}: {what} of shape {tuple(shape)} would take {nbytes} bytes, more than the "
            f"limit of {_MAX[0]} bytes (caffe2ops.runtime.limits.set_max_blob_bytes or "
            "CAFFE2OPS_MAX_BLOB_BYTES)"
        )
