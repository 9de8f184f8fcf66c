"""The functional operators and their gradients on Dask arrays (lazy, chunk by chunk)."""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np

import caffe2ops as c2
from caffe2ops.dask import _blocks
from caffe2ops.errors import OperatorValueError
from caffe2ops.ops.lp_norm import check_p

__all__ = [
    "as_dask",
    "clip",
    "clip_gradient",
    "clip_tensor_by_scaling",
    "cos",
    "cos_gradient",
    "cosine_embedding_criterion",
    "cosine_embedding_criterion_gradient",
    "cosine_similarity",
    "cosine_similarity_gradient",
    "lp_norm",
    "lp_norm_gradient",
    "thresholded_relu",
    "thresholded_relu_gradient",
]


def as_dask(x: Any, like: da.Array | None = None) -> da.Array:
    """``x`` as a Dask array (NumPy inputs chunked like ``like``, or in one chunk)."""
    if isinstance(x, da.Array):
        return x
    x = np.asarray(x)
    return da.from_array(x, chunks=like.chunks if like is not None and like.shape == x.shape
                         else x.shape or ())


def _meta(x: da.Array) -> np.ndarray:
    return np.empty((0,) * x.ndim, x.dtype)


def _elementwise(fn, op: str, names: tuple[str, ...], arrays: tuple, **kwargs) -> da.Array:
    """``fn(*blocks, **kwargs)`` block by block over same-shaped arrays.

    ``fn`` is first called on empty arrays of the inputs' dtypes, so its own checks (dtypes,
    arguments) raise here, before any graph exists; its result is the output's meta.
    """
    ref = next((a for a in arrays if isinstance(a, da.Array)), None)
    xs = [as_dask(a, ref) for a in arrays]
    for name, a in zip(names[1:], xs[1:], strict=True):
        if a.shape != xs[0].shape:
            raise OperatorValueError(
                f"{op}: input {name} has shape {a.shape}; expected {names[0]}'s {xs[0].shape}"
            )
    meta = fn(*[_meta(a) for a in xs], **kwargs)
    return da.map_blocks(fn, *xs, dtype=meta.dtype, meta=meta, **kwargs)


def clip(x: Any, min: float | None = None, max: float | None = None) -> da.Array:
    """:func:`caffe2ops.clip` chunk by chunk (same bits as in process).

    >>> import dask.array as da, caffe2ops.dask as c2d
    >>> c2d.clip(da.arange(-3.0, 3.0, chunks=2), -1, 1).compute()
    array([-1., -1., -1.,  0.,  1.,  1.])
    """
    return _elementwise(c2.clip, "Clip", ("X",), (x,), min=min, max=max)


def clip_gradient(y: Any, dy: Any, min: float | None = None, max: float | None = None):
    """:func:`caffe2ops.clip_gradient` chunk by chunk."""
    return _elementwise(c2.clip_gradient, "ClipGradient", ("Y", "dY"), (y, dy), min=min, max=max)


def thresholded_relu(x: Any, alpha: float = 1.0) -> da.Array:
    """:func:`caffe2ops.thresholded_relu` chunk by chunk."""
    return _elementwise(c2.thresholded_relu, "ThresholdedRelu", ("X",), (x,), alpha=alpha)


def thresholded_relu_gradient(y: Any, dy: Any, *, x: Any = None, alpha: float = 1.0):
    """:func:`caffe2ops.thresholded_relu_gradient` chunk by chunk (``x`` for negative alpha)."""
    if x is None:
        return _elementwise(
            c2.thresholded_relu_gradient, "ThresholdedReluGradient", ("Y", "dY"), (y, dy)
        )
    return _elementwise(
        _blocks.thresholded_relu_gradient_from_x, "ThresholdedReluGradient", ("Y", "dY", "X"),
        (y, dy, x), alpha=alpha,
    )


def cos(x: Any) -> da.Array:
    """:func:`caffe2ops.cos` chunk by chunk."""
    return _elementwise(c2.cos, "Cos", ("X",), (x,))


