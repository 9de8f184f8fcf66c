"""SparseNormalize and sparse EnsureClipped on a row-chunked (and maybe column-sharded) table.

The indices are concrete (NumPy): they are checked against the row count before anything is built,
made distinct, and routed to the row chunks that hold them. A chunk no index touches is passed
through as the same block (no task, no copy); a touched chunk becomes one task on a private copy.
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph
from dask.utils import apply

import caffe2ops as c2
from caffe2ops.dask import _blocks
from caffe2ops.dask._ops import as_dask
from caffe2ops.errors import OperatorValueError
from caffe2ops.ops._common import bool_arg, row_indices

__all__ = ["ensure_clipped", "sparse_normalize"]


def _route(op: str, table: da.Array, indices: Any) -> dict[int, np.ndarray]:
    """Row-chunk number -> its distinct local rows (int64), for the chunks that hold indices."""
    if isinstance(indices, da.Array):
        indices = indices.compute()
    flat = row_indices(op, np.asarray(indices) if not isinstance(indices, np.ndarray)
                       else indices, table.shape[0])
    n_rows = table.shape[0]
    if flat.size and n_rows <= 16 * flat.size:  # a mask of the rows: O(rows), half a sort's time
        mask = np.zeros(n_rows, bool)                # at 1M indices of 10M rows
        mask[flat] = True
        rows = np.flatnonzero(mask).astype(np.int64, copy=False)
    else:  # sort + dedupe: NumPy 2's hashing unique is slower
        rows = np.sort(flat.astype(np.int64))
        if rows.size:
            rows = rows[np.concatenate(([True], rows[1:] != rows[:-1]))]
    starts = np.concatenate(([0], np.cumsum(table.chunks[0])))
    cuts = np.searchsorted(rows, starts)
    return {i: rows[cuts[i]:cuts[i + 1]] - starts[i]
            for i in range(len(table.chunks[0])) if cuts[i + 1] > cuts[i]}


def _digest(routed: dict[int, np.ndarray]) -> str:
    """A token of the routing (chunk numbers and their rows)."""
    if not routed:
        return tokenize(())
    return tokenize(np.array(list(routed), np.int64), np.concatenate(list(routed.values())))


def _keys(name: str, table: da.Array, i: int) -> list[tuple]:
    """The keys of row chunk ``i`` (one per column block)."""
    return [(name, i, *rest) for rest in np.ndindex(*table.numblocks[1:])]


def _build(op: str, table: da.Array, routed: dict, task, token: str) -> da.Array:
    """A table whose touched row chunks come from ``task(src_key, dst_key, rows, dsk)``."""
    name = f"{op.lower()}-{token}"
    dsk: dict = {}
    for i in range(table.numblocks[0]):
        for key in _keys(table.name, table, i):
            out = (name, *key[1:])
            if i in routed:
                task(key, out, routed[i], dsk)
            else:
                dsk[out] = key  # an alias: the very block, no copy
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[table])
    return da.Array(graph, name, table.chunks, meta=table._meta)


def sparse_normalize(table: Any, indices: Any, norm: float = 1.0,
                     use_max_norm: bool = True, *, inplace: bool = False) -> da.Array:
    """:func:`caffe2ops.sparse_normalize` on a Dask table: returns the new table (lazy).

    Rows are dim 0. Each distinct index normalizes its row once; an index outside
    ``[0, rows)`` raises ``IndexError`` here, before any graph exists. With the rest of each row
    in one chunk the operator itself runs on a copy of each touched chunk (same bits as in
    process). A column-sharded table (several chunks along the other dimensions) first sums each
    touched row's float64 squares over its column chunks, then scales every column chunk with
    the operator's factor ``norm / (n + 1e-12)``; the float64 sums then add in another order,
    which can move a norm by an ulp before it is rounded to the dtype.

    ``inplace=True`` updates the touched chunks where they are, as the Caffe2 operator updates
    its blob, instead of copying them: for a table persisted in the workers (or in memory) that
    nothing else reads, it saves a copy of every touched chunk. The input table's chunks then
    hold the new values too, so use the returned table and drop the old one; read-only chunks
    (e.g. from ``da.from_array`` of a read-only array) are still copied.

    >>> import numpy as np, dask.array as da, caffe2ops.dask as c2d
    >>> w = da.from_array(np.array([[3.0, 4.0], [0.3, 0.4], [6.0, 8.0]]), chunks=(1, 1))
    >>> c2d.sparse_normalize(w, np.array([0, 2, 0])).compute()
    array([[0.6, 0.8],
           [0.3, 0.4],
           [0.6, 0.8]])
    """
    op = "SparseNormalize"
    table = as_dask(table)
    if table.ndim == 0:
        raise OperatorValueError(f"{op}: input param must have at least one dimension (rows)")
    empty = np.empty((0, *table.shape[1:]), table.dtype)
    c2.sparse_normalize(empty, np.empty(0, np.int64), norm, use_max_norm)  # dtype, norm checks
    use_max_norm = bool(use_max_norm)
    inplace = bool_arg(op, "inplace", inplace)
    routed = _route(op, table, indices)
    token = tokenize(table, _digest(routed), norm, use_max_norm, inplace)
    if all(n == 1 for n in table.numblocks[1:]):
        def task(src, out, rows, dsk):
            dsk[out] = (_blocks.sparse_normalize_rows, src, rows, norm, use_max_norm, inplace)
        return _build(op, table, routed, task, token)

    sums_name = f"sparse_normalize-rowsumsq-{token}"

    def sharded(src, out, rows, dsk):
        parts = []
        for key in _keys(table.name, table, src[1]):
            part = (sums_name, *key[1:])
            if part not in dsk:
                dsk[part] = (_blocks.row_sumsq, key, rows)
            parts.append(part)
        dsk[out] = (apply, _blocks.scale_rows, [src, rows, *parts],
                    {"norm": norm, "use_max_norm": use_max_norm, "inplace": inplace})
    return _build(op, table, routed, sharded, token)


def ensure_clipped(param: Any, min: float | None = None, max: float | None = None,
                   indices: Any = None, *, inplace: bool = False) -> da.Array:
    """:func:`caffe2ops.ensure_clipped` on a Dask array: dense (``indices=None``) chunk by chunk,
    or sparse: only the rows ``param[indices]`` clipped, routed to their row chunks like
    :func:`sparse_normalize` (any column chunking); returns the new array (lazy). ``inplace``
    (sparse only) as in :func:`sparse_normalize`.

    >>> import numpy as np, dask.array as da, caffe2ops.dask as c2d
    >>> w = da.from_array(np.full((3, 2), 5.0), chunks=1)
    >>> c2d.ensure_clipped(w, -1, 1, indices=np.array([2])).compute()
    array([[5., 5.],
           [5., 5.],
           [1., 1.]])
    """
    op = "EnsureClipped"
    param = as_dask(param)
    if indices is None:
        meta = c2.ensure_clipped(np.empty((0,) * param.ndim, param.dtype), min, max)
        return da.map_blocks(c2.ensure_clipped, param, min=min, max=max, dtype=meta.dtype,
                             meta=meta)
    if param.ndim == 0:
        raise OperatorValueError(f"{op}: input param must have at least one dimension (rows)")
    c2.ensure_clipped(np.empty((0, *param.shape[1:]), param.dtype), min, max,
                      indices=np.empty(0, np.int64))  # dtype and bound checks
    inplace = bool_arg(op, "inplace", inplace)
    routed = _route(op, param, indices)
    token = tokenize(param, _digest(routed), min, max, inplace)

    def task(src, out, rows, dsk):
        dsk[out] = (_blocks.ensure_clipped_rows, src, rows, min, max, inplace)
    return _build(op, param, routed, task, token)
