"""Checks and buffers shared by the operator families.

Messages name the operator, the input or argument, and what was expected.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from caffe2ops.errors import OperatorIndexError, OperatorTypeError, OperatorValueError
from caffe2ops.runtime import limits

FLOAT_DTYPES = frozenset(np.dtype(t) for t in (np.float16, np.float32, np.float64))
INT_DTYPES = frozenset(
    np.dtype(t)
    for t in (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64)
)
NUMERIC_DTYPES = FLOAT_DTYPES | INT_DTYPES
INDEX_DTYPES = frozenset(np.dtype(t) for t in (np.int32, np.int64))
FLOAT_TEXT = "float16, float32 or float64"
NUMERIC_TEXT = "float16, float32, float64 or an integer type"

# dtype -> (lowest, max): Caffe2's numeric_limits<T>::lowest()/max() defaults, per dtype.
LIMITS = {d: (d.type(np.finfo(d).min), d.type(np.finfo(d).max)) for d in FLOAT_DTYPES}
LIMITS.update({d: (d.type(np.iinfo(d).min), d.type(np.iinfo(d).max)) for d in INT_DTYPES})


_FLOAT_MAX = {d: float(np.finfo(d).max) for d in FLOAT_DTYPES}


def to_float_dtype(dtype: np.dtype, value: float) -> Any:
    """``value`` rounded to the float ``dtype``; beyond its range it rounds to ±inf, silently."""
    limit = _FLOAT_MAX[dtype]
    if -limit <= value <= limit or value != value:
        return dtype.type(value)
    with np.errstate(over="ignore"):
        return dtype.type(value)


def array(op: str, what: str, x: Any) -> np.ndarray:
    """``x`` as an ndarray (array-likes are converted; other array types refused)."""
    if type(x) is np.ndarray:
        return x
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "__cuda_array_interface__"):
        raise OperatorTypeError(f"{op}: {what} is a GPU array; this function takes NumPy arrays")
    try:
        return np.asarray(x)
    except Exception as exc:
        raise OperatorTypeError(f"{op}: {what} must be an array; got {type(x).__name__}") from exc


def require_dtype(op: str, what: str, x: np.ndarray, allowed: frozenset, text: str) -> None:
    if x.dtype not in allowed:
        raise OperatorTypeError(f"{op}: {what} must be {text}; got {x.dtype}")


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype a kernel computes in: float16 inputs compute in float32 (rounded once at the
    end), every other dtype in itself.

    >>> compute_dtype(np.dtype(np.float16)), compute_dtype(np.dtype(np.float64))
    (dtype('float32'), dtype('float64'))
    """
    return np.dtype(np.float32) if dtype == np.float16 else dtype


def float_input(op: str, what: str, x: Any) -> np.ndarray:
    x = array(op, what, x)
    if x.dtype not in FLOAT_DTYPES:
        raise OperatorTypeError(f"{op}: {what} must be {FLOAT_TEXT}; got {x.dtype}")
    return x


def same_shape(op: str, what: str, x: np.ndarray, ref_what: str, ref: np.ndarray) -> None:
    if x.shape != ref.shape:
        raise OperatorValueError(
            f"{op}: {what} must have the shape of {ref_what} {ref.shape}; got {x.shape}"
        )


def same_dtype(op: str, what: str, x: np.ndarray, ref_what: str, ref: np.ndarray) -> None:
    if x.dtype != ref.dtype:
        raise OperatorTypeError(
            f"{op}: {what} must have the dtype of {ref_what} ({ref.dtype}); got {x.dtype}"
        )


def number_arg(op: str, name: str, value: Any) -> int | float:
    """A numeric argument as a Python int (exact) or float: Python/NumPy ints and floats (bools,
    strings and arrays refused)."""
    kind = type(value)
    if kind is float or kind is int:  # the common case, first (bool is not int here)
        return value
    if isinstance(value, bool | np.bool_) or not isinstance(
            value, int | float | np.integer | np.floating):
        raise OperatorTypeError(
            f"{op}: argument '{name}' must be a float or int; got {type(value).__name__}"
        )
    if isinstance(value, int | np.integer):
        return int(value)
    return float(value)


def float_arg(op: str, name: str, value: Any) -> float:
    """A float argument: Python/NumPy int or float (bool refused). Integers beyond the float64
    range round to ±inf, as IEEE rounding does."""
    if type(value) is float:
        return value
    value = number_arg(op, name, value)
    try:
        return float(value)
    except OverflowError:  # an int of more than ~309 digits
        return math.inf if value > 0 else -math.inf


