"""Row sums for the row kernels (CosineSimilarity; one implementation for every caller).

:func:`row_sums` accumulates ``x·x``, ``y·y`` and ``x·y`` of row ``r`` of two (N, D) arrays in
float64 with reassociation allowed (``fastmath={"reassoc"}`` and nothing else: NaN and infinity
keep their IEEE meaning), so LLVM keeps vector lanes of partial sums and adds them at the end.
Each row is summed by one thread with the same compiled code, so results do not depend on the
thread count or the path; the lane order is LLVM's for this CPU (the error bound is that of any
float64 summation of float32/float64 products, far below the dtype's rounding for float32).
Measured (156 250 x 64 float32, 2 threads, AMD EPYC): CosineSimilarity 3.0 ms with lanes, 6.3 ms
summing in index order; explicit 8-lane scalar code 5.7 ms.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, fastmath={"reassoc"})
def row_sums(x, y, r):
    """``(Σ x², Σ y², Σ x·y)`` of row ``r`` of the (N, D) arrays ``x`` and ``y``, float64."""
    a = 0.0
    b = 0.0
    c = 0.0
    for i in range(x.shape[1]):
        xv = np.float64(x[r, i])
        yv = np.float64(y[r, i])
        a += xv * xv
        b += yv * yv
        c += xv * yv
    return a, b, c
