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
    counters,
    device_copy,
    elementwise,
    elementwise_max,
    ensure_clipped,
    fc,
    fillers,
    gather,
    losses,
    lp_norm,
    optimizers,
    python_op,
    sparse_lengths,
    sparse_normalize,
    thresholded_relu,
    utility,
)

