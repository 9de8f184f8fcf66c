"""``ModelHelper``: a training net, its parameter-initialization net and its parameters
(Caffe2's ``caffe2/python/model_helper.py``).

``model.net`` is the net that runs every iteration, ``model.param_init_net`` creates the
parameters once. Helpers (``brew.fc``) call :meth:`ModelHelper.create_param`, which adds the
initializer operator to ``param_init_net`` and records the parameter (``params``, ``weights``,
``biases``, ``get_param_info``). :meth:`ModelHelper.AddGradientOperators` appends the backward
pass and fills ``param_to_grad``; optimizers read it. Unknown attributes that name a registered
operator add that operator to ``model.net`` (``model.Sigmoid(...)``), warning for operators
Caffe2 did not list as safe.

>>> from caffe2ops import brew, model_helper
>>> model = model_helper.ModelHelper(name="model_helper_example")
>>> y = brew.fc(model, "x", "y", dim_in=3, dim_out=2)
>>> [str(p) for p in model.GetParams()], [str(w) for w in model.weights]
(['y_w', 'y_b'], ['y_w'])
>>> [op.type for op in model.param_init_net.Proto().op]
['XavierFill', 'ConstantFill']
>>> model.get_param_info(model.params[0]).shape
[2, 3]
"""

from __future__ import annotations

import logging

from caffe2ops import core
from caffe2ops.modeling import parameter_info
from caffe2ops.runtime.schema import has_schema, registered_types

logger = logging.getLogger(__name__)

# Operators Caffe2's ModelHelper creates without a warning when reached through __getattr__.
KNOWN_WORKING_OPS = frozenset([
    "Accuracy", "Adam", "Add", "Adagrad", "SparseAdagrad", "Adadelta", "SparseAdadelta",
    "AveragedLoss", "Cast", "Checkpoint", "ConstantFill", "Copy", "CopyGPUToCPU",
    "CopyCPUToGPU", "DequeueBlobs", "EnsureCPUOutput", "ExpandDims", "Flatten", "FlattenToVec",
    "LabelCrossEntropy", "LearningRate", "MakeTwoClass", "MatMul", "NCCLAllreduce", "NHWC2NCHW",
    "PackSegments", "Print", "PRelu", "ReduceFrontSum", "Scale", "ScatterWeightedSum",
    "Sigmoid", "SortedSegmentSum", "Snapshot", "Softmax", "SoftmaxWithLoss",
    "SquaredL2Distance", "Squeeze", "StopGradient", "Summarize", "Tanh", "Transpose",
    "UnpackSegments", "WeightedSum", "YellowFin",
])

DEFAULT_ARG_SCOPE = {"order": "NCHW", "use_cudnn": True, "cudnn_exhaustive_search": False}


def _normalize_namescope(namescope: str | None) -> str:
    if namescope is None:
        return core.CurrentNameScope()
    if namescope == "" or namescope.endswith("/"):
        return namescope
    return namescope + "/"


def _normalize_tags(tags) -> set:
    tags = tags or []
    return set(tags) if isinstance(tags, list) else {tags}


