"""Operator families, one module each: schema, reference kernel, fast-kernel dispatch, gradient.

Importing this package registers every operator.
"""

from caffe2ops.ops import (  # noqa: F401
    clip,
    cos,
    cosine_embedding_criterion,
    cosine_similarity,
    sparse_normalize,
    thresholded_relu,
    utility,
)
