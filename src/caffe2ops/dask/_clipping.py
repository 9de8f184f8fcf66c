"""The clipping toolkit on Dask arrays: one lazy graph per call, stats as lazy values.

``clip_by_global_norm`` over many arrays is one graph: per-chunk partials
(:func:`caffe2ops.clipping.partial_norms`) -> a tree reduction per array -> one small summary task
(per-array norms, the total) -> one scale pass (:func:`caffe2ops.clipping.apply_clip`) per chunk.
:func:`compute` evaluates the arrays and the stats together and returns what the in-process
toolkit returns.
"""

from __future__ import annotations

from typing import Any

import dask
import dask.array as da
import numpy as np

from caffe2ops import clipping
from caffe2ops.clipping._common import (
    ClipStats,
    _is_half,
    check_max_norm,
    check_nonfinite,
    flatten,
    norm_dtype,
    ord_code,
)
from caffe2ops.clipping._toolkit import _normalize_axis
from caffe2ops.dask import _blocks
from caffe2ops.dask._ops import _index, as_dask

__all__ = ["clip_by_global_norm", "clip_by_norm", "clip_by_value", "compute"]

_F64 = np.dtype(np.float64)


def _flatten(fn: str, arrays: Any, allow_int: bool = False):
    """``(structure, dask arrays, names)``; dtypes checked by the toolkit on empty metas."""
    if isinstance(arrays, dict):
        xs = [as_dask(a) for a in arrays.values()]
        wrapped: Any = dict(zip(arrays.keys(), xs, strict=True))
    elif isinstance(arrays, (list, tuple)):
        xs = [as_dask(a) for a in arrays]
        wrapped = type(arrays)(xs)
    else:
        xs = [as_dask(arrays)]
        wrapped = xs[0]
    metas = {id(a): np.empty((0,) * a.ndim, a.dtype) for a in xs}
    st, _ = flatten(fn, _replace(wrapped, metas), False, allow_int=allow_int)
    return st, xs, [st.name(i) for i in range(len(xs))]


def _replace(structure: Any, metas: dict) -> Any:
    if isinstance(structure, dict):
        return {k: metas[id(v)] for k, v in structure.items()}
    if isinstance(structure, (list, tuple)):
        return type(structure)(metas[id(v)] for v in structure)
    return metas[id(structure)]


def _partials(a: da.Array, ord: Any, nonfinite: str) -> da.Array:
    """The reduced :func:`partial_norms` vector of one array: per chunk, then a tree."""
    size = clipping.PARTIAL_SIZE
    parts = a.map_blocks(
        _blocks.partial, ord, nonfinite, new_axis=a.ndim,
        chunks=tuple((1,) * len(c) for c in a.chunks) + ((size,),),
        dtype=_F64, meta=np.empty((0,) * (a.ndim + 1), _F64),
    )
    axes = tuple(range(a.ndim))
    if ord_code("partial_norms", ord) == 0:
        return parts.max(axis=axes)
    return parts.sum(axis=axes)


def _summary(fn, parts: list[da.Array], length: int, *args) -> da.Array:
    stacked = da.stack(parts).rechunk(-1)
    return stacked.map_blocks(fn, *args, drop_axis=1, chunks=((length,),), dtype=_F64,
                              meta=np.empty(0, _F64))


def _per_block(fn, a: da.Array, summary: da.Array, **kwargs) -> da.Array:
    ind = _index(a.ndim)
    return da.blockwise(fn, ind, a, ind, summary, ("summary",), concatenate=True, dtype=a.dtype,
                        meta=np.empty((0,) * a.ndim, a.dtype), **kwargs)


