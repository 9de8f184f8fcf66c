"""caffe2ops: Caffe2's operators, their gradients and its workspace/net API, without Caffe2.

Functional API (NumPy in, NumPy out)::

    import caffe2ops as c2
    c2.clip(x, min=-1.0, max=1.0)

Caffe2-compatible API::

    from caffe2ops import core, workspace
"""

from __future__ import annotations

from caffe2ops.errors import OperatorError
from caffe2ops.kernels import get_num_threads, set_num_threads
from caffe2ops.ops._dispatch import reference_kernels
from caffe2ops.ops.clip import clip, clip_gradient
from caffe2ops.ops.clip_tensor_by_scaling import clip_tensor_by_scaling
from caffe2ops.ops.cos import cos, cos_gradient
from caffe2ops.ops.cosine_embedding_criterion import (
    cosine_embedding_criterion,
    cosine_embedding_criterion_gradient,
)
from caffe2ops.ops.cosine_similarity import cosine_similarity, cosine_similarity_gradient
from caffe2ops.ops.ensure_clipped import ensure_clipped
from caffe2ops.ops.lp_norm import lp_norm, lp_norm_gradient
from caffe2ops.ops.sparse_normalize import sparse_normalize
from caffe2ops.ops.thresholded_relu import thresholded_relu, thresholded_relu_gradient

__version__ = "0.1.0"


def __getattr__(name: str):
    # core / workspace / clipping load on first use, keeping `import caffe2ops` light.
    import importlib

    if name in ("core", "workspace", "clipping", "modeling", "regularizer", "proto"):
        return importlib.import_module(f"caffe2ops.{name}")
    if name == "caffe2_pb2":  # `from caffe2ops import caffe2_pb2`
        return importlib.import_module("caffe2ops.proto.caffe2_pb2")
    raise AttributeError(f"module 'caffe2ops' has no attribute {name!r}")


__all__ = [
    "OperatorError",
    "clip",
    "clip_gradient",
    "clip_tensor_by_scaling",
    "cos",
    "cos_gradient",
    "cosine_embedding_criterion",
    "cosine_embedding_criterion_gradient",
    "cosine_similarity",
    "cosine_similarity_gradient",
    "ensure_clipped",
    "get_num_threads",
    "lp_norm",
    "lp_norm_gradient",
    "reference_kernels",
    "set_num_threads",
    "sparse_normalize",
    "thresholded_relu",
    "thresholded_relu_gradient",
]