def cos_gradient(x: Any, dy: Any) -> da.Array:
    """:func:`caffe2ops.cos_gradient` chunk by chunk."""
    return _elementwise(c2.cos_gradient, "CosGradient", ("X", "dY"), (x, dy))


def cosine_embedding_criterion(s: Any, label: Any, margin: float = 0.0) -> da.Array:
    """:func:`caffe2ops.cosine_embedding_criterion` chunk by chunk."""
    return _elementwise(c2.cosine_embedding_criterion, "CosineEmbeddingCriterion",
                        ("S", "label"), (s, label), margin=margin)


def cosine_embedding_criterion_gradient(s: Any, label: Any, dloss: Any, margin: float = 0.0):
    """:func:`caffe2ops.cosine_embedding_criterion_gradient` chunk by chunk."""
    return _elementwise(c2.cosine_embedding_criterion_gradient,
                        "CosineEmbeddingCriterionGradient", ("S", "label", "dLoss"),
                        (s, label, dloss), margin=margin)


def _index(ndim: int) -> tuple[str, ...]:
    """Blockwise index names for an ``ndim``-dimensional array."""
    return tuple(f"d{k}" for k in range(ndim))


def _scalar_input(v: Any) -> da.Array:
    """A 1-element input (NumPy, number or Dask) as a one-chunk Dask vector."""
    if isinstance(v, da.Array):
        return v.reshape(-1).rechunk(-1)
    return da.from_array(np.asarray(v).reshape(-1))


def _with_scalars(fn, x: da.Array, scalars: list[da.Array], meta: np.ndarray, **kwargs):
    """``fn(block, *scalars, **kwargs)`` per block; each scalar vector reaches every block."""
    ind = _index(x.ndim)
    pairs: list = [x, ind]
    for k, s in enumerate(scalars):
        pairs += [s, (f"scalar{k}",)]
    return da.blockwise(fn, ind, *pairs, concatenate=True, dtype=meta.dtype, meta=meta,
                        **kwargs)


def clip_tensor_by_scaling(x: Any, val: Any, threshold: float, additional_threshold: Any = None):
    """:func:`caffe2ops.clip_tensor_by_scaling` chunk by chunk; ``val`` (and
    ``additional_threshold``) may be lazy 1-element Dask arrays, e.g. a :func:`lp_norm`."""
    x = as_dask(x)
    add = 1.0 if additional_threshold is None else additional_threshold
    for what, v in (("val", val), ("additional_threshold", add)):
        if not isinstance(v, da.Array):
            c2.clip_tensor_by_scaling(_meta(x), v, threshold, None)  # checks val / threshold
        elif v.size != 1:
            raise OperatorValueError(f"ClipTensorByScaling: input {what} must have 1 element")
    meta = c2.clip_tensor_by_scaling(_meta(x), 1.0, threshold)
    return _with_scalars(_blocks.clip_tensor_by_scaling, x,
                         [_scalar_input(val), _scalar_input(add)], meta, threshold=threshold)


def _rows_whole(x: da.Array) -> da.Array:
    """Row chunks only: every dimension after the first in one chunk."""
    if x.ndim <= 1 or all(len(c) == 1 for c in x.chunks[1:]):
        return x
    return x.rechunk({k: -1 for k in range(1, x.ndim)})


def cosine_similarity(x: Any, y: Any) -> da.Array:
    """:func:`caffe2ops.cosine_similarity` on row chunks (the other dimensions rechunked to one
    block), shape ``[N]`` chunked like the rows.

    >>> import numpy as np, dask.array as da, caffe2ops.dask as c2d
    >>> x = da.from_array(np.array([[1.0, 0.0], [3.0, 4.0]]), chunks=(1, 1))
    >>> c2d.cosine_similarity(x, x).compute()
    array([1., 1.])
    """
    x = _rows_whole(as_dask(x))
    y = _rows_whole(as_dask(y, x))
    if y.shape != x.shape:
        raise OperatorValueError(f"CosineSimilarity: input Y has shape {y.shape}; expected "
                                 f"X's {x.shape}")
    meta = c2.cosine_similarity(_meta(x), _meta(y))
    if x.ndim == 0:
        return da.map_blocks(c2.cosine_similarity, x, y, chunks=((1,),), new_axis=0,
                             dtype=meta.dtype, meta=meta)
    return da.map_blocks(c2.cosine_similarity, x, y, drop_axis=list(range(1, x.ndim)),
                         chunks=(x.chunks[0],), dtype=meta.dtype, meta=meta)