def clip_by_global_norm(
    arrays: Any, max_norm: float, ord: float | str = 2, nonfinite: str = "propagate"
) -> tuple[Any, ClipStats]:
    """:func:`caffe2ops.clipping.clip_by_global_norm` on Dask arrays, as one lazy graph.

    Returns ``(arrays, stats)`` in the input's structure; the arrays and every field of
    ``stats`` are lazy Dask values: pass both to :func:`compute` (one evaluation). Policies,
    dtypes (float16/bfloat16 norms in float32) and the exact scaling are the in-process ones; the
    per-array norms add their chunks' float64 partials in a tree instead of one pass, so the norm
    can differ from the in-process one in the last float64 bits (the scale pass is then the same
    bits as in process for that norm). ``nonfinite="raise"`` raises at compute time, naming the
    array, before any output block is written.

    >>> import numpy as np, dask.array as da, caffe2ops.dask as c2d
    >>> g = [da.from_array(np.array([3.0, 0.0]), chunks=1), da.from_array(np.array([4.0]))]
    >>> out, stats = c2d.clip_by_global_norm(g, 1.0)
    >>> out, stats = c2d.compute(out, stats)
    >>> out[0], out[1], stats.total_norm, stats.num_clipped
    (array([0.6, 0. ]), array([0.8]), np.float64(5.0), 2)
    """
    fn = "clip_by_global_norm"
    st, xs, names = _flatten(fn, arrays)
    limit = check_max_norm(fn, max_norm)
    ord_code(fn, ord)
    check_nonfinite(fn, nonfinite)
    metas = [np.empty(0, a.dtype) for a in xs]
    ndt = norm_dtype(metas)
    all_half = bool(xs) and all(_is_half(a.dtype) for a in xs)
    k = len(xs)
    if k == 0:
        zero = ndt.type(0.0)
        return st.rebuild([]), ClipStats(zero, ndt.type(1.0), 0, False, st.rebuild_norms(
            np.zeros(0, ndt)))
    mode = "zero" if nonfinite == "zero" else "propagate"
    parts = [_partials(a, ord, mode) for a in xs]
    summary = _summary(_blocks.global_summary, parts, k + 2, ord, names, nonfinite, all_half)
    outs = [_per_block(_blocks.scale_block, a, summary, max_norm=limit, nonfinite=nonfinite,
                       all_half=all_half) for a in xs]
    factor = summary[:1].map_blocks(
        _blocks.global_factor, limit, nonfinite, all_half, dtype=_F64)[0]
    stats = ClipStats(
        total_norm=summary[0].astype(ndt),
        scale=factor.astype(ndt),
        num_clipped=(factor != 1.0).astype(np.int64) * k,
        nonfinite=summary[1] > 0,
        norms=st.rebuild_norms(summary[2:].astype(ndt)),
    )
    return st.rebuild(outs), stats


def clip_by_norm(
    arrays: Any,
    max_norm: float,
    ord: float | str = 2,
    axis: int | tuple[int, ...] | None = None,
    nonfinite: str = "propagate",
) -> tuple[Any, ClipStats]:
    """:func:`caffe2ops.clipping.clip_by_norm` on Dask arrays (lazy; see :func:`compute`).

    ``axis=None``: each array by its own norm (per-chunk partials, a tree, one scale pass).
    With ``axis`` the reduced axes are rechunked to one block, so each block holds whole slices
    and runs the in-process function (same bits); ``stats.norms`` / ``stats.scale`` are then the
    per-slice keepdims arrays, lazily, from the same tasks.
    """
    fn = "clip_by_norm"
    st, xs, names = _flatten(fn, arrays)
    limit = check_max_norm(fn, max_norm)
    code = ord_code(fn, ord)
    check_nonfinite(fn, nonfinite)
    ndt = norm_dtype([np.empty(0, a.dtype) for a in xs])
    k = len(xs)
    if axis is None:
        mode = "zero" if nonfinite == "zero" else "propagate"
        parts = [_partials(a, ord, mode) for a in xs]
        summary = _summary(_blocks.per_array_summary, parts, 2 + k, ord, names, nonfinite)
        outs = [_per_block(_blocks.scale_own, a, summary, i=i, max_norm=limit,
                           nonfinite=nonfinite) for i, a in enumerate(xs)]
        factors = summary.map_blocks(_blocks.own_factors, k, limit, nonfinite, chunks=((k,),),
                                     dtype=_F64)
        stats = ClipStats(
            total_norm=summary[0].astype(ndt),
            scale=st.rebuild_norms(factors.astype(ndt)),
            num_clipped=(factors != 1.0).sum(),
            nonfinite=summary[1] > 0,
            norms=st.rebuild_norms(summary[2:].astype(ndt)),
        )
        return st.rebuild(outs), stats
    outs, norms, scales = [], [], []
    for a in xs:
        axes = _normalize_axis(fn, axis, a.ndim)
        a = a.rechunk({ax: -1 for ax in axes})
        ind = _index(a.ndim)
        triples = da.blockwise(_blocks.clip_by_norm_slices, ind, a, ind, max_norm=limit,
                               ord=ord, axis=axes, nonfinite=nonfinite, dtype=object,
                               meta=np.empty((0,) * a.ndim, object))
        small = tuple((1,) * len(c) if d in axes else c for d, c in enumerate(a.chunks))
        outs.append(triples.map_blocks(_blocks.item, 0, dtype=a.dtype,
                                       meta=np.empty((0,) * a.ndim, a.dtype)))
        norms.append(triples.map_blocks(_blocks.item, 1, chunks=small, dtype=ndt))
        scales.append(triples.map_blocks(_blocks.item, 2, chunks=small, dtype=ndt))
    per_array = [n.max() if code == 0 else (n.sum() if code == 1 else da.sqrt((n * n).sum()))
                 for n in norms]
    total = (da.max(da.stack(per_array)) if code == 0 else
             (da.sum(da.stack(per_array)) if code == 1 else
              da.sqrt(da.sum(da.stack(per_array) ** 2)))) if k else da.zeros((), _F64)
    stats = ClipStats(
        total_norm=total.astype(ndt),
        scale=st.rebuild(scales),
        num_clipped=sum((s != 1.0).sum() for s in scales),
        nonfinite=sum((~da.isfinite(n)).sum() for n in norms) > 0,
        norms=st.rebuild(norms),
    )
    return st.rebuild(outs), stats


