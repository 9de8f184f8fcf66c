"""The public clipping functions (see the package docstring for the conventions)."""

from __future__ import annotations

from typing import Any

import numpy as np

from caffe2ops.clipping._common import (
    _F32,
    _F64,
    ClipStats,
    Plan,
    _is_half,
    alias_groups,
    apply_factors,
    check_axis,
    check_bool,
    check_max_norm,
    check_nonfinite,
    combine,
    flatten,
    global_factor,
    kernel_modules,
    nonfinite_error,
    norm_dtype,
    ord_code,
    per_array_norms,
    write_back,
    zero_nonfinite,
    zeroed,
)
from caffe2ops.errors import OperatorValueError
from caffe2ops.ops._common import int_bound, number_arg

__all__ = [
    "adaptive_grad_clip",
    "clip_by_global_norm",
    "clip_by_norm",
    "clip_by_value",
    "per_sample_clip",
]


def _deduplicated(fn: str, st, items: list[np.ndarray], call,
                  plan: Plan | None = None) -> tuple[Any, ClipStats] | None:
    """In-place calls that pass one array several times: compute out of place from the intact
    inputs (``call(arrays)``), then write each array's result back once. None when every array
    is distinct (the normal in-place path runs); partial overlaps raise."""
    groups = alias_groups(fn, st, items, plan)
    if not groups:
        return None
    result, stats = call(st.rebuild(items))
    outs = flatten(fn, result, False, allow_int=True)[1]
    write_back(fn, st, items, outs, groups)
    return st.rebuild(items), stats


def _prepare_nonfinite(
    fn: str, st, items: list[np.ndarray], norms: np.ndarray, code: int, mode: str, inplace: bool
) -> tuple[list[np.ndarray], list[bool] | None, np.ndarray, bool]:
    """Apply the ``nonfinite`` policy to per-array norms.

    Returns ``(srcs, fresh, norms, seen)``: the arrays to scale from (``"zero"`` substitutes
    zeroed private copies, or zeroes in place), which of them are private copies, the norms to use
    and whether a non-finite value was seen.
    """
    bad = ~np.isfinite(norms)
    if not bad.any():
        return items, None, norms, False
    bad_idx = np.flatnonzero(bad)
    if mode == "raise":
        i = int(bad_idx[0])
        raise nonfinite_error(fn, st, i, items[i], float(norms[i]))
    if mode != "zero":
        return items, None, norms, True
    srcs, fresh = zeroed(items, bad_idx, inplace)
    norms = norms.copy()
    norms[bad_idx] = per_array_norms([srcs[i] for i in bad_idx], code)
    return srcs, fresh, norms, True


def _gpu_input(arrays: Any) -> bool:
    values = arrays.values() if isinstance(arrays, dict) else (
        arrays if isinstance(arrays, list | tuple) else [arrays])
    return any(hasattr(v, "__cuda_array_interface__") or type(v).__name__ == "FakeCUDAArray"
               or getattr(v, "is_cuda", False) is True for v in values)


