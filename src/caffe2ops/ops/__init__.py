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
    ensure_clipped,
    lp_norm,
    python_op,
    sparse_normalize,
    thresholded_relu,
    utility,
)