class ModelHelper:
    """A model: ``net`` (named ``name``), ``param_init_net`` (``name + '_init'``) and the
    parameters helpers created.

    ``init_params=False`` makes helpers expect their parameters in the workspace instead of
    initializing them; ``arg_scope`` updates the arguments every brew helper receives (default
    ``order='NCHW'``, ``use_cudnn=True``, ``cudnn_exhaustive_search=False``, as in Caffe2).
    ``param_model`` shares another model's init net and parameters.
    """

    def __init__(self, name: str | None = None, init_params: bool = True,
                 allow_not_known_ops: bool = True, skip_sparse_optim: bool = False,
                 param_model: ModelHelper | None = None, arg_scope: dict | None = None) -> None:
        self.name = name or "model"
        self.net = core.Net(self.name)
        if param_model is not None:
            self.param_init_net = param_model.param_init_net
            self.param_to_grad = param_model.param_to_grad
            self.params = param_model.params
            self._parameters_info = param_model._parameters_info
            self._computed_params = param_model._computed_params
        else:
            self.param_init_net = core.Net(self.name + "_init")
            self.param_to_grad = {}
            self.params = []
            self._parameters_info = {}
            self._computed_params = []
        self.gradient_ops_added = False
        self.grad_map: dict = {}
        self.init_params = init_params
        self.allow_not_known_ops = allow_not_known_ops
        self.skip_sparse_optim = skip_sparse_optim
        self.weights: list = []
        self.biases: list = []
        self._arg_scope = dict(DEFAULT_ARG_SCOPE)
        if arg_scope is not None:
            self._arg_scope.update(arg_scope)

    @property
    def arg_scope(self) -> dict:
        return self._arg_scope

    def get_name(self) -> str:
        return self.name

    # Parameters ---------------------------------------------------------------------------

    def create_param(self, param_name, shape, initializer, tags=None) -> core.BlobReference:
        """Create (once) the parameter ``param_name`` with ``initializer`` and record it.

        A ``BlobReference`` name is used as is; a ``str`` gets the current name scope. Creating
        an existing parameter again returns its blob (the shape must match).
        """
        if isinstance(param_name, core.BlobReference):
            param_name = str(param_name)
        elif isinstance(param_name, str):
            param_name = core.ScopedName(param_name)
        else:
            raise TypeError("Unsupported type for param_name")
        if param_name in self._parameters_info:
            existing = self._parameters_info[param_name]
            if existing.shape != shape:
                raise AssertionError(
                    f"create_param: parameter '{param_name}' exists with shape "
                    f"{existing.shape}, asked for {shape}"
                )
            return existing.blob
        info = initializer.create_param(
            param_name=core.BlobReference(param_name), init_net=self.param_init_net, shape=shape
        )
        self._parameters_info[param_name] = info
        self.AddParameter(info.blob, tags)
        return info.blob

    def get_param_info(self, param) -> parameter_info.ParameterInfo | None:
        """The ``ParameterInfo`` of ``param`` (a ``BlobReference``), or None."""
        if not isinstance(param, core.BlobReference):
            raise AssertionError(f"Param {param} is not a BlobReference")
        return self._parameters_info.get(str(param))

    def AddParameter(self, param, tags=None) -> None:  # noqa: N802
        """Record ``param``: in ``params`` (or the computed parameters with the
        ``COMPUTED_PARAM`` tag), and in ``weights`` / ``biases`` by tag."""
        if not isinstance(param, core.BlobReference):
            raise AssertionError(f"AddParameter: {param!r} is not a BlobReference")
        tags = _normalize_tags(tags)
        if parameter_info.ParameterTags.COMPUTED_PARAM in tags:
            self._computed_params.append(param)
        else:
            self.params.append(param)
        if parameter_info.ParameterTags.WEIGHT in tags:
            self.weights.append(param)
        if parameter_info.ParameterTags.BIAS in tags:
            self.biases.append(param)

    def GetParams(self, namescope: str | None = None, top_scope: bool = False) -> list:  # noqa: N802
        """The parameters under ``namescope`` (default: the current name scope)."""
        namescope = _normalize_namescope(namescope)
        if namescope == "":
            return self.params[:]
        return [p for p in self.params if p.GetNameScope().startswith(namescope)]

    def GetComputedParams(self, namescope: str | None = None) -> list:  # noqa: N802
        """The parameters computed from data rather than by the optimizer."""
        namescope = _normalize_namescope(namescope)
        if namescope == "":
            return self._computed_params[:]
        return [p for p in self._computed_params if p.GetNameScope().startswith(namescope)]

    def GetAllParams(self, namescope: str | None = None) -> list:  # noqa: N802
        return self.GetParams(namescope) + self.GetComputedParams(namescope)

    def _duplicate_params(self) -> list[str]:
        seen, dupes = set(), []
        for name in sorted(str(p) for p in self.params):
            if name in seen and name not in dupes:
                dupes.append(name)
            seen.add(name)
        return dupes

    def Validate(self) -> None:  # noqa: N802
        """Raise ``AssertionError`` naming any parameter recorded twice."""
        dupes = self._duplicate_params()
        if dupes:
            raise AssertionError(f"Duplicate params: {dupes}")

    # Nets ---------------------------------------------------------------------------------

    def Proto(self):  # noqa: N802
        return self.net.Proto()

    def InitProto(self):  # noqa: N802
        return self.param_init_net.Proto()

    def RunAllOnGPU(self, *args, **kwargs) -> None:  # noqa: N802
        self.param_init_net.RunAllOnGPU(*args, **kwargs)
        self.net.RunAllOnGPU(*args, **kwargs)

    def AddGradientOperators(self, *args, **kwargs) -> dict:  # noqa: N802
        """Append the backward pass to ``net`` (once); fills ``grad_map`` and
        ``param_to_grad`` and each parameter's ``ParameterInfo.grad``."""
        if self.gradient_ops_added:
            raise RuntimeError("You cannot run AddGradientOperators twice.")
        self.Validate()
        self.gradient_ops_added = True
        self.grad_map = self.net.AddGradientOperators(*args, **kwargs)
        self.param_to_grad = self.get_param_to_grad(self.params)
        for param, grad in self.param_to_grad.items():
            info = self.get_param_info(param)
            if info is not None:
                info.grad = grad
            else:
                self._parameters_info[str(param)] = parameter_info.ParameterInfo(
                    param_id=None, param=param, grad=grad
                )
        return self.grad_map

    def get_param_to_grad(self, params) -> dict:
        """``{param: gradient}`` for those of ``params`` that have a gradient."""
        if not self.gradient_ops_added:
            raise RuntimeError("You need to run AddGradientOperators first.")
        by_name = {str(k): v for k, v in self.grad_map.items()}
        return {p: by_name[str(p)] for p in params if str(p) in by_name}

    def GetOptimizationParamInfo(self, params=None) -> list:  # noqa: N802
        """The ``ParameterInfo`` of every parameter with a gradient (of ``params`` if given);
        sparse ones are left out with ``skip_sparse_optim``."""
        if not self.gradient_ops_added:
            raise RuntimeError("Need to call AddGradientOperators first")
        param_to_grad = self.get_param_to_grad(params) if params else self.param_to_grad
        return [
            self.get_param_info(param) for param, grad in param_to_grad.items()
            if not self.skip_sparse_optim or not isinstance(grad, core.GradientSlice)
        ]

    def __getattr__(self, op_type: str):
        if op_type.startswith("__") or op_type.startswith("_"):
            raise AttributeError(op_type)
        if not has_schema(op_type):
            import difflib

            close = difflib.get_close_matches(op_type, registered_types(), n=5, cutoff=0.5)
            raise AttributeError(
                f"Method {op_type} is not a registered operator. Did you mean: "
                f"[{','.join(close)}]"
            )
        if op_type not in KNOWN_WORKING_OPS:
            if not self.allow_not_known_ops:
                raise AttributeError(f"Operator {op_type} is not known to be safe")
            logger.warning(
                "You are creating an op that the ModelHelper does not recognize: %s.", op_type
            )
        return getattr(self.net, op_type)

    def __dir__(self) -> list[str]:
        return sorted(set(dir(type(self))) | set(self.__dict__) | KNOWN_WORKING_OPS)
