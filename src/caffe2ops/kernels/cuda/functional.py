"""How each function of the functional API maps onto an operator for the CUDA runners.

Pure data (no numba, no CuPy): ``ops/_dispatch.py`` wraps the listed functions so that a call
with a GPU array runs the operator's CUDA runner (:mod:`caffe2ops.kernels.cuda.table`) and a call
with NumPy arrays runs the CPU function unchanged.

Each entry: ``(operator type, input parameters, argument parameters, outputs, result)``.
Optional inputs that are None are dropped; ``outputs`` is a count or ``(parameter, if true, if
false)``; ``result`` is ``"one"`` (the first output), ``"all"`` (a tuple) or ``"fc_gradient"``
(``(dW, db, dX or None)`` as the CPU function).
"""

from __future__ import annotations

_ONE = "one"
_ALL = "all"

SPECS: dict[str, tuple] = {
    "clip": ("Clip", ("x",), ("min", "max"), 1, _ONE),
    "clip_gradient": ("ClipGradient", ("y", "dy"), ("min", "max"), 1, _ONE),
    "thresholded_relu": ("ThresholdedRelu", ("x",), ("alpha",), 1, _ONE),
    "thresholded_relu_gradient": ("ThresholdedReluGradient", ("y", "dy", "x"), ("alpha",), 1,
                                  _ONE),
    "cos": ("Cos", ("x",), (), 1, _ONE),
    "cos_gradient": ("CosGradient", ("x", "dy"), (), 1, _ONE),
    "relu": ("Relu", ("x",), (), 1, _ONE),
    "relu_gradient": ("ReluGradient", ("y", "dy"), (), 1, _ONE),
    "sigmoid": ("Sigmoid", ("x",), (), 1, _ONE),
    "sigmoid_gradient": ("SigmoidGradient", ("y", "dy"), (), 1, _ONE),
    "tanh": ("Tanh", ("x",), (), 1, _ONE),
    "tanh_gradient": ("TanhGradient", ("y", "dy"), (), 1, _ONE),
    "cosine_embedding_criterion": ("CosineEmbeddingCriterion", ("s", "label"), ("margin",), 1,
                                   _ONE),
    "cosine_embedding_criterion_gradient": ("CosineEmbeddingCriterionGradient",
                                            ("s", "label", "dloss"), ("margin",), 1, _ONE),
    "cosine_similarity": ("CosineSimilarity", ("x", "y"), (), 1, _ONE),
    "cosine_similarity_gradient": ("CosineSimilarityGradient", ("x", "y", "dz"), (), 2, _ALL),
    "lp_norm": ("LpNorm", ("x",), ("p", "average"), 1, _ONE),
    "lp_norm_gradient": ("LpNormGradient", ("x", "dn"), ("p", "average"), 1, _ONE),
    "sparse_normalize": ("SparseNormalize", ("param", "indices"), ("norm", "use_max_norm"), 1,
                         _ONE),
    "ensure_clipped": ("EnsureClipped", ("param", "indices", "grad"), ("min", "max"), 1, _ONE),
    "clip_tensor_by_scaling": ("ClipTensorByScaling", ("x", "val", "additional_threshold"),
                               ("threshold",), 1, _ONE),
    "squared_l2_distance": ("SquaredL2Distance", ("x", "y"), (), 1, _ONE),
    "squared_l2_distance_gradient": ("SquaredL2DistanceGradient", ("x", "y", "dz"), (), 2,
                                     _ALL),
    "sum_elements": ("SumElements", ("x",), ("average",), 1, _ONE),
    "sum_sqr_elements": ("SumSqrElements", ("x",), ("average",), 1, _ONE),
    "sum_elements_gradient": ("SumElementsGradient", ("x", "ds"), ("average",), 1, _ONE),
    "averaged_loss": ("AveragedLoss", ("x",), (), 1, _ONE),
    "averaged_loss_gradient": ("AveragedLossGradient", ("x", "ds"), (), 1, _ONE),
    "fc": ("FC", ("x", "w", "b"), ("axis", "axis_w"), 1, _ONE),
    "fc_gradient": ("FCGradient", ("x", "w", "dy"), ("axis", "axis_w"), ("need_dx", 3, 2),
                    "fc_gradient"),
    "gather": ("Gather", ("data", "indices"), ("axis",), 1, _ONE),
    "sparse_lengths_sum": ("SparseLengthsSum", ("data", "indices", "lengths"), (), 1, _ONE),
    "sparse_lengths_mean": ("SparseLengthsMean", ("data", "indices", "lengths"), (), 1, _ONE),
    "sparse_lengths_weighted_sum": ("SparseLengthsWeightedSum",
                                    ("data", "weights", "indices", "lengths"), (), 1, _ONE),
    "weighted_sum": ("WeightedSum", ("*pairs",), (), 1, _ONE),
    "scatter_weighted_sum": ("ScatterWeightedSum", ("x0", "w0", "indices", "*pairs"), (), 1,
                             _ONE),
    "adagrad": ("Adagrad", ("param", "moment", "grad", "lr"), ("epsilon", "decay"),
                ("return_updates", 4, 2), _ALL),
    "sparse_adagrad": ("SparseAdagrad", ("param", "moment", "indices", "grad", "lr"),
                       ("epsilon",), 2, _ALL),
    "rowwise_sparse_adagrad": ("RowWiseSparseAdagrad",
                               ("param", "moment", "indices", "grad", "lr"), ("epsilon",), 2,
                               _ALL),
    "adam": ("Adam", ("param", "moment_1", "moment_2", "grad", "lr", "iteration"),
             ("beta1", "beta2", "epsilon"), ("return_effective_grad", 4, 3), _ALL),
}
