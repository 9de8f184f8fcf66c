"""What runs inside the Dask workers: small functions over NumPy blocks.

Every task of a ``caffe2ops.dask`` graph calls one of these (or a public ``caffe2ops`` function)
by module reference, so a worker imports caffe2ops and loads its own fast kernels; nothing
compiled is ever pickled. Each function calls the public functional API or the toolkit, so a
block gets exactly the bits the in-process call would give it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import caffe2ops as c2
from caffe2ops import clipping
from caffe2ops.clipping._common import combine, ord_code
from caffe2ops.ops.lp_norm import lp_norm_gradient_reference, lp_norm_reference
from caffe2ops.ops.sparse_normalize import row_scales

_F64 = np.dtype(np.float64)


# ------------------------------------------------------------------------------- element-wise


def thresholded_relu_gradient_from_x(y, dy, x, alpha):
    return c2.thresholded_relu_gradient(y, dy, x=x, alpha=alpha)


def clip_tensor_by_scaling(x, val, additional, threshold):
    return c2.clip_tensor_by_scaling(x, val, threshold, additional)


def cosine_similarity_gradient(x, y, dz):
    """``(dx, dy)``: a tuple-valued block, split by :func:`item`."""
    return c2.cosine_similarity_gradient(x, y, dz)


def item(pair, i):
    return pair[i]


# ------------------------------------------------------------------------------------- LpNorm


def lp_partial(x, p):
    """``Σx²`` or ``Σ|x|`` of one block in float64 (LpNorm's own sum, not yet rounded)."""
    out = np.zeros(1, _F64)
    lp_norm_reference(x, p, False, out)
    return out.reshape((1,) * x.ndim)


def lp_finish(total, numel, average, dtype):
    value = np.asarray(total, _F64).reshape(1)
    if average:
        value = value / numel
    return value.astype(dtype)


def lp_norm_gradient(x, scale, p):
    """LpNorm's gradient with ``s = dN/size`` already computed in the compute dtype."""
    out = np.empty_like(x)
    return lp_norm_gradient_reference(x, np.asarray(scale).reshape(-1)[0], p, False, out)


def lp_scale(dn, numel, average, compute_dtype):
    ct = np.dtype(compute_dtype)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        s = ct.type(ct.type(np.asarray(dn).reshape(-1)[0]) / ct.type(numel if average else 1))
    return np.array([s], ct)


# ------------------------------------------------------------------------------- sparse tables


def sparse_normalize_rows(block, rows, norm, use_max_norm, inplace=False):
    """``block`` (``inplace``, when writable) or a private copy of it with ``rows`` (local,
    distinct) normalized by the operator."""
    out = block if inplace and block.flags.writeable else block.copy()
    return c2.sparse_normalize(out, rows, norm, use_max_norm)


def ensure_clipped_rows(block, rows, lo, hi, inplace=False):
    out = block if inplace and block.flags.writeable else block.copy()
    return c2.ensure_clipped(out, lo, hi, indices=rows)


def row_sumsq(block, rows):
    """float64 ``Σ row²`` of ``block[rows]`` (a column shard's part of each row's squared norm)."""
    sub = block[rows].reshape(len(rows), -1)
    if sub.dtype == np.float16:
        sub = sub.astype(np.float32)
    return np.einsum("ij,ij->i", sub, sub, dtype=_F64)


def scale_rows(block, rows, *sumsq_parts, norm, use_max_norm, inplace=False):
    """A copy of ``block`` (or ``block`` itself, ``inplace``) with ``rows`` scaled by
    SparseNormalize's factor for the summed norms."""
    sumsq = np.sum(np.stack(sumsq_parts), axis=0) if len(sumsq_parts) > 1 else sumsq_parts[0]
    out = block if inplace and block.flags.writeable else block.copy()
    selected, scale = row_scales(sumsq, out.dtype, norm, use_max_norm)
    picked = rows[selected]
    shape = (len(picked),) + (1,) * (out.ndim - 1)
    sub = out[picked]
    ct = scale.dtype
    out[picked] = (sub.astype(ct, copy=False) * scale.reshape(shape)).astype(out.dtype)
    return out


# ------------------------------------------------------------------------------------ toolkit


def partial(x, ord, nonfinite):
    """:func:`caffe2ops.clipping.partial_norms` of one block, shaped ``(1,)*ndim + (4,)``."""
    p = clipping.partial_norms([x], ord, nonfinite=nonfinite)
    return p.reshape((1,) * x.ndim + (clipping.PARTIAL_SIZE,))


def _norms(parts: np.ndarray, code: int) -> np.ndarray:
    """float64 per-array norms from reduced partials (not yet rounded to float32, as in
    process: only the total is rounded)."""
    return np.sqrt(parts[:, 0]) if code == 2 else parts[:, 0].copy()


def _checked_norms(fn: str, parts, code: int, names, nonfinite: str):
    """``(norms, bad)`` from the per-array partials; with ``nonfinite='raise'`` the first array
    holding NaN or an infinity raises, named."""
    parts = np.asarray(parts, _F64).reshape(len(names), clipping.PARTIAL_SIZE)
    norms = _norms(parts, code)
    bad = parts[:, 1] > 0
    if nonfinite == "raise" and bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise c2.errors.OperatorValueError(
            f"{fn}: {names[i]} holds NaN or an infinity (its norm is {norms[i]}); "
            "nonfinite='raise'. Use nonfinite='skip', 'zero' or 'propagate'.")
    return norms, bad


def global_summary(parts, ord, names, nonfinite, all_half):
    """``[total, factor, nonfinite, norm_1, ..., norm_k]`` from per-array reduced partials."""
    code = ord_code("clip_by_global_norm", ord)
    norms, bad = _checked_norms("clip_by_global_norm", parts, code, names, nonfinite)
    ndt = np.dtype(np.float32) if all_half else _F64
    total = ndt.type(combine(norms, code))
    return np.concatenate(([float(total), bad.any()], norms))


def scale_block(x, summary, max_norm, nonfinite, all_half):
    ndt = np.dtype(np.float32) if all_half else _F64
    total = ndt.type(summary[0])
    mode = "propagate" if nonfinite == "raise" else nonfinite
    return clipping.apply_clip(x, total, max_norm, nonfinite=mode)[0]


def per_array_summary(parts, ord, names, nonfinite):
    """``[total, nonfinite, norm_1.., factor_1..]`` for :func:`clip_by_norm` with ``axis=None``."""
    code = ord_code("clip_by_norm", ord)
    norms, bad = _checked_norms("clip_by_norm", parts, code, names, nonfinite)
    return np.concatenate(([combine(norms, code), bad.any()], norms))


def scale_own(x, summary, i, max_norm, nonfinite):
    """Scale array ``i`` by its own norm (``summary[2 + i]``) as :func:`clip_by_norm` does."""
    mode = "propagate" if nonfinite == "raise" else nonfinite
    return clipping.apply_clip(x, np.float64(summary[2 + i]), max_norm, nonfinite=mode)[0]


def clip_by_norm_slices(x, max_norm, ord, axis, nonfinite):
    """``(clipped, norms, factors)`` of one block holding whole slices along ``axis``."""
    out, st = clipping.clip_by_norm(x, max_norm, ord=ord, axis=axis, nonfinite=nonfinite)
    return out, np.asarray(st.norms), np.asarray(st.scale)


def clip_by_value(x, lo, hi):
    """``(clipped, [num_clipped, Σx², nonfinite])`` of one block."""
    out, st = clipping.clip_by_value(x, lo, hi)
    norm = float(st.total_norm)
    stats = np.array([st.num_clipped, norm * norm, st.nonfinite], _F64)
    return out, stats.reshape((1,) * x.ndim + (3,))


def value_summary(parts, names):
    """``[total, num_clipped, nonfinite, norm_1, ...]`` for :func:`clip_by_value`."""
    parts = np.asarray(parts, _F64).reshape(len(names), 3)
    norms = np.sqrt(parts[:, 1])
    return np.concatenate(([combine(norms, 2), parts[:, 0].sum(), parts[:, 2].any()], norms))


def any_to_float(x: Any) -> float:
    return float(np.asarray(x).reshape(-1)[0])


def global_factor(head, max_norm, nonfinite, all_half):
    """The factor :func:`caffe2ops.clipping.apply_clip` uses for the total ``head[0]``."""
    ndt = np.dtype(np.float32) if all_half else _F64
    mode = "propagate" if nonfinite == "raise" else nonfinite
    st = clipping.apply_clip(np.zeros(0, ndt), ndt.type(head[0]), max_norm, nonfinite=mode)[1]
    return np.array([st.scale], _F64)


def own_factors(summary, k, max_norm, nonfinite):
    """Per-array factors of :func:`clip_by_norm` (``axis=None``) from their norms."""
    mode = "propagate" if nonfinite == "raise" else nonfinite
    return np.array([
        clipping.apply_clip(np.zeros(0, _F64), np.float64(n), max_norm, nonfinite=mode)[1].scale
        for n in summary[2:2 + k]
    ], _F64)
