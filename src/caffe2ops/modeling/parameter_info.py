"""``ParameterInfo`` and ``ParameterTags``: what a model knows about each parameter (Caffe2's
``caffe2/python/modeling/parameter_info.py``).

>>> from caffe2ops import core
>>> info = ParameterInfo(param_id=None, param=core.BlobReference("fc_w"), shape=[3, 4])
>>> info.name, info.size, info.length, info.grad is None
('fc_w', 12, 1, True)
"""

from __future__ import annotations

import math

from caffe2ops import core


class ParameterTags:
    """The tags a helper gives a parameter: weights, biases, and parameters computed from data
    (not optimized by gradient descent)."""

    BIAS = "BIAS"
    WEIGHT = "WEIGHT"
    COMPUTED_PARAM = "COMPUTED_PARAM"


class ParameterInfo:
    """One parameter: its blob (``blob``, also ``parameter``), ``name`` (the blob's name),
    ``shape`` and ``size`` (the product of the shape, None without one), ``length`` (at least 1),
    its gradient ``grad`` (set by ``AddGradientOperators``; a blob or a ``GradientSlice``) and an
    ``optimizer`` that may be set once."""

    def __init__(self, param_id, param, key=None, shape=None, length=None, grad=None,
                 blob_copy=None) -> None:
        if not isinstance(param, core.BlobReference):
            raise AssertionError(
                f"ParameterInfo: param must be a core.BlobReference, got {type(param).__name__}"
            )
        self.param_id = param_id
        self.name = str(param)
        self.blob = param
        self.key = key
        self.shape = shape
        self.size = None if shape is None else math.prod(shape)
        self.length = max(1, length if length is not None else 1)
        self.grad = grad
        self.blob_copy = blob_copy
        self._optimizer = None

    @property
    def parameter(self) -> core.BlobReference:
        return self.blob

    @property
    def optimizer(self):
        return self._optimizer

    @optimizer.setter
    def optimizer(self, value) -> None:
        if self._optimizer is not None:
            raise AssertionError(f"parameter '{self.name}': optimizer has already been set")
        self._optimizer = value

    def __str__(self) -> str:
        return self.name
