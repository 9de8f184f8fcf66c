"""Operator families, one module each: schema, reference kernel, fast-kernel dispatch, gradient.

Importing this package registers every operator.
"""

from caffe2ops.ops import (  # noqa: F401
    arithmetic,
    clip,
    clip_tensor_by_scaling,
    cos,
    cosine_embedding_criterion,
    cosine_similarity,
    elementwise,
    ensure_clipped,
    lp_norm,
    sparse_normalize,
    sparse_to_dense,
    thresholded_relu,
    utility,
)
