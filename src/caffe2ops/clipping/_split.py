"""Global-norm clipping split in three steps, for any collective (torch.distributed, MPI, Dask).

Each process (or Dask chunk) calls :func:`partial_norms` on the arrays it holds, the partials are
reduced with the collective the caller already runs (element-wise ``SUM`` for ``ord`` 1 and 2,
``MAX`` for ``ord=inf``), :func:`combine_norms` turns the reduced partial into the total norm, and
:func:`apply_clip` scales the local arrays by the one factor every process computes alike.

The norms and the scaling are the toolkit's own (``caffe2ops.clipping._common``): the per-array
norms of the fused kernels (float64 accumulation, float16/bfloat16 through float32) and the same
exact scaling as :func:`caffe2ops.clipping.clip_by_global_norm`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from caffe2ops.clipping._common import (
    _F32,
    _F64,
    ClipStats,
    Plan,
    _is_half,
    apply_factors,
    check_max_norm,
    check_nonfinite,
    flatten,
    global_factor,
    nonfinite_error,
    norm_dtype,
    ord_code,
    per_array_norms,
    zero_nonfinite,
    zeroed,
)
from caffe2ops.errors import OperatorTypeError, OperatorValueError

__all__ = ["PARTIAL_SIZE", "apply_clip", "combine_norms", "partial_norms"]

#: Length of the vector :func:`partial_norms` returns: ``[value, nonfinite arrays, arrays,
#: arrays wider than 16 bits]``. Every slot reduces with the same operation as the value.
PARTIAL_SIZE = 4


def _originals(arrays: Any) -> list:
    if isinstance(arrays, Mapping):
        return list(arrays.values())
    if isinstance(arrays, (list, tuple)):
        return list(arrays)
    return [arrays]


def _replicated_mask(fn: str, st, arrays: Any, replicated: Any) -> list[bool]:
    """One bool per array: a predicate ``(key, array) -> bool``, a bool for all, a sequence of
    bools (list input) or a mapping name -> bool (dict input; missing names are False)."""
    originals = _originals(arrays)
    n = len(originals)
    keys = st.keys if st.kind == "dict" else list(range(n))
    if replicated is None:
        return [False] * n
    if callable(replicated):
        return [bool(replicated(k, a)) for k, a in zip(keys, originals, strict=True)]
    if isinstance(replicated, (bool, np.bool_)):
        return [bool(replicated)] * n
    if isinstance(replicated, Mapping):
        if st.kind != "dict":
            raise OperatorTypeError(f"{fn}: replicated is a mapping but the arrays are not a dict")
        unknown = set(replicated) - set(keys)
        if unknown:
            raise OperatorValueError(f"{fn}: replicated names unknown arrays {sorted(unknown)!r}")
        return [bool(replicated.get(k, False)) for k in keys]
    if isinstance(replicated, Sequence) or isinstance(replicated, np.ndarray):
        mask = [bool(v) for v in replicated]
        if len(mask) != n:
            raise OperatorValueError(
                f"{fn}: replicated has {len(mask)} entries for {n} arrays"
            )
        return mask
    raise OperatorTypeError(
        f"{fn}: replicated must be None, a bool, a sequence or mapping of bools, or a predicate "
        f"(key, array) -> bool; got {type(replicated).__name__}"
    )


def partial_norms(
    arrays: Any,
    ord: float | str = 2,
    *,
    nonfinite: str = "propagate",
    replicated: Any = None,
    rank: int | None = None,
) -> np.ndarray:
    """The local shard's contribution to a global norm: a float64 vector of :data:`PARTIAL_SIZE`.

    Slot 0 is ``Σ‖a‖₂²`` (ord 2), ``Σ‖a‖₁`` (ord 1) or ``max‖a‖∞`` (ord inf) over the local
    arrays, from the toolkit's per-array norms; slot 1 counts the arrays holding NaN or infinity,
    slot 2 the arrays, slot 3 those that are not float16/bfloat16 (so :func:`combine_norms`
    reports a float32 norm exactly when every array everywhere is a half type, as
    :func:`clip_by_global_norm` does). Reduce the vectors across processes element-wise with
    ``SUM`` (ord 1, 2) or ``MAX`` (ord inf) — one collective — then call :func:`combine_norms`.

    ``replicated`` marks arrays that every rank holds in full (a predicate ``(key, array) ->
    bool`` with the dict key or list index, a bool, a list of bools, or a dict name -> bool);
    they count only where ``rank == 0`` (``rank``: this process's rank in the group the partials
    are reduced over; required with ``replicated``), so a replicated parameter counts once, not
    once per rank. ``nonfinite="zero"`` leaves non-finite entries out of the value (as
    :func:`apply_clip` will zero them); every other policy lets NaN/inf into it, so every rank
    sees a non-finite total. Float64 shards whose 2-norm exceeds ~1e154 overflow slot 0 to inf.

    Example (two "ranks" in one process; the bias is replicated):
        >>> import numpy as np
        >>> w0, w1, b = np.array([3.0]), np.array([4.0]), np.array([12.0])
        >>> p0 = partial_norms({"w": w0, "b": b}, replicated={"b": True}, rank=0)
        >>> p1 = partial_norms({"w": w1, "b": b}, replicated={"b": True}, rank=1)
        >>> p0, p1
        (array([153.,   0.,   2.,   2.]), array([16.,  0.,  2.,  2.]))
        >>> combine_norms(p0 + p1)
        np.float64(13.0)
    """
    fn = "partial_norms"
    st, items = flatten(fn, arrays, False)
    code = ord_code(fn, ord)
    check_nonfinite(fn, nonfinite)
    mask = _replicated_mask(fn, st, arrays, replicated)
    if any(mask):
        if rank is None:
            raise OperatorValueError(
                f"{fn}: replicated= needs rank= (this process's rank in the group the partials "
                "are reduced over) so that a replicated array is counted once, on rank 0"
            )
        if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank < 0:
            raise OperatorValueError(f"{fn}: rank must be an int >= 0, got {rank!r}")
    counted = [a for a, rep in zip(items, mask, strict=True) if not (rep and rank != 0)]
    norms = per_array_norms(counted, code, Plan(counted)) if counted else np.zeros(0, _F64)
    bad = np.flatnonzero(~np.isfinite(norms))
    if nonfinite == "zero" and bad.size:
        norms = norms.copy()
        for i in bad:
            clean = counted[i].copy(order="K")
            zero_nonfinite(clean)
            norms[i] = per_array_norms([clean], code)[0]
    if code == 2:
        value = float(np.sum(np.square(norms)))
    elif code == 1:
        value = float(np.sum(norms))
    else:
        value = float(np.max(norms, initial=0.0)) if not np.isnan(norms).any() else float("nan")
    wide = sum(1 for a in items if not _is_half(a.dtype))
    return np.array([value, bad.size, len(items), wide], _F64)


def combine_norms(partials: Any, ord: float | str = 2) -> np.floating:
    """The total norm from reduced partials (one vector) or from unreduced ones (a sequence or a
    ``(k, PARTIAL_SIZE)`` array, reduced here with sum, or max for ord inf).

    ``sqrt(value)`` for ord 2, ``value`` otherwise; a NumPy float32 scalar when every array that
    went into the partials is float16/bfloat16, float64 otherwise (the dtype
    :func:`clip_by_global_norm` reports). Pass it unchanged to :func:`apply_clip`.

    Example:
        >>> import numpy as np
        >>> parts = [partial_norms([np.array([3.0])]), partial_norms([np.array([4.0])])]
        >>> combine_norms(parts), combine_norms(parts, ord=1)
        (np.float64(5.0), np.float64(25.0))
    """
    fn = "combine_norms"
    code = ord_code(fn, ord)
    try:
        p = np.asarray(partials, dtype=_F64)
    except (TypeError, ValueError) as exc:
        raise OperatorTypeError(f"{fn}: partials must be numeric vectors") from exc
    if p.ndim == 2 and p.shape[1] == PARTIAL_SIZE:
        p = p.max(axis=0) if code == 0 else p.sum(axis=0)
    if p.shape != (PARTIAL_SIZE,):
        raise OperatorValueError(
            f"{fn}: partials must be partial_norms() vectors of length {PARTIAL_SIZE} (or a "
            f"sequence of them); got shape {p.shape}"
        )
    value, _, count, wide = (float(v) for v in p)
    dtype = _F32 if count > 0 and wide == 0 else _F64
    total = float(np.sqrt(value)) if code == 2 else value
    return dtype.type(total)


def _check_total(fn: str, total_norm: Any) -> float:
    try:
        total = float(np.asarray(total_norm).reshape(()))
    except (TypeError, ValueError) as exc:
        raise OperatorTypeError(f"{fn}: total_norm must be a number, got {total_norm!r}") from exc
    if total < 0:
        raise OperatorValueError(f"{fn}: total_norm must be >= 0 (or NaN/inf), got {total}")
    return total


def apply_clip(
    arrays: Any,
    total_norm: Any,
    max_norm: float,
    *,
    nonfinite: str = "propagate",
    inplace: bool = False,
) -> tuple[Any, ClipStats]:
    """Scale the local arrays by ``max_norm / total_norm`` where ``total_norm > max_norm``.

    The scaling of :func:`clip_by_global_norm`: at or below ``max_norm`` the arrays stay
    bit-identical (new copies unless ``inplace``); the factor is rounded to each array's dtype
    (float16/bfloat16 multiplied in float32 and rounded once). ``total_norm`` is
    :func:`combine_norms`'s result, passed unchanged (its dtype is the stats' dtype). Policies for
    a non-finite ``total_norm``: ``"propagate"`` (factor NaN), ``"skip"`` (arrays unchanged,
    factor 1), ``"raise"`` (``OperatorValueError`` naming the local offending array if there is
    one, nothing written); with ``"zero"`` the local non-finite entries become 0 before scaling
    (use the same policy in :func:`partial_norms`). Every rank computes the same factor.

    Returns ``(arrays, ClipStats)``: ``total_norm``, ``scale``, ``num_clipped`` (local arrays
    rescaled: all or none), ``nonfinite`` (the total is not finite, or a local array held a
    non-finite value), ``norms`` None (only the total is known here).

    Example:
        >>> import numpy as np
        >>> out, st = apply_clip([np.array([3.0, 0.0])], np.float64(5.0), 1.0)
        >>> out[0], float(st.scale), st.num_clipped
        (array([0.6, 0. ]), 0.2, 1)
    """
    fn = "apply_clip"
    st, items = flatten(fn, arrays, inplace)
    limit = check_max_norm(fn, max_norm)
    check_nonfinite(fn, nonfinite)
    total = _check_total(fn, total_norm)
    given = getattr(total_norm, "dtype", None)
    ndt = np.dtype(given) if given in (_F32, _F64) else norm_dtype(items)
    total = float(ndt.type(total))
    finite = bool(np.isfinite(total))
    srcs, fresh, local_bad = items, None, False
    if nonfinite in ("raise", "zero"):
        bad = [i for i, a in enumerate(items) if not _all_finite(a)]
        local_bad = bool(bad)
        if nonfinite == "raise" and (bad or not finite):
            if bad:
                a = items[bad[0]]
                raise nonfinite_error(fn, st, bad[0], a, float(per_array_norms([a], 2)[0]))
            raise OperatorValueError(
                f"{fn}: total_norm is {total}: another shard holds NaN or an infinity; "
                "nonfinite='raise'. Use nonfinite='skip', 'zero' or 'propagate' to continue."
            )
        if nonfinite == "zero" and bad:
            srcs, fresh = zeroed(items, bad, inplace)
    factor = global_factor(total, limit, nonfinite)
    n = len(items)
    plan = Plan(srcs) if srcs is items else None
    outs = apply_factors(srcs, np.full(n, factor), inplace, fresh, plan)
    stats = ClipStats(
        total_norm=ndt.type(total),
        scale=ndt.type(factor),
        num_clipped=n if factor != 1.0 else 0,
        nonfinite=(not finite) or local_bad,
        norms=None,
    )
    return st.rebuild(outs), stats


def _all_finite(a: np.ndarray) -> bool:
    x = a.astype(_F32) if _is_half(a.dtype) else a
    return bool(np.isfinite(x).all())
