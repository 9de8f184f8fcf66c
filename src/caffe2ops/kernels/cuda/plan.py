"""Row plans for the CUDA kernels that update rows given by indices.

The indices are checked on the host (what is checked is what the kernels read: the plan is made
from that copy and uploaded), then grouped by row with a stable sort: group ``g`` is row
``rows[g]`` and its occurrences ``order[starts[g]:starts[g+1]]`` in index order. One thread block
owns a group, so each row is updated by one block, in the order the CPU reference uses: no
atomics, the same bits on every run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from caffe2ops.kernels.cuda._launch import to_device


@dataclass(frozen=True)
class RowPlan:
    rows: Any  # [groups] int64, distinct rows (device)
    starts: Any  # [groups + 1] int64 (device)
    order: Any  # [n] int64 occurrence positions, grouped by row, index order within (device)
    positions: Any  # [n] int64 the checked indices (device)
    groups: int
    n: int


def row_plan(flat_indices: np.ndarray) -> RowPlan:
    """``flat_indices``: checked, in-range int64 host indices (``copied_row_indices``)."""
    idx = np.ascontiguousarray(flat_indices, dtype=np.int64)
    order = np.argsort(idx, kind="stable")
    sorted_rows = idx[order]
    if idx.size:
        first = np.flatnonzero(np.r_[True, sorted_rows[1:] != sorted_rows[:-1]])
    else:
        first = np.zeros(0, np.int64)
    starts = np.r_[first, idx.size].astype(np.int64)
    rows = sorted_rows[first]
    pad = np.zeros(1, np.int64)  # device arrays of length 0 are awkward to launch on
    return RowPlan(
        rows=to_device(rows if rows.size else pad), starts=to_device(starts),
        order=to_device(order.astype(np.int64) if idx.size else pad),
        positions=to_device(idx if idx.size else pad), groups=int(rows.size), n=int(idx.size),
    )
