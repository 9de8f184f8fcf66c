"""Shared machinery of the clipping toolkit: structures, validation, norms, scaling.

Numba is imported lazily (inside functions) so that importing the toolkit only costs NumPy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from caffe2ops.errors import OperatorTypeError, OperatorValueError

__all__ = ["ClipStats"]

NONFINITE_MODES = ("propagate", "raise", "skip", "zero")

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_F16 = np.dtype(np.float16)
_CHUNK = 1 << 16  # elements converted to float32 at a time for float16/bfloat16 norms


@dataclass(frozen=True)
class ClipStats:
    """What a clipping call measured and did.

    Attributes:
        total_norm: the pre-clip norm (a NumPy scalar). For :func:`clip_by_global_norm`,
            :func:`clip_by_norm`, :func:`clip_by_value` and :func:`adaptive_grad_clip` the norm of
            all inputs together (the norm of the per-array norms, as ``torch.nn.utils.
            get_total_norm``); for :func:`per_sample_clip` the vector of per-example global norms.
            float32 when every input is float16/bfloat16, float64 otherwise.
        scale: the factor applied. A scalar for global-norm clipping (1 when nothing was clipped,
            NaN when a non-finite norm was propagated); per-array/per-slice/per-unit/per-example
            factors for the other functions; ``None`` for value clipping (no factor).
        num_clipped: how many units were changed: arrays for global-norm clipping (all or none),
            arrays or slices for :func:`clip_by_norm`, units for :func:`adaptive_grad_clip`,
            examples for :func:`per_sample_clip`, elements for :func:`clip_by_value`.
        nonfinite: True when a NaN or infinity was seen in the inputs.
        norms: per-array (or per-slice / per-unit) pre-clip norms, in the structure of the input
            (a vector for a list, a dict for a dict, a scalar or array for one array); ``None``
            where it does not apply.
    """

    total_norm: Any
    scale: Any
    num_clipped: int
    nonfinite: bool
    norms: Any = None


# --------------------------------------------------------------------------------- structures


class Structure:
    """Remembers how the caller passed the arrays so results come back the same way."""

    __slots__ = ("kind", "keys", "container")

    def __init__(self, kind: str, keys: list | None, container: type | None) -> None:
        self.kind = kind
        self.keys = keys
        self.container = container

    def rebuild(self, items: list) -> Any:
        if self.kind == "single":
            return items[0]
        if self.kind == "dict":
            return dict(zip(self.keys, items, strict=True))  # type: ignore[arg-type]
        if self.container is tuple:
            return tuple(items)
        return list(items)

    def rebuild_norms(self, vec: np.ndarray) -> Any:
        """Per-array scalars: a scalar for one array, a dict for a dict, else the vector."""
        if self.kind == "single":
            return vec[0]
        if self.kind == "dict":
            return dict(zip(self.keys, vec, strict=True))  # type: ignore[arg-type]
        return vec

    def name(self, i: int) -> str:
        if self.kind == "dict":
            return f"array {self.keys[i]!r}"  # type: ignore[index]
        if self.kind == "single":
            return "the array"
        return f"array {i}"


def _is_half(dt: np.dtype) -> bool:
    return dt == _F16 or dt.name == "bfloat16"


def is_float(dt: np.dtype) -> bool:
    return dt == _F32 or dt == _F64 or _is_half(dt)


def flatten(fn: str, arrays: Any, inplace: bool, *, allow_int: bool = False) -> tuple:
    """Split ``arrays`` into ``(Structure, list of ndarrays)`` and validate every array."""
    if isinstance(arrays, np.ndarray):
        st, items = Structure("single", None, None), [arrays]
    elif isinstance(arrays, Mapping):
        st, items = Structure("dict", list(arrays.keys()), None), list(arrays.values())
    elif isinstance(arrays, (list, tuple)):
        st, items = Structure("seq", None, type(arrays)), list(arrays)
    else:  # a Python number or another array-like: one array
        st, items = Structure("single", None, None), [arrays]
    for i, a in enumerate(items):
        if type(a) is not np.ndarray:
            if not isinstance(a, np.ndarray):
                if inplace:
                    raise OperatorTypeError(
                        f"{fn}: inplace=True needs NumPy arrays, {st.name(i)} is a "
                        f"{type(a).__name__}"
                    )
                try:
                    a = np.asarray(a)
                except Exception as exc:
                    raise OperatorTypeError(
                        f"{fn}: {st.name(i)} ({type(a).__name__}) is not array-like"
                    ) from exc
                if a.dtype.kind in "iub" and not allow_int:  # Python ints/lists for norms
                    a = a.astype(np.float64)
                items[i] = a
        dt = a.dtype
        if not (dt is _F32 or dt is _F64 or is_float(dt) or (allow_int and dt.kind in "iu")):
            raise OperatorTypeError(
                f"{fn}: {st.name(i)} has dtype {dt}; expected float16, bfloat16, float32 or "
                f"float64{' or an integer type' if allow_int else ''}"
            )
        if inplace and not a.flags.writeable:
            raise OperatorValueError(f"{fn}: inplace=True but {st.name(i)} is read-only")
    return st, items


def check_number(fn: str, name: str, value: Any) -> float:
    """A numeric argument as a float: Python/NumPy ints and floats (no bools, strings or
    arrays); an int beyond the float range becomes ±inf."""
    from caffe2ops.ops._common import float_arg

    try:
        return float_arg(fn, name, value)
    except OperatorTypeError:
        raise OperatorTypeError(
            f"{fn}: {name} must be a number (int or float); got {type(value).__name__} "
            f"{value!r}"
        ) from None


def check_bool(fn: str, name: str, value: Any) -> bool:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise OperatorTypeError(f"{fn}: {name} must be True or False; got {value!r}")


def check_axis(fn: str, axis: Any) -> tuple[int, ...]:
    """``axis`` as a tuple of ints: an int or a list/tuple of ints (NumPy ints too)."""
    items = axis if isinstance(axis, list | tuple) else (axis,)
    for a in items:
        if isinstance(a, bool | np.bool_) or not isinstance(a, int | np.integer):
            raise OperatorTypeError(
                f"{fn}: axis must be an int or a tuple of ints; got {axis!r}"
            )
    return tuple(int(a) for a in items)


def alias_groups(fn: str, st: Structure, items: list[np.ndarray],
                 plan: Plan | None = None) -> list[list[int]] | None:
    """For in-place calls: groups of indices of the *same* array given more than once (None if
    every array is distinct). Arrays that share memory without being the same view raise.
    ``plan`` (of ``items``) supplies the addresses of its fused groups (cheaper)."""
    n = len(items)
    if n < 2:
        return None
    from numpy.lib.array_utils import byte_bounds

    bounds = np.zeros((n, 2), np.int64)
    rest: Any = range(n)
    if plan is not None:
        for dt, idx, ptrs, sizes in plan.groups:
            bounds[idx, 0] = ptrs
            bounds[idx, 1] = ptrs + sizes * dt.itemsize
        rest = plan.other
    for i in rest:
        if items[i].size:
            bounds[i] = byte_bounds(items[i])
    order = np.argsort(bounds[:, 0], kind="stable")
    lo, hi = bounds[order, 0], bounds[order, 1]
    reach = np.maximum.accumulate(hi)
    suspects = np.flatnonzero((lo[1:] < reach[:-1]) & (lo[1:] != hi[1:])) + 1
    if not suspects.size:
        return None
    first_of: dict[int, int] = {}  # index -> the first index of the same array
    for k in suspects:
        j = int(order[k])
        for kk in range(k):
            i = int(order[kk])
            if bounds[i, 1] <= lo[k] or bounds[i, 0] == bounds[i, 1]:
                continue  # extents do not overlap, or an empty array
            a, b = items[i], items[j]
            if (bounds[i, 0] == bounds[j, 0] and a.shape == b.shape and a.strides == b.strides
                    and a.dtype == b.dtype):
                first_of[j] = first_of.get(i, i)
                continue
            if np.shares_memory(a, b):
                raise OperatorValueError(
                    f"{fn}: inplace=True but {st.name(i)} and {st.name(j)} overlap in memory "
                    "without being the same array; pass distinct arrays (or the same one twice)"
                )
    groups: dict[int, list[int]] = {}
    for j, i in first_of.items():
        groups.setdefault(i, [i]).append(j)
    return [sorted(g) for g in groups.values()] or None


def write_back(fn: str, st: Structure, items: list[np.ndarray], outs: list[np.ndarray],
               groups: list[list[int]]) -> None:
    """Copy out-of-place results into the caller's arrays (an in-place call whose inputs repeat
    an array); a repeated array must get one result."""
    for g in groups:
        first = outs[g[0]]
        for i in g[1:]:
            if outs[i].tobytes() != first.tobytes():
                raise OperatorValueError(
                    f"{fn}: inplace=True and {st.name(g[0])} is also {st.name(i)}, but the two "
                    "get different results; pass distinct arrays"
                )
    for i, (a, out) in enumerate(zip(items, outs, strict=True)):
        if i not in {j for g in groups for j in g[1:]}:
            np.copyto(a, out)


def check_max_norm(fn: str, max_norm: Any, name: str = "max_norm") -> float:
    v = check_number(fn, name, max_norm)
    if not v >= 0:
        raise OperatorValueError(f"{fn}: {name} must be >= 0 (and not NaN), got {max_norm!r}")
    return v


def check_nonfinite(fn: str, mode: str) -> None:
    if not isinstance(mode, str) or mode not in NONFINITE_MODES:
        raise OperatorValueError(
            f"{fn}: nonfinite must be one of {', '.join(map(repr, NONFINITE_MODES))}, got {mode!r}"
        )


def ord_code(fn: str, ord: Any) -> int:
    """1, 2, or 0 for infinity."""
    if isinstance(ord, str):
        if ord in ("inf", "Inf"):
            return 0
    elif isinstance(ord, int | float | np.integer | np.floating) and not isinstance(
            ord, bool | np.bool_):
        if ord == float("inf"):
            return 0
        if ord in (1, 2):
            return int(ord)
    raise OperatorValueError(f"{fn}: ord must be 1, 2 or inf, got {ord!r}")


def norm_dtype(items: list[np.ndarray]) -> np.dtype:
    """float32 when every array is float16/bfloat16, float64 otherwise."""
    if items and all(_is_half(a.dtype) for a in items):
        return _F32
    return _F64


# -------------------------------------------------------------------------------------- norms


class Plan:
    """Arrays sorted into fused groups (contiguous float32, contiguous float64) and the rest.

    Built once per call so the norm pass and the scale pass share one pointer table.
    ``groups`` holds ``(dtype, indices, ptrs, sizes)``; ``other`` the indices of arrays handled
    one by one (float16, bfloat16, strided views).
    """

    __slots__ = ("groups", "other")

    def __init__(self, items: list[np.ndarray]) -> None:
        i32: list[int] = []
        i64: list[int] = []
        other: list[int] = []
        for i, a in enumerate(items):
            dt = a.dtype
            if dt is _F32 or dt == _F32:
                i32.append(i)
            elif dt is _F64 or dt == _F64:
                i64.append(i)
            else:
                other.append(i)
        self.groups: list[tuple[np.dtype, np.ndarray, np.ndarray, np.ndarray]] = []
        if i32 or i64:
            norms, scaling = kernel_modules()

            for dt, idx in ((_F32, i32), (_F64, i64)):
                if not idx:
                    continue
                sub = items if len(idx) == len(items) else [items[i] for i in idx]
                ptrs, sizes = norms.pointer_table(sub)  # ptr -1: not contiguous
                iarr = np.asarray(idx, dtype=np.intp)
                strided = ptrs < 0
                if strided.any():
                    other += iarr[strided].tolist()
                    keep = ~strided
                    iarr, ptrs, sizes = iarr[keep], ptrs[keep], sizes[keep]
                if iarr.size:
                    self.groups.append((dt, iarr, ptrs, sizes))
        self.other = sorted(other)


def kernel_modules() -> tuple:
    """``(norms, scaling)``: the toolkit's CPU kernel modules (``caffe2ops.kernels.cpu``), loading
    numba and the kernels on first use."""
    from caffe2ops.kernels import cpu

    return cpu.family("norms"), cpu.family("scaling")


def _finish(r: float, code: int, flat: np.ndarray) -> float:
    """Turn a float64 reduction into a norm; exact rescan of float64 data that over/underflowed."""
    norms, scaling = kernel_modules()

    if flat.dtype == _F64 and (r == np.inf or (code == 2 and r < 1e-290)):
        return float(norms.rescan(flat, code)[1])
    return float(np.sqrt(r)) if code == 2 else float(r)


def _flat_norm(a: np.ndarray, code: int) -> float:
    """Norm of one array of any supported dtype and layout (the slow path)."""
    norms, scaling = kernel_modules()

    flat = np.ravel(a, order="K")  # a view when contiguous (any order), else a copy
    if flat.dtype == _F32 or flat.dtype == _F64:
        if code == 0:
            ptrs, sizes = norms.pointer_table([flat])
            return float(norms.maxabs(flat.dtype, ptrs, sizes)[0])
        r = norms.sum_squares(flat) if code == 2 else norms.sum_abs(flat)
        return _finish(r, code, flat)
    # float16 / bfloat16: convert chunks into one float32 buffer, accumulate in float64.
    buf = np.empty(min(_CHUNK, flat.size), _F32)
    acc = 0.0
    for s in range(0, flat.size, _CHUNK):
        part = flat[s : s + _CHUNK]
        b = buf[: part.size]
        np.copyto(b, part, casting="unsafe")
        if code == 2:
            acc += norms.sum_squares(b)
        elif code == 1:
            acc += norms.sum_abs(b)
        else:
            m = float(np.max(np.abs(b)))
            if m != m:
                return m
            acc = max(acc, m)
    return float(np.sqrt(acc)) if code == 2 else acc


def per_array_norms(items: list[np.ndarray], code: int, plan: Plan | None = None) -> np.ndarray:
    """float64 vector of the ord-``code`` norm of each array (NaN/inf where non-finite).

    Each fused group is one multi-array Numba pass; the other arrays go through
    :func:`_flat_norm`.
    """
    if plan is None:
        plan = Plan(items)
    out = np.empty(len(items), np.float64)
    for i in plan.other:
        out[i] = _flat_norm(items[i], code)
    if plan.groups:
        norms, scaling = kernel_modules()

        for dt, idx, ptrs, sizes in plan.groups:
            if code == 0:
                out[idx] = norms.maxabs(dt, ptrs, sizes)
                continue
            r = norms.multi_reduce(ptrs, sizes, dt, code)
            nrm = np.sqrt(r) if code == 2 else r
            if dt == _F64:
                # Over/underflow is possible only in float64 (float32 squares fit float64).
                suspect = (r == np.inf) | ((r < 1e-290) if code == 2 else False)
                for j in np.flatnonzero(suspect):
                    nrm[j] = norms.rescan(np.ravel(items[idx[j]], order="K"), code)[1]
            out[idx] = nrm
    return out


def combine(norms: np.ndarray, code: int) -> float:
    """Norm of a vector of norms (the global norm), safe from overflow; NaN beats inf."""
    if norms.size == 0:
        return 0.0
    if np.isnan(norms).any():
        return float("nan")
    m = float(norms.max())
    if code == 0 or m == 0.0 or m == np.inf:
        return m
    if code == 1:
        return float(np.sum(norms / m) * m)
    return float(np.sqrt(np.sum(np.square(norms / m))) * m)


def zero_nonfinite(a: np.ndarray) -> None:
    """Set the NaN and ±inf entries of ``a`` to +0, in place."""
    np.copyto(a, 0, where=~np.isfinite(a))


def zeroed(items: list[np.ndarray], bad: Any, inplace: bool
           ) -> tuple[list[np.ndarray], list[bool]]:
    """``nonfinite="zero"``: ``(srcs, fresh)`` with the arrays ``bad`` (indices) zeroed where
    not finite, in place or as private copies (``fresh[i]`` marks a copy the scale pass may
    overwrite); the other arrays are the given ones."""
    srcs = list(items)
    fresh = [False] * len(items)
    for i in bad:
        a = items[i] if inplace else items[i].copy(order="K")
        zero_nonfinite(a)
        srcs[i] = a
        fresh[i] = not inplace
    return srcs, fresh


def global_factor(total: float, limit: float, nonfinite: str) -> float:
    """The one scale factor of global-norm clipping: ``limit / total`` above the limit, else 1
    (exact: nothing shrinks at ``total == limit``); a non-finite total gives NaN, or 1 with
    ``nonfinite="skip"``.

    >>> global_factor(5.0, 1.0, "propagate"), global_factor(1.0, 1.0, "propagate")
    (0.2, 1.0)
    >>> global_factor(float("inf"), 1.0, "propagate"), global_factor(float("nan"), 1.0, "skip")
    (nan, 1.0)
    """
    if not np.isfinite(total):
        return 1.0 if nonfinite == "skip" else float("nan")
    return limit / float(total) if total > limit else 1.0


def nonfinite_error(fn: str, st: Structure, i: int, a: np.ndarray, norm: float) -> Exception:
    what = "NaN" if np.isnan(a).any() else "an infinity"
    return OperatorValueError(
        f"{fn}: {st.name(i)} (shape {a.shape}, {a.dtype}) holds {what} (its norm is {norm}); "
        f"nonfinite='raise'. Use nonfinite='skip', 'zero' or 'propagate' to continue."
    )


# ------------------------------------------------------------------------------------ scaling


def _scale_one(src: np.ndarray, dst: np.ndarray, f: float) -> None:
    if f == 1.0:
        if dst is not src:
            np.copyto(dst, src)
        return
    if _is_half(src.dtype):
        # One multiply in float32, rounded once to the array's dtype (the scale keeps float32
        # precision instead of being rounded to 11 or 8 bits first).
        np.multiply(src, np.float32(f), out=dst, casting="unsafe")
    else:
        np.multiply(src, src.dtype.type(f), out=dst)


def apply_factors(
    srcs: list[np.ndarray],
    factors: np.ndarray,
    inplace: bool,
    fresh: list[bool] | None = None,
    plan: Plan | None = None,
) -> list[np.ndarray]:
    """``out[i] = srcs[i] * factors[i]`` (factor rounded to the array's dtype).

    In place (or where ``fresh[i]`` says ``srcs[i]`` is already a private copy) the result is
    written into ``srcs[i]``; otherwise into a new array of the same layout. Factor 1 leaves the
    array bit-identical (in place: not even written). Each fused group of ``plan`` (which must
    describe ``srcs``) is scaled in one multi-array Numba pass.
    """
    if plan is None:
        plan = Plan(srcs)
    if inplace:
        outs = list(srcs)
    elif fresh is None:
        outs = [np.empty_like(a) for a in srcs]
    else:
        outs = [a if fr else np.empty_like(a) for a, fr in zip(srcs, fresh, strict=True)]
    for i in plan.other:
        _scale_one(srcs[i], outs[i], float(factors[i]))
    if plan.groups:
        norms, scaling = kernel_modules()

        for dt, idx, ptrs, sizes in plan.groups:
            if inplace:
                dptrs = ptrs
            else:
                dptrs, _ = norms.pointer_table([outs[i] for i in idx])
                if (dptrs < 0).any() or any(outs[i].strides != srcs[i].strides for i in idx):
                    for i in idx:  # pragma: no cover - empty_like keeps contiguous layouts
                        _scale_one(srcs[i], outs[i], float(factors[i]))
                    continue
            fac = np.asarray(factors[idx], dtype=dt)
            scaling.multi_scale(ptrs, dptrs, sizes, fac, dt)
    return outs
