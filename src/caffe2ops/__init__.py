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
from caffe2ops.ops.activations import (  # dense training operators
    relu,
    relu_gradient,
    sigmoid,
    sigmoid_gradient,
    tanh,
    tanh_gradient,
)
from caffe2ops.ops.clip import clip, clip_gradient
from caffe2ops.ops.clip_tensor_by_scaling import clip_tensor_by_scaling
from caffe2ops.ops.cos import cos, cos_gradient
from caffe2ops.ops.cosine_embedding_criterion import (
    cosine_embedding_criterion,
    cosine_embedding_criterion_gradient,
)
from caffe2ops.ops.cosine_similarity import cosine_similarity, cosine_similarity_gradient
from caffe2ops.ops.counters import atomic_iter, create_mutex, learning_rate
from caffe2ops.ops.counters import iter_ as iter  # noqa: A001 - Caffe2's operator name
from caffe2ops.ops.device_copy import ensure_cpu_output
from caffe2ops.ops.elementwise_max import elementwise_max, elementwise_max_gradient
from caffe2ops.ops.ensure_clipped import ensure_clipped
from caffe2ops.ops.fc import fc, fc_gradient
from caffe2ops.ops.fillers import (
    CaffeRandom,
    gaussian_fill,
    given_tensor_fill,
    msra_fill,
    uniform_fill,
    xavier_fill,
)
from caffe2ops.ops.gather import gather, sparse_to_dense
from caffe2ops.ops.losses import (
    averaged_loss,
    averaged_loss_gradient,
    squared_l2_distance,
    squared_l2_distance_gradient,
    sum_elements,
    sum_elements_gradient,
    sum_sqr_elements,
)
from caffe2ops.ops.lp_norm import lp_norm, lp_norm_gradient
from caffe2ops.ops.optimizers import (
    adagrad,
    adam,
    rowwise_sparse_adagrad,
    scatter_weighted_sum,
    sparse_adagrad,
    sparse_adam,
    weighted_sum,
    weighted_sum_gradient,
)
from caffe2ops.ops.sparse_lengths import (
    sparse_lengths_mean,
    sparse_lengths_mean_gradient,
    sparse_lengths_sum,
    sparse_lengths_sum_gradient,
    sparse_lengths_weighted_sum,
    sparse_lengths_weighted_sum_gradient,
)
from caffe2ops.ops.sparse_normalize import sparse_normalize
from caffe2ops.ops.thresholded_relu import thresholded_relu, thresholded_relu_gradient
from caffe2ops.runtime.limits import set_max_blob_bytes

__version__ = "0.1.0"


def __getattr__(name: str):
    # core / workspace / clipping load on first use, keeping `import caffe2ops` light.
    import importlib

    if name in ("core", "workspace", "clipping", "modeling", "regularizer", "proto"):
        return importlib.import_module(f"caffe2ops.{name}")
    if name in ("model_helper", "brew", "optimizer", "predictor"):
        return importlib.import_module(f"caffe2ops.{name}")
    if name in ("load_net", "save_net"):
        return getattr(importlib.import_module("caffe2ops.net_io"), name)
    if name == "caffe2_pb2":  # `from caffe2ops import caffe2_pb2`
        return importlib.import_module("caffe2ops.proto.caffe2_pb2")
    raise AttributeError(f"module 'caffe2ops' has no attribute {name!r}")


__all__ = [
    "OperatorError",
    "adagrad",
    "adam",
    "atomic_iter",
    "create_mutex",
    "gather",
    "iter",
    "learning_rate",
    "rowwise_sparse_adagrad",
    "scatter_weighted_sum",
    "sparse_adagrad",
    "sparse_adam",
    "sparse_lengths_mean",
    "sparse_lengths_mean_gradient",
    "sparse_lengths_sum",
    "sparse_lengths_sum_gradient",
    "sparse_lengths_weighted_sum",
    "sparse_lengths_weighted_sum_gradient",
    "sparse_to_dense",
    "weighted_sum",
    "weighted_sum_gradient",
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
    "set_max_blob_bytes",
    "set_num_threads",
    "sparse_normalize",
    "thresholded_relu",
    "thresholded_relu_gradient",
    "CaffeRandom",
    "averaged_loss",
    "averaged_loss_gradient",
    "elementwise_max",
    "elementwise_max_gradient",
    "ensure_cpu_output",
    "fc",
    "fc_gradient",
    "gaussian_fill",
    "given_tensor_fill",
    "msra_fill",
    "relu",
    "relu_gradient",
    "sigmoid",
    "sigmoid_gradient",
    "squared_l2_distance",
    "squared_l2_distance_gradient",
    "sum_elements",
    "sum_elements_gradient",
    "sum_sqr_elements",
    "tanh",
    "tanh_gradient",
    "uniform_fill",
    "xavier_fill",
]


def _route_gpu_arrays() -> None:
    """The functional API dispatches on the array kind: GPU arrays go to the CUDA kernels."""
    from caffe2ops.kernels.cuda.functional import SPECS
    from caffe2ops.ops._dispatch import by_array_kind

    for name in SPECS:
        globals()[name] = by_array_kind(globals()[name], name)


_route_gpu_arrays()
