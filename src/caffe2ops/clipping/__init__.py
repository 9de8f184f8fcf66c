"""Gradient-clipping toolkit: NumPy arrays in, the same arrays (``inplace=True``) or new ones out.

Functions (each returns ``(arrays, stats)`` with a :class:`ClipStats`):

- :func:`clip_by_value` — clamp elements into ``[min, max]``.
- :func:`clip_by_norm` — clip each array, or each slice over ``axis``, to a norm (ord 1, 2, inf).
- :func:`clip_by_global_norm` — one factor for all arrays, with a ``nonfinite`` policy.
- :func:`adaptive_grad_clip` — unit-wise AGC (Brock et al. 2021), same units as optax.
- :func:`per_sample_clip` — per-example global-norm clipping and batch sum (DP-SGD).
- :func:`partial_norms`, :func:`combine_norms`, :func:`apply_clip` — global-norm clipping split
  around any collective (torch.distributed ``all_reduce``, MPI ``Allreduce``, Dask).

Conventions shared by all of them:

- ``arrays`` is one ndarray, a list/tuple of ndarrays, or a dict name -> ndarray; the result comes
  back in the same structure. float16, bfloat16 (``ml_dtypes``), float32 and float64 are accepted
  (and integers for :func:`clip_by_value`).
- Scaling is exact: ``x * (max_norm / norm)`` only where ``norm > max_norm`` (no epsilon), so at or
  below the limit the arrays stay bit-identical; ``norm == 0`` never produces 0/0.
- Norms accumulate in float64. float16/bfloat16 inputs are widened to float32 first and their
  norms are returned as float32 (float16 ``[60000, 60000, 1]`` has norm 84852.8, not ``inf``).
- ``inplace=False`` never modifies the inputs and always returns new arrays.
- Global-norm and whole-array clipping of many contiguous float32/float64 arrays runs as two fused,
  multi-threaded Numba passes (one read for the norms, one read+write for the scale) over a table
  of array addresses: no concatenation and no per-array temporaries. The thread count is Numba's
  (``numba.set_num_threads``). Numba is imported on the first call, not on import.
"""

from caffe2ops.clipping._common import ClipStats
from caffe2ops.clipping._split import PARTIAL_SIZE, apply_clip, combine_norms, partial_norms
from caffe2ops.clipping._toolkit import (
    adaptive_grad_clip,
    clip_by_global_norm,
    clip_by_norm,
    clip_by_value,
    per_sample_clip,
)

__all__ = [
    "PARTIAL_SIZE",
    "ClipStats",
    "apply_clip",
    "combine_norms",
    "partial_norms",
    "adaptive_grad_clip",
    "clip_by_global_norm",
    "clip_by_norm",
    "clip_by_value",
    "per_sample_clip",
]
