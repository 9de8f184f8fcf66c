"""CUDA kernels (numba-cuda) for the caffe2ops operators, on CuPy arrays.

Importing this package imports neither numba nor CuPy; :func:`load` does. The kernels take any
array with ``__cuda_array_interface__`` (CuPy on a GPU) and, under numba-cuda's simulator
(``NUMBA_ENABLE_CUDASIM=1`` set before numba is imported), the simulator's device arrays, which
is how CI tests their logic on machines without a GPU.

Every kernel is deterministic: element-wise kernels write each output once; reductions use a
fixed launch shape and a fixed tree order (no atomics whose order changes a result); operators
on rows given by indices (SparseNormalize, sparse EnsureClipped, SparseAdagrad,
ScatterWeightedSum) plan the rows on the host (:mod:`.plan`) so that each row is updated by one
thread block, occurrences in index order.

Files, one per family group: :mod:`.elementwise`, :mod:`.reductions`, :mod:`.rows`,
:mod:`.optimizers`, :mod:`.fc`; :mod:`.table` maps operator types to runners for
``DeviceOption(CUDA)`` and the functional API.
"""

from __future__ import annotations

import importlib
from typing import Any


def load() -> Any:
    """Import numba-cuda and the kernel table; raises ImportError without numba-cuda."""
    return importlib.import_module("caffe2ops.kernels.cuda.table")