def clip_by_global_norm(
    arrays: Any,
    max_norm: float,
    ord: float | str = 2,
    nonfinite: str = "propagate",
    inplace: bool = False,
) -> tuple[Any, ClipStats]:
    """Scale all arrays by one factor so that their global norm is at most ``max_norm``.

    Formula: ``n = ‖(‖a_1‖, …, ‖a_k‖)‖_ord``; if ``n > max_norm`` every array becomes
    ``a * (max_norm / n)``, else it is left bit-identical (exact, no epsilon: unlike PyTorch's
    ``clip_grad_norm_`` nothing shrinks at ``n == max_norm``).

    Args:
        arrays: one ndarray, a list/tuple of them, or a dict name -> ndarray (returned the same
            way). float16, bfloat16 (``ml_dtypes``), float32 and float64; dtypes may be mixed.
        max_norm: ``>= 0``; 0 zeroes any non-zero input. ``inf`` never clips.
        ord: 1 (``Σ|x|``), 2 (``sqrt(Σx²)``) or ``inf`` (``max|x|``).
        nonfinite: what a NaN or infinity in the inputs does: ``"propagate"`` (norm NaN/inf,
            scale NaN, every output entry NaN, as TF/Keras do; PyTorch instead zeroes finite
            entries on an infinite norm), ``"raise"`` (``OperatorValueError`` naming the first
            offending array, nothing written), ``"skip"`` (arrays returned unchanged, scale 1,
            ``stats.nonfinite`` True), ``"zero"`` (non-finite entries set to 0 in the outputs, then
            clipped by the norm of the rest).
        inplace: write into the given arrays (must be writeable) and return them. Otherwise the
            inputs are never modified and the outputs are always new arrays, even when nothing is
            clipped (then bit-identical copies).

    Returns:
        ``(arrays, ClipStats)``: ``total_norm`` pre-clip (after zeroing in ``"zero"`` mode),
        ``scale`` the factor (rounded to each array's dtype when applied; float16/bfloat16 arrays
        are multiplied in float32 and rounded once), ``num_clipped`` the number of arrays rescaled
        (all or none), ``norms`` the per-array norms.

    Norms accumulate in float64 (float16/bfloat16 are widened to float32 first and their norms are
    reported as float32), so float16 ``[60000, 60000, 1]`` has the finite norm 84852.8 where
    PyTorch and optax get ``inf``. An empty collection has norm 0. Each array is read once for the
    norm and once for the scale, with no concatenation.

    Example:
        >>> import numpy as np
        >>> out, st = clip_by_global_norm([np.array([3.0, 0.0]), np.array([4.0])], 1.0)
        >>> out[0], out[1], float(st.total_norm), float(st.scale), st.num_clipped
        (array([0.6, 0. ]), array([0.8]), 5.0, 0.2, 2)
        >>> h, st = clip_by_global_norm(np.array([60000, 60000, 1], np.float16), 1e5)
        >>> st.total_norm, h.dtype, st.num_clipped
        (np.float32(84852.81), dtype('float16'), 0)
    """
    fn = "clip_by_global_norm"
    inplace = check_bool(fn, "inplace", inplace)
    if not isinstance(arrays, np.ndarray) and _gpu_input(arrays):  # CuPy / torch CUDA
        from caffe2ops.kernels.cuda.toolkit import clip_by_global_norm as on_gpu

        return on_gpu(arrays, max_norm, ord, nonfinite, inplace)
    st, items = flatten(fn, arrays, inplace)
    limit = check_max_norm(fn, max_norm)
    code = ord_code(fn, ord)
    check_nonfinite(fn, nonfinite)
    ndt = norm_dtype(items)
    plan = Plan(items)
    if inplace and (done := _deduplicated(fn, st, items, lambda a: clip_by_global_norm(
            a, max_norm, ord, nonfinite, inplace=False), plan)):
        return done
    norms = per_array_norms(items, code, plan)
    srcs, fresh, norms, seen = _prepare_nonfinite(fn, st, items, norms, code, nonfinite, inplace)
    total = ndt.type(combine(norms, code))
    n = len(items)
    factor = global_factor(total, limit, nonfinite)  # "skip": a non-finite array, a NaN/inf total
    outs = apply_factors(srcs, np.full(n, factor), inplace, fresh, plan if srcs is items else None)
    stats = ClipStats(
        total_norm=total,
        scale=ndt.type(factor),
        num_clipped=n if factor != 1.0 else 0,
        nonfinite=seen,
        norms=st.rebuild_norms(norms.astype(ndt)),
    )
    return st.rebuild(outs), stats


# -------------------------------------------------------------------------------- per slice


def _normalize_axis(fn: str, axis: Any, ndim: int) -> tuple[int, ...]:
    ax = check_axis(fn, axis)
    out = []
    for a in ax:
        if not -ndim <= int(a) < ndim:
            raise OperatorValueError(f"{fn}: axis {a} is out of range for an array of rank {ndim}")
        out.append(int(a) % ndim if ndim else 0)
    if len(set(out)) != len(out):
        raise OperatorValueError(f"{fn}: repeated axis in {axis!r}")
    return tuple(out)


