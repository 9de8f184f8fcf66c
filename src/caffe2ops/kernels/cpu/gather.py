"""The ordered row scatter of SparseToDense and ScatterWeightedSum on the CPU.

Preconditions (the operators check them; the kernel does not): ``table`` and ``values``
C-contiguous 2-D of one float dtype, ``values.shape == (idx.size, table.shape[1])``; ``idx``
int64 and in range. One thread, occurrences in index order, so duplicates accumulate exactly as
``np.add.at`` does (and Caffe2's loop).

>>> import numpy as np
>>> from caffe2ops.kernels.cpu import gather
>>> table = np.zeros((2, 2), np.float32)
>>> gather.scatter_add_rows(table, np.array([1, 1]), np.ones((2, 2), np.float32),
...                         np.float32(0.5))
array([[0., 0.],
       [1., 1.]], dtype=float32)
"""

from __future__ import annotations

import numpy as np
from numba import njit


def warm_up_calls(a: np.ndarray, b: np.ndarray, o: np.ndarray) -> dict:
    """One small call per entry point (``a``, ``b``, ``o``: 1-D arrays of one dtype)."""
    table = np.zeros((2, a.size), a.dtype)
    return {"scatter_add_rows": lambda: scatter_add_rows(
        table, np.zeros(1, np.int64), a.reshape(1, -1), a.dtype.type(1))}


@njit(cache=True)
def scatter_add_rows(table, idx, values, w):
    """``table[idx[j]] = table[idx[j]] + w*values[j]`` for j = 0, 1, ... (``w*v`` rounded to
    the dtype first; ``w = 1`` adds ``values`` exactly). Returns ``table``."""
    d = table.shape[1]
    for j in range(idx.size):
        row = table[idx[j]]
        v = values[j]
        for c in range(d):
            row[c] = row[c] + w * v[c]
    return table