def cosine_similarity_gradient(x: Any, y: Any, dz: Any) -> tuple[da.Array, da.Array]:
    """:func:`caffe2ops.cosine_similarity_gradient` on row chunks: ``(dx, dy)``, both from one
    task per chunk."""
    x = _rows_whole(as_dask(x))
    y = _rows_whole(as_dask(y, x))
    if y.shape != x.shape or x.ndim == 0:
        raise OperatorValueError(f"CosineSimilarityGradient: inputs X {x.shape} and Y {y.shape} "
                                 "must have one shape with at least one dimension")
    dz = as_dask(dz)
    if dz.shape != (x.shape[0],):
        raise OperatorValueError(f"CosineSimilarityGradient: input dZ must have shape "
                                 f"({x.shape[0]},); got {dz.shape}")
    dz = dz.rechunk((x.chunks[0],))
    dmeta, _ = c2.cosine_similarity_gradient(_meta(x), _meta(y), np.empty(0, dz.dtype))
    ind = _index(x.ndim)
    pairs = da.blockwise(_blocks.cosine_similarity_gradient, ind, x, ind, y, ind, dz, ind[:1],
                         dtype=object, meta=np.empty((0,) * x.ndim, object))
    return tuple(
        pairs.map_blocks(_blocks.item, i, dtype=dmeta.dtype, meta=dmeta) for i in (0, 1)
    )


def lp_norm(x: Any, p: int = 2, average: bool = False) -> da.Array:
    """:func:`caffe2ops.lp_norm` as a Dask reduction: per-chunk float64 sums (LpNorm's own),
    summed as a tree, divided by numel if ``average``, rounded once to the dtype; shape ``[1]``.

    >>> import dask.array as da, caffe2ops.dask as c2d
    >>> c2d.lp_norm(da.arange(4.0, chunks=2)).compute()
    array([14.])
    """
    x = as_dask(x)
    p = check_p("LpNorm", p)
    meta = c2.lp_norm(_meta(x), p, False)
    if average and x.size == 0:
        c2.lp_norm(_meta(x), p, True)  # raises: the average of nothing
    parts = x.map_blocks(_blocks.lp_partial, p, chunks=tuple((1,) * len(c) for c in x.chunks),
                         dtype=np.float64, meta=np.empty((0,) * x.ndim, np.float64))
    total = parts.sum(dtype=np.float64)
    return total.map_blocks(_blocks.lp_finish, x.size, bool(average), x.dtype, chunks=((1,),),
                            new_axis=0, dtype=meta.dtype, meta=meta)


def lp_norm_gradient(x: Any, dn: Any, p: int = 2, average: bool = False) -> da.Array:
    """:func:`caffe2ops.lp_norm_gradient` chunk by chunk; ``dn`` (1 element) may be lazy.
    ``s = dN/size`` is computed once with the whole array's size, as in process."""
    x = as_dask(x)
    p = check_p("LpNormGradient", p)
    dn_meta = np.zeros(1, x.dtype)
    if not isinstance(dn, da.Array):
        dn_meta = np.asarray(dn)
    elif dn.size != 1 or dn.dtype != x.dtype:
        raise OperatorValueError(f"LpNormGradient: input dN must have 1 element of X's dtype "
                                 f"{x.dtype}; got {dn.size} of {dn.dtype}")
    meta = c2.lp_norm_gradient(_meta(x), dn_meta, p, average)
    ct = np.float32 if x.dtype == np.float16 else x.dtype
    scale = _scalar_input(dn).map_blocks(_blocks.lp_scale, x.size, bool(average), ct,
                                         chunks=((1,),), dtype=ct)
    return _with_scalars(_blocks.lp_norm_gradient, x, [scale], meta, p=p)