def slice_norms(a: np.ndarray, axes: tuple[int, ...], code: int) -> np.ndarray:
    """float64 norms of ``a`` over ``axes`` (keepdims), overflow-safe, NaN beats inf."""
    x = a.astype(_F32) if _is_half(a.dtype) else a
    ax = axes
    if code == 0:
        return np.max(np.abs(x), axis=ax, keepdims=True, initial=0.0).astype(_F64)
    if x.dtype == _F64:
        m = np.max(np.abs(x), axis=ax, keepdims=True, initial=0.0)
        safe = np.where((m > 0) & np.isfinite(m), m, 1.0)
        y = x / safe
        if code == 1:
            return np.sum(np.abs(y), axis=ax, keepdims=True) * safe
        return np.sqrt(np.sum(np.square(y), axis=ax, keepdims=True)) * safe
    if code == 1:
        return np.sum(np.abs(x), axis=ax, keepdims=True, dtype=_F64)
    return np.sqrt(np.sum(np.square(x, dtype=_F64), axis=ax, keepdims=True))


def _scale_slices(src: np.ndarray, dst: np.ndarray, factors: np.ndarray) -> None:
    if _is_half(src.dtype):
        np.multiply(src, factors.astype(_F32), out=dst, casting="unsafe")
    else:
        np.multiply(src, factors.astype(src.dtype), out=dst)


