"""Operator families, one module each: schema, reference kernel, fast-kernel dispatch, gradient.

Importing this package registers every operator.
"""

from caffe2ops.ops import (  # noqa: F401
    activations,
    arithmetic,
    clip,
    clip_tensor_by_scaling,
    cos,
    cosine_embedding_criterion,
    cosine_similarity,
    device_copy,
    elementwise,
    elementwise_max,
    ensure_clipped,
    fc,
    fillers,
    losses,
    lp_norm,
    sparse_normalize,
    sparse_to_dense,
    thresholded_relu,
    utility,
)