def clip_by_value(arrays: Any, min: float | None, max: float | None) -> tuple[Any, ClipStats]:
    """:func:`caffe2ops.clipping.clip_by_value` on Dask arrays, chunk by chunk (same bits); the
    stats (elements changed, pre-clip L2 norms, non-finite flag) come from the same tasks."""
    fn = "clip_by_value"
    st, xs, names = _flatten(fn, arrays, allow_int=True)
    for a in xs:
        clipping.clip_by_value(np.empty(0, a.dtype), min, max)  # bound checks
    ndt = norm_dtype([np.empty(0, a.dtype) for a in xs])
    outs, parts = [], []
    for a in xs:
        ind = _index(a.ndim)
        pairs = da.blockwise(_blocks.clip_by_value, ind, a, ind, lo=min, hi=max, dtype=object,
                             meta=np.empty((0,) * a.ndim, object))
        outs.append(pairs.map_blocks(_blocks.item, 0, dtype=a.dtype,
                                     meta=np.empty((0,) * a.ndim, a.dtype)))
        small = tuple((1,) * len(c) for c in a.chunks) + ((3,),)
        block_stats = pairs.map_blocks(_blocks.item, 1, new_axis=a.ndim, chunks=small,
                                       dtype=_F64, meta=np.empty((0,) * (a.ndim + 1), _F64))
        parts.append(block_stats.sum(axis=tuple(range(a.ndim))))
    if not xs:
        return st.rebuild([]), ClipStats(ndt.type(0), None, 0, False, st.rebuild_norms(
            np.zeros(0, ndt)))
    summary = _summary(_blocks.value_summary, parts, 3 + len(xs), names)
    stats = ClipStats(
        total_norm=summary[0].astype(ndt),
        scale=None,
        num_clipped=summary[1].astype(np.int64),
        nonfinite=summary[2] > 0,
        norms=st.rebuild_norms(summary[3:].astype(ndt)),
    )
    return st.rebuild(outs), stats


def compute(arrays: Any, stats: ClipStats, **kwargs) -> tuple[Any, ClipStats]:
    """Evaluate lazy ``(arrays, stats)`` in one ``dask.compute`` (``kwargs`` go to it); returns
    NumPy arrays and a ``ClipStats`` of NumPy scalars / arrays, ints and bools."""
    fields = (stats.total_norm, stats.scale, stats.num_clipped, stats.nonfinite, stats.norms)
    out, (total, scale, num, bad, norms) = dask.compute(arrays, fields, **kwargs)
    return out, ClipStats(
        total_norm=_scalar(total),
        scale=_scalar(scale),
        num_clipped=int(np.asarray(num)),
        nonfinite=bool(np.asarray(bad)),
        norms=_scalar(norms),
    )


def _scalar(v: Any) -> Any:
    if isinstance(v, np.ndarray) and v.ndim == 0:
        return v.dtype.type(v)
    if isinstance(v, dict):
        return {k: _scalar(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return type(v)(_scalar(x) for x in v)
    return v
