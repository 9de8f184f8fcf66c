"""caffe2ops on Dask arrays: lazy, chunk by chunk, with the fast kernels running in the workers.

Operators (same arguments as the functional API, Dask arrays in, Dask arrays out):
``clip``, ``thresholded_relu``, ``cos``, ``cosine_embedding_criterion``, ``clip_tensor_by_scaling``
and their gradients chunk by chunk; ``cosine_similarity`` (+ gradient) on row chunks;
``lp_norm`` as a tree reduction (+ gradient); ``sparse_normalize`` and ``ensure_clipped`` (dense,
or sparse on a row-chunked, optionally column-sharded table, indices routed to their chunks).
Toolkit: ``clip_by_global_norm`` (one graph over many arrays), ``clip_by_norm``,
``clip_by_value``, each returning lazy ``(arrays, stats)``; :func:`compute` evaluates both at once.

Every task calls the public ``caffe2ops`` functions by module reference, so each worker imports
caffe2ops and loads its own kernels (nothing compiled is pickled): workers need caffe2ops
installed (or on their ``PYTHONPATH``). Needs ``dask[array]``; ``distributed`` for clusters
(``pip install caffe2ops[dask]``).

>>> import numpy as np, dask.array as da, caffe2ops.dask as c2d
>>> x = da.from_array(np.array([-2.0, 0.5, 3.0]), chunks=2)
>>> c2d.clip(x, -1, 1).compute()
array([-1. ,  0.5,  1. ])
"""

from caffe2ops.dask._clipping import clip_by_global_norm, clip_by_norm, clip_by_value, compute
from caffe2ops.dask._ops import (
    as_dask,
    clip,
    clip_gradient,
    clip_tensor_by_scaling,
    cos,
    cos_gradient,
    cosine_embedding_criterion,
    cosine_embedding_criterion_gradient,
    cosine_similarity,
    cosine_similarity_gradient,
    lp_norm,
    lp_norm_gradient,
    thresholded_relu,
    thresholded_relu_gradient,
)
from caffe2ops.dask._tables import ensure_clipped, sparse_normalize
from caffe2ops.dask._workers import load_kernels_on_workers

__all__ = [
    "as_dask",
    "clip",
    "clip_by_global_norm",
    "clip_by_norm",
    "clip_by_value",
    "clip_gradient",
    "clip_tensor_by_scaling",
    "compute",
    "cos",
    "cos_gradient",
    "cosine_embedding_criterion",
    "cosine_embedding_criterion_gradient",
    "cosine_similarity",
    "cosine_similarity_gradient",
    "ensure_clipped",
    "load_kernels_on_workers",
    "lp_norm",
    "lp_norm_gradient",
    "sparse_normalize",
    "thresholded_relu",
    "thresholded_relu_gradient",
]