def _factors(norms: np.ndarray, limit: np.ndarray | float) -> np.ndarray:
    """``limit / norm`` where ``norm > limit``, NaN where the norm is not finite, else 1."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        f = np.where(norms > limit, limit / norms, 1.0)
    return np.where(np.isfinite(norms), f, np.nan)


def clip_by_norm(
    arrays: Any,
    max_norm: float,
    ord: float | str = 2,
    axis: int | tuple[int, ...] | None = None,
    inplace: bool = False,
    nonfinite: str = "propagate",
) -> tuple[Any, ClipStats]:
    """Clip each array (``axis=None``) or each slice over ``axis`` to norm ``max_norm`` separately.

    Formula: per unit ``u`` (a whole array, or the entries sharing the indices outside ``axis``),
    ``u * (max_norm / ‖u‖_ord)`` where ``‖u‖ > max_norm``, else ``u`` unchanged (bit-identical).
    ``axis=1`` on a matrix clips each row, like ``tf.clip_by_norm(t, c, axes=[1])``.

    Edge cases: ``max_norm = 0`` zeroes non-zero units; a zero unit stays zero (never 0/0). The
    ``nonfinite`` policies act per unit as in :func:`clip_by_global_norm` (``"propagate"`` makes a
    unit with a non-finite norm all NaN, ``"skip"`` leaves it as it is). Norms accumulate in float64
    (float16/bfloat16 through float32); per-slice norms use NumPy reductions (temporaries of the
    array's size), whole-array norms the fused kernels.

    Returns ``(arrays, ClipStats)`` with ``norms`` and ``scale`` per unit (a vector of per-array
    values for a list and ``axis=None``; per array a keepdims array of per-slice values otherwise),
    ``num_clipped`` units rescaled, ``total_norm`` the global norm of everything.

    Example:
        >>> import numpy as np
        >>> x = np.array([[3.0, 4.0], [0.3, 0.4]])
        >>> y, st = clip_by_norm(x, 1.0, axis=1)
        >>> y
        array([[0.6, 0.8],
               [0.3, 0.4]])
        >>> st.norms.ravel(), st.num_clipped
        (array([5. , 0.5]), 1)
    """
    fn = "clip_by_norm"
    inplace = check_bool(fn, "inplace", inplace)
    st, items = flatten(fn, arrays, inplace)
    limit = check_max_norm(fn, max_norm)
    code = ord_code(fn, ord)
    check_nonfinite(fn, nonfinite)
    if axis is not None:
        check_axis(fn, axis)
    ndt = norm_dtype(items)
    n = len(items)
    plan = Plan(items) if axis is None else None
    if inplace and (done := _deduplicated(fn, st, items, lambda a: clip_by_norm(
            a, max_norm, ord, axis, inplace=False, nonfinite=nonfinite), plan)):
        return done
    if plan is not None:
        norms = per_array_norms(items, code, plan)
        srcs, fresh, norms, seen = _prepare_nonfinite(
            fn, st, items, norms, code, nonfinite, inplace
        )
        factors = _factors(norms, limit)
        if nonfinite == "skip":
            factors[~np.isfinite(norms)] = 1.0
        outs = apply_factors(srcs, factors, inplace, fresh, plan if srcs is items else None)
        stats = ClipStats(
            total_norm=ndt.type(combine(norms, code)),
            scale=st.rebuild_norms(factors.astype(ndt)),
            num_clipped=int(np.count_nonzero(factors != 1.0)),
            nonfinite=seen,
            norms=st.rebuild_norms(norms.astype(ndt)),
        )
        return st.rebuild(outs), stats

    outs, all_norms, all_factors = [], [], []
    per_array = np.empty(n, _F64)
    seen = False
    clipped = 0
    for i, a in enumerate(items):
        axes = _normalize_axis(fn, axis, a.ndim)
        nrm = slice_norms(a, axes, code)
        dst = a if inplace else np.empty_like(a)
        src = a
        bad = ~np.isfinite(nrm)
        if bad.any():
            seen = True
            if nonfinite == "raise":
                raise nonfinite_error(fn, st, i, a, float(nrm[bad].ravel()[0]))
            if nonfinite == "zero":
                if dst is not a:
                    np.copyto(dst, a)
                zero_nonfinite(dst)
                src = dst
                nrm = slice_norms(dst, axes, code)
        f = _factors(nrm, limit)
        if nonfinite == "skip":
            f[bad] = 1.0
        clipped += int(np.count_nonzero(f != 1.0))
        if src is dst and not (f != 1.0).any():
            pass  # in place and nothing to do: leave the array untouched
        else:
            _scale_slices(src, dst, f)
        per_array[i] = combine(nrm.ravel(), code)
        outs.append(dst)
        all_norms.append(nrm.astype(ndt))
        all_factors.append(f.astype(ndt))
    stats = ClipStats(
        total_norm=ndt.type(combine(per_array, code)),
        scale=st.rebuild(all_factors),
        num_clipped=clipped,
        nonfinite=seen,
        norms=st.rebuild(all_norms),
    )
    return st.rebuild(outs), stats


# --------------------------------------------------------------------------------------- value


def clip_by_value(
    arrays: Any, min: float | None, max: float | None, inplace: bool = False
) -> tuple[Any, ClipStats]:
    """Clamp every element into ``[min, max]``.

    Formula: ``y = min(max(x, lo), hi)`` with the bounds rounded to each array's dtype (integer
    arrays: ``ceil(min)``, ``floor(max)``). ``min > max`` gives ``max`` everywhere (as Caffe2,
    ONNX-13, PyTorch and NumPy; TF gives ``min``). ``None`` means no bound on that side (±inf stay
    ±inf). NaN inputs stay NaN; a NaN bound is a ``ValueError``. Same semantics as
    ``torch.nn.utils.clip_grad_value_(p, v)`` with ``min=-v, max=v``.

    Returns ``(arrays, ClipStats)``: ``num_clipped`` the number of elements changed,
    ``total_norm`` the pre-clip global L2 norm (computed in the same pass), ``norms`` the per-array
    L2 norms, ``scale`` None, ``nonfinite`` whether a NaN/inf was seen.

    Example:
        >>> import numpy as np
        >>> y, st = clip_by_value(np.array([-2.0, 0.5, 3.0]), -1, 1)
        >>> y, st.num_clipped
        (array([-1. ,  0.5,  1. ]), 2)
    """
    fn = "clip_by_value"
    inplace = check_bool(fn, "inplace", inplace)
    st, items = flatten(fn, arrays, inplace, allow_int=True)
    raw = {}  # exact (int) or float bounds; floats saturate to ±inf
    for name, b in (("min", min), ("max", max)):
        if b is not None:
            raw[name] = number_arg(fn, name, b)
            if raw[name] != raw[name]:
                raise OperatorValueError(f"{fn}: {name} is NaN")
    lo_f = -np.inf if min is None else _as_float(raw["min"])
    hi_f = np.inf if max is None else _as_float(raw["max"])
    if inplace and (done := _deduplicated(fn, st, items, lambda a: clip_by_value(
            a, min, max, inplace=False))):
        return done
    n = len(items)
    outs: list[np.ndarray] = [None] * n  # type: ignore[list-item]
    sumsq = np.zeros(n, _F64)
    clipped = 0
    seen = False
    groups: dict[np.dtype, list[int]] = {_F32: [], _F64: []}
    for i, a in enumerate(items):
        dst = a if inplace else np.empty_like(a)
        outs[i] = dst
        dt = a.dtype
        contiguous = a.flags.c_contiguous or a.flags.f_contiguous
        if (dt == _F32 or dt == _F64) and contiguous and dst.strides == a.strides:
            groups[dt].append(i)
            continue
        if dt.kind in "iu":
            lo = np.iinfo(dt).min if min is None else int_bound(dt, raw["min"], upper=False)
            hi = np.iinfo(dt).max if max is None else int_bound(dt, raw["max"], upper=True)
            before = a.copy() if inplace else a
            np.clip(a, dt.type(lo), dt.type(hi), out=dst)
            clipped += int(np.count_nonzero(dst != before))
            sumsq[i] = float(np.sum(np.square(a, dtype=_F64)))
            continue
        x = a.astype(_F32) if _is_half(dt) else a
        seen = seen or not bool(np.isfinite(x).all())
        sumsq[i] = float(np.sum(np.square(x, dtype=_F64)))
        with np.errstate(over="ignore"):
            lo_v, hi_v = dt.type(lo_f), dt.type(hi_f)
        before = a.copy() if inplace else a
        np.minimum(np.maximum(a, lo_v), hi_v, out=dst)
        changed = (dst != before) & ~np.isnan(before)
        clipped += int(np.count_nonzero(changed))
    if groups[_F32] or groups[_F64]:
        norms, scaling = kernel_modules()

        for dt, idx in groups.items():
            if not idx:
                continue
            ptrs, sizes = norms.pointer_table([items[i] for i in idx])
            dptrs = ptrs if inplace else norms.pointer_table([outs[i] for i in idx])[0]
            with np.errstate(over="ignore"):
                bounds = np.array([lo_f, hi_f], dtype=dt)
            c, bad, s = scaling.multi_clip_value(ptrs, dptrs, sizes, bounds)
            clipped += int(c.sum())
            seen = seen or bool(bad.any())
            sumsq[idx] = s
    ndt = norm_dtype(items)
    norms = np.sqrt(sumsq)
    stats = ClipStats(
        total_norm=ndt.type(combine(norms, 2)),
        scale=None,
        num_clipped=clipped,
        nonfinite=seen,
        norms=st.rebuild_norms(norms.astype(ndt)),
    )
    return st.rebuild(outs), stats


# ----------------------------------------------------------------------------------------- AGC


def _unit_axes(fn: str, shape: tuple[int, ...], axis: Any) -> tuple[int, ...]:
    ndim = len(shape)
    if axis is not None:
        return _normalize_axis(fn, axis, ndim)
    if sum(1 for d in shape if d != 1) <= 1:  # scalars and vectors: the whole array
        return tuple(range(ndim))
    if ndim in (2, 3):  # linear IO, multi-head linear
        return (0,)
    if ndim == 4:  # conv HWIO
        return (0, 1, 2)
    if ndim == 5:  # conv3d DHWIO
        return (0, 1, 2, 3)
    raise OperatorValueError(
        f"{fn}: no default unit for shape {shape} (rank {ndim}); pass axis= to choose the "
        "reduction axes"
    )


def adaptive_grad_clip(
    grads: Any,
    params: Any,
    clipping: float,
    eps: float = 1e-3,
    axis: int | tuple[int, ...] | None = None,
    inplace: bool = False,
) -> tuple[Any, ClipStats]:
    """Adaptive gradient clipping, unit-wise (Brock et al. 2021, arXiv:2102.06171; as optax).

    Formula: per unit, ``m = clipping * max(‖p‖₂, eps)``; ``g * (m / max(‖g‖₂, 1e-6))`` where
    ``‖g‖₂ > m``, else ``g`` unchanged (bit-identical). Units follow optax's ``unitwise_norm``:
    scalars and vectors (at most one dimension > 1) whole; rank 2 and 3 reduce axis 0 (one unit per
    output column); rank 4 (HWIO) reduces (0, 1, 2); rank 5 reduces (0, 1, 2, 3); ``axis``
    overrides for every array; other ranks without ``axis`` raise ``ValueError``.

    ``grads`` and ``params`` have the same structure and shapes. Zero-initialised params still
    allow updates of norm ``clipping * eps``. A non-finite gradient norm propagates as in optax
    (an infinite norm turns finite entries to 0 and infinities to NaN).

    Returns ``(grads, ClipStats)``: ``norms`` and ``scale`` per array as keepdims arrays of
    per-unit values, ``num_clipped`` units rescaled, ``total_norm`` the global L2 norm of grads.

    Example:
        >>> import numpy as np
        >>> g = np.array([[3.0, 0.1], [4.0, 0.1]])
        >>> p = np.ones((2, 2))
        >>> out, st = adaptive_grad_clip(g, p, clipping=0.5)
        >>> np.round(out, 4)
        array([[0.4243, 0.1   ],
               [0.5657, 0.1   ]])
        >>> st.num_clipped
        1
    """
    fn = "adaptive_grad_clip"
    inplace = check_bool(fn, "inplace", inplace)
    st, gitems = flatten(fn, grads, inplace)
    pst, pitems = flatten(fn, params, False)
    if len(gitems) != len(pitems) or st.kind != pst.kind or st.keys != pst.keys:
        raise OperatorValueError(f"{fn}: grads and params must have the same structure")
    clip = check_max_norm(fn, clipping, "clipping")
    e = check_max_norm(fn, eps, "eps")
    if axis is not None:
        check_axis(fn, axis)
    if inplace and (done := _deduplicated(fn, st, gitems, lambda g: adaptive_grad_clip(
            g, params, clipping, eps, axis, inplace=False))):
        return done
    ndt = norm_dtype(gitems)
    outs, all_norms, all_factors = [], [], []
    per_array = np.empty(len(gitems), _F64)
    clipped = 0
    seen = False
    for i, (g, p) in enumerate(zip(gitems, pitems, strict=True)):
        if g.shape != p.shape:
            raise OperatorValueError(
                f"{fn}: {st.name(i)}: gradient shape {g.shape} != parameter shape {p.shape}"
            )
        axes = _unit_axes(fn, g.shape, axis)
        gn = slice_norms(g, axes, 2)
        pn = slice_norms(p, axes, 2)
        limit = clip * np.maximum(pn, e)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            f = np.where(gn > limit, limit / np.maximum(gn, 1e-6), 1.0)
        seen = seen or not bool(np.isfinite(gn).all())
        clipped += int(np.count_nonzero(gn > limit))
        dst = g if inplace else np.empty_like(g)
        if not (dst is g and not (f != 1.0).any()):
            _scale_slices(g, dst, f)
        per_array[i] = combine(gn.ravel(), 2)
        outs.append(dst)
        all_norms.append(gn.astype(ndt))
        all_factors.append(f.astype(ndt))
    stats = ClipStats(
        total_norm=ndt.type(combine(per_array, 2)),
        scale=st.rebuild(all_factors),
        num_clipped=clipped,
        nonfinite=seen,
        norms=st.rebuild(all_norms),
    )
    return st.rebuild(outs), stats


# ---------------------------------------------------------------------------------- per sample


def per_sample_clip(
    grads: Any, max_norm: float, nonfinite: str = "propagate"
) -> tuple[Any, ClipStats]:
    """Clip each example's gradient to global L2 norm ``max_norm``, then sum over the batch.

    The DP-SGD step of Abadi et al. 2016 (arXiv:1607.00133), as optax's
    ``per_example_global_norm_clip``. Axis 0 of every array is the example (all the same size B).
    Formula: ``n_b = sqrt(Σ_arrays Σ g[b]²)``; ``f_b = min(1, max_norm / n_b)`` (``f_b = 1`` when
    ``n_b = 0``, never 0/0); result per array ``Σ_b f_b · g[b]`` (shape without axis 0, same dtype;
    float16/bfloat16 summed in float32).

    ``nonfinite``: ``"propagate"`` (an example with a non-finite norm gets factor NaN, so the sums
    are NaN), ``"raise"`` (names the example and array), ``"skip"`` (such examples are left out of
    the sum, factor 0), ``"zero"`` (their non-finite entries count as 0). Integer inputs (as in
    optax's examples) are summed as float64.

    Returns ``(sums, ClipStats)``: ``total_norm`` the per-example norms ``[B]``, ``scale`` the
    factors ``[B]``, ``num_clipped`` examples with ``n_b > max_norm``.

    Example (optax's doc example):
        >>> import numpy as np
        >>> g = [np.array([[0, 0, 0], [0, 3, 4], [4, 0, 3], [3, 4, 0]], np.float32)]
        >>> s, st = per_sample_clip(g, 1.25)
        >>> s[0], st.num_clipped, st.total_norm
        (array([1.75, 1.75, 1.75], dtype=float32), 3, array([0., 5., 5., 5.]))
    """
    fn = "per_sample_clip"
    st, items = flatten(fn, grads, False, allow_int=True)
    items = [a.astype(_F64) if a.dtype.kind in "iu" else a for a in items]
    limit = check_max_norm(fn, max_norm)
    check_nonfinite(fn, nonfinite)
    if not items:
        raise OperatorValueError(f"{fn}: needs at least one array")
    if any(a.ndim == 0 for a in items):
        raise OperatorValueError(f"{fn}: every array needs a batch axis 0")
    b = items[0].shape[0]
    for i, a in enumerate(items):
        if a.shape[0] != b:
            raise OperatorValueError(
                f"{fn}: {st.name(i)} has {a.shape[0]} examples on axis 0, expected {b}"
            )
    mats = []
    ssq = np.zeros(b, _F64)
    for a in items:
        m = a.reshape(b, int(np.prod(a.shape[1:], dtype=np.int64)))  # -1 fails when b == 0
        if _is_half(m.dtype):
            m = m.astype(_F32)
        mats.append(m)
        ssq += _row_sumsq(m)
    norms = np.sqrt(ssq)
    bad = ~np.isfinite(norms)
    seen = bool(bad.any())
    if seen:
        if nonfinite == "raise":
            ex = int(np.flatnonzero(bad)[0])
            for i, m in enumerate(mats):
                if not np.isfinite(m[ex]).all():
                    raise OperatorValueError(
                        f"{fn}: example {ex} of {st.name(i)} holds a non-finite value; "
                        "nonfinite='raise'"
                    )
        if nonfinite == "zero":
            rows = np.flatnonzero(bad)
            ssq[rows] = 0.0
            for k, m in enumerate(mats):
                sub = m[rows]  # a copy (fancy indexing)
                if not np.isfinite(sub).all():
                    zero_nonfinite(sub)
                    m = m.copy()  # never write into the caller's gradients
                    m[rows] = sub
                    mats[k] = m
                ssq[rows] += _row_sumsq(sub)
            norms = np.sqrt(ssq)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        f = np.where(norms > limit, limit / norms, 1.0)
    keep = None
    if seen and nonfinite == "propagate":
        f[~np.isfinite(norms)] = np.nan
    elif seen and nonfinite == "skip":
        keep = np.isfinite(norms)
        f[~keep] = 0.0
    outs = []
    for a, m in zip(items, mats, strict=True):
        w = f.astype(m.dtype)
        s = w @ m if keep is None else w[keep] @ m[keep]
        outs.append(s.reshape(a.shape[1:]).astype(a.dtype, copy=False))
    ndt = norm_dtype(items)
    stats = ClipStats(
        total_norm=norms.astype(ndt),
        scale=f.astype(ndt),
        num_clipped=int(np.count_nonzero(norms > limit)),
        nonfinite=seen,
    )
    return st.rebuild(outs), stats


def _as_float(v: int | float) -> float:
    """``float(v)``; an int beyond the float64 range becomes ±inf."""
    try:
        return float(v)
    except OverflowError:
        return np.inf if v > 0 else -np.inf


def _row_sumsq(m: np.ndarray) -> np.ndarray:
    """float64 ``Σ_j m[b, j]²`` per row."""
    if m.dtype == _F64:
        return np.einsum("ij,ij->i", m, m)
    return np.einsum("ij,ij->i", m, m, dtype=_F64, casting="safe")