def bool_arg(op: str, name: str, value: Any) -> bool:
    """A boolean argument: ``True``/``False`` or ``np.bool_`` (no other truthy object)."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise OperatorTypeError(
        f"{op}: argument '{name}' must be a bool (True or False); got {type(value).__name__} "
        f"{value!r}"
    )


def int_bound(dtype: np.dtype, value: int | float, upper: bool) -> Any:
    """A bound for an integer ``dtype``, exact: a float is rounded inward (``ceil`` for a lower
    bound, ``floor`` for an ``upper`` one), then saturated to the dtype's range; NaN means no
    bound (the dtype's limit).

    >>> int_bound(np.dtype(np.int64), 2**53 + 1, upper=True)
    np.int64(9007199254740993)
    >>> int_bound(np.dtype(np.int8), 1e300, upper=False), int_bound(np.dtype(np.int8), 2.5, True)
    (np.int8(127), np.int8(2))
    """
    info = np.iinfo(dtype)
    if isinstance(value, float):
        if value != value:
            return dtype.type(info.max if upper else info.min)
        if math.isinf(value):
            return dtype.type(info.max if value > 0 else info.min)
        value = math.floor(value) if upper else math.ceil(value)
    return dtype.type(min(max(value, info.min), info.max))


def output(
    op: str, out: Any, shape: tuple, dtype: np.dtype, no_alias: tuple = ()
) -> np.ndarray:
    """A buffer for the result: a new array, or ``out`` after checking it fits.

    ``no_alias`` lists inputs that ``out`` must not overlap (the kernel reads them after it
    starts writing).
    """
    if out is None:
        return np.empty(shape, dtype)
    if not isinstance(out, np.ndarray):
        raise OperatorTypeError(f"{op}: out must be a NumPy array; got {type(out).__name__}")
    if out.shape != shape or out.dtype != dtype:
        raise OperatorValueError(
            f"{op}: out must have shape {shape} and dtype {dtype}; got {out.shape} {out.dtype}"
        )
    if not out.flags.writeable:
        raise OperatorValueError(f"{op}: out is read-only")
    for x in no_alias:
        if np.may_share_memory(out, x):
            raise OperatorValueError(f"{op}: out must not overlap an input it cannot overwrite")
    return out


def unaliased(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``x``, or a copy of it when ``out`` overlaps it other than element for element (e.g.
    ``clip(a[1:], out=a[:-1])``): element-wise kernels may then run in place but never read an
    element another iteration has already written."""
    if out is x or not np.may_share_memory(out, x):
        return x
    if (
        x.shape == out.shape
        and x.strides == out.strides
        and x.__array_interface__["data"][0] == out.__array_interface__["data"][0]
    ):
        return x
    return x.copy()


def row_indices(op: str, indices: Any, rows: int, what: str = "input indices",
                dtype: Any = None) -> np.ndarray:
    """``indices`` (int32/int64, any shape) copied (as ``dtype`` if given), flattened, each
    checked to lie in ``[0, rows)``."""
    indices = array(op, what, indices)
    require_dtype(op, what, indices, INDEX_DTYPES, "int32 or int64")
    # A private copy: what is checked here is what the kernel reads, even if another thread
    # changes the caller's array meanwhile.
    flat = np.array(indices, dtype=dtype, copy=True, order="C").reshape(-1)
    if flat.size:
        lo, hi = flat.min(), flat.max()
        if lo < 0 or hi >= rows:
            bad = int(lo) if lo < 0 else int(hi)
            pos = int(np.flatnonzero(flat == bad)[0])
            raise OperatorIndexError(
                f"{op}: {what}[{pos}] = {bad} is out of range for param with {rows} rows "
                f"(expected 0 <= index < {rows})"
            )
    return flat


def reusable(buf: Any, shape: tuple, dtype: np.dtype) -> np.ndarray | None:
    """An existing output blob that can be written in place (same shape and dtype), else None."""
    if (
        type(buf) is np.ndarray
        and buf.shape == shape
        and buf.dtype == dtype
        and buf.flags.c_contiguous
        and buf.flags.writeable
    ):
        return buf
    return None


def reusable_like(buf: Any, x: Any, shape: tuple | None = None) -> np.ndarray | None:
    """:func:`reusable` for an output of ``x``'s dtype and shape (or ``shape``), read without
    checking ``x``: a net adapter passes the blob on and the functional call validates it."""
    if type(x) is not np.ndarray:
        return None
    return reusable(buf, x.shape if shape is None else shape, x.dtype)


def rows_view(x: np.ndarray) -> tuple[int, int]:
    """Caffe2's row layout: ``N = dim 0`` (1 for a 0-d tensor), ``D`` = product of the rest."""
    if x.ndim == 0:
        return 1, 1
    n = x.shape[0]
    d = int(np.prod(x.shape[1:], dtype=np.int64)) if x.ndim > 1 else 1
    return n, d


def same_as_input(i: int = 0):
    """Shape inference: output 0 has input ``i``'s shape and dtype."""

    def infer(inputs, args):
        return [inputs[i]]

    return infer


def check_alloc_size(op: str, shape: tuple, dtype: Any, what: str = "shape") -> int:
    """The element count of ``shape``, after checking that every dimension is >= 0 and that
    ``numel * itemsize`` stays within :mod:`caffe2ops.runtime.limits`' blob limit (raises
    ``OperatorValueError``)."""
    numel = 1
    for d in shape:
        if d < 0:
            raise OperatorValueError(f"{op}: {what} {tuple(shape)} has a negative dimension")
        if d >= 1 << 62:
            raise OperatorValueError(f"{op}: {what} {tuple(shape)} has a dimension >= 2**62")
        numel *= int(d)
    limits.check_blob_size(op, "output", shape, np.dtype(dtype).itemsize)
    return numel


def copied_row_indices(op: str, what: str, indices: Any, rows: int) -> np.ndarray:
    """:func:`row_indices` as a new flat int64 array."""
    return row_indices(op, indices, rows, what, dtype=np.int64)


def float_scalar_input(op: str, what: str, x: Any) -> np.ndarray:
    """A float tensor with exactly one element (a learning rate, a weight)."""
    x = float_input(op, what, x)
    if x.size != 1:
        raise OperatorValueError(f"{op}: {what} must have exactly one element; got shape {x.shape}")
    return x
