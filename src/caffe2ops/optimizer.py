"""Optimizers that append parameter updates to a model's net (Caffe2's
``caffe2/python/optimizer.py``: the same operators, arguments and blob names).

Every optimizer shares one iteration counter: ``optimizer_iteration`` (an int64 ``[1]``
``ConstantFill``) and ``iteration_mutex`` (``CreateMutex``) in the init net, and
``AtomicIter([iteration_mutex, optimizer_iteration], [optimizer_iteration])`` in the net, all
on the CPU (``extra_info: device_type_override:cpu``). The learning rate is
``LearningRate(optimizer_iteration, base_lr=-lr, policy=..., **policy_args)`` into
``<Class>_<k>_lr_cpu`` (``k`` counts the optimizer instances of that class in the process).
Updates, per parameter with a gradient:

- SGD: ``param = 1·param + lr·grad`` (``WeightedSum`` with ``ONE_<type>_<id>``); sparse
  gradients ``ScatterWeightedSum(param, ONE, indices, values, lr)``; momentum uses
  ``(Sparse)MomentumSGDUpdate``.
- Adagrad: ``<param>_squared_sum`` (``<param>_avg_squared_sum`` with ``rowWise``) in the init
  net, then ``Adagrad`` / ``SparseAdagrad`` / ``RowWiseSparseAdagrad`` with ``epsilon``
  (``decay`` for the dense one) and ``engine``.
- Adam: ``<param>_first_moment``, ``<param>_second_moment``, then ``Adam`` / ``SparseAdam`` /
  ``RowWiseSparseAdam`` with ``beta1``, ``beta2``, ``epsilon``.

``max_gradient_norm`` scales every learning rate by ``clip_norm / max(‖all grads‖₂,
clip_norm)``, computed under the name scope ``norm_clipped_grad_update`` with
``SumSqrElements``, ``EnsureCPUOutput``, ``Sum``, ``Pow(exponent=0.5)``, ``Max``, ``Div``, and
applied as ``CopyFromCPUInput`` + ``Mul(broadcast=1)`` before each update.
``add_weight_decay(model, weight_decay)`` adds ``grad = grad + weight_decay·param`` for the
weights. Keyword arguments an optimizer does not know are the learning-rate policy's arguments
(``stepsize``, ``gamma``, ``power``, ``max_iter``, ``stepsizes``, ...), passed to
``LearningRate`` as in Caffe2.

>>> from caffe2ops import brew, model_helper, optimizer
>>> model = model_helper.ModelHelper(name="optimizer_example")
>>> y = brew.fc(model, "x", "y", dim_in=2, dim_out=1)
>>> loss = model.net.AveragedLoss(y, "loss")
>>> _ = model.AddGradientOperators([loss])
>>> _ = optimizer.build_sgd(model, base_learning_rate=0.1)
>>> [op.type for op in model.net.Proto().op][-4:]
['AtomicIter', 'LearningRate', 'WeightedSum', 'WeightedSum']
"""

from __future__ import annotations

import copy
import logging
from collections import defaultdict, namedtuple

import numpy as np

from caffe2ops import core
from caffe2ops.modeling import parameter_info
from caffe2ops.modeling.gradient_clipping import get_param_device
from caffe2ops.proto import caffe2_pb2
from caffe2ops.runtime import scope

logger = logging.getLogger(__name__)

OPTIMIZER_ITERATION_NAME = "optimizer_iteration"
ITERATION_MUTEX_NAME = "iteration_mutex"
_LEARNING_RATE_INJECTION = "lr_injection"

AuxOptimizerParams = namedtuple("AuxOptimizerParams", ["local", "shared"])
# Optimizer instances created so far, per class: part of their blob names, as in Caffe2.
_optimizer_instance_count: defaultdict[str, int] = defaultdict(int)


def _is_gpu(device_type: int) -> bool:
    return device_type == caffe2_pb2.CUDA


def build_unique_mutex_iter(init_net, net, iter=None, iter_mutex=None, iter_val=0):  # noqa: A002
    """The shared iteration counter (Caffe2's ``utils.BuildUniqueMutexIter``): adds the
    counter's ``ConstantFill``, ``CreateMutex`` and ``AtomicIter`` unless ``init_net`` already
    defines it; returns the counter blob."""
    iter = iter if iter is not None else OPTIMIZER_ITERATION_NAME  # noqa: A001
    iter_mutex = iter_mutex if iter_mutex is not None else ITERATION_MUTEX_NAME
    if init_net.BlobIsDefined(iter):
        return init_net.GetBlobRef(iter)
    cpu = core.DeviceOption(caffe2_pb2.CPU, extra_info=["device_type_override:cpu"])
    with core.DeviceScope(cpu):
        iteration = init_net.ConstantFill(
            [], iter, shape=[1], value=iter_val, dtype=caffe2_pb2.TensorProto.INT64
        )
        mutex = init_net.CreateMutex([], [iter_mutex])
        net.AtomicIter([mutex, iteration], [iteration])
    return iteration


BuildUniqueMutexIter = build_unique_mutex_iter


class Optimizer:
    """Base class: ``optimizer(net, param_init_net, param, grad=None)`` adds the update of one
    parameter (a ``ParameterInfo`` with ``grad`` set, or a blob and its gradient)."""

    def __init__(self) -> None:
        self._aux_params = AuxOptimizerParams(local=[], shared=[])
        self._instance_num = _optimizer_instance_count[type(self).__name__]
        _optimizer_instance_count[type(self).__name__] += 1
        self._lr_multiplier = None
        self._local_lr_multiplier = None
        self._local_lr_multiplier_on_gpu = False

    def __call__(self, net, param_init_net, param, grad=None) -> None:
        if grad is None:
            if not isinstance(param, parameter_info.ParameterInfo):
                raise AssertionError(
                    f"Expected parameter to be of type ParameterInfo, got {param}"
                )
            if param.grad is None:
                raise AssertionError(f"parameter '{param.name}' has no gradient")
        else:
            if isinstance(param, str):
                param = core.BlobReference(param)
            param = parameter_info.ParameterInfo(param_id=None, param=param, grad=grad)
        self._run(net, param_init_net, param)

    def _run(self, net, param_init_net, param_info) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement _run")

    def get_cpu_blob_name(self, base_str: str, node_name: str = "") -> str:
        return f"{type(self).__name__}_{self._instance_num}_{base_str}{node_name}_cpu"

    def get_gpu_blob_name(self, base_str: str, gpu_id: int, node_name: str) -> str:
        return f"{type(self).__name__}_{self._instance_num}_{base_str}{node_name}_gpu{gpu_id}"

    @property
    def attributes(self) -> dict:
        attr = copy.deepcopy(self.__dict__)
        del attr["_instance_num"]
        return attr

    def make_unique_blob_name(self, base_str: str) -> str:
        """A blob name unique to this optimizer instance and the current device."""
        current = scope.current_device()
        if current is None:
            return self.get_cpu_blob_name(base_str)
        if _is_gpu(current.device_type):
            return self.get_gpu_blob_name(base_str, current.device_id, current.node_name)
        return self.get_cpu_blob_name(base_str, current.node_name)

    def build_lr(self, net, param_init_net, base_learning_rate, learning_rate_blob=None,
                 policy="fixed", iter_val=0, **kwargs):
        """``(lr, iteration)``: the (negated) learning rate, scaled by the multipliers."""
        if learning_rate_blob is None:
            learning_rate_blob = self.make_unique_blob_name("lr")
        iteration = build_unique_mutex_iter(param_init_net, net, iter_val=iter_val)
        if not net.BlobIsDefined(learning_rate_blob):
            # Descent: the learning rate is negative.
            lr = net.LearningRate([iteration], learning_rate_blob,
                                  base_lr=-base_learning_rate, policy=policy, **kwargs)
        else:
            lr = net.GetBlobRef(learning_rate_blob)
        if self._lr_multiplier is not None:
            lr_multiplier = net.CopyFromCPUInput(
                self._lr_multiplier, self.make_unique_blob_name("lr_multiplier")
            )
            lr = net.Mul([lr, lr_multiplier], self.make_unique_blob_name("scaled_lr"),
                         broadcast=1)
        if self._local_lr_multiplier is not None:
            current = scope.current_device()
            if (current is not None and _is_gpu(current.device_type)
                    and not self._local_lr_multiplier_on_gpu):
                local = net.CopyFromCPUInput(
                    self._local_lr_multiplier, self.make_unique_blob_name("local_lr_multiplier")
                )
            else:
                local = self._local_lr_multiplier
            lr = net.Mul([lr, local], self.make_unique_blob_name("local_scaled_lr"),
                         broadcast=1)
        return lr, iteration

    def add_lr_multiplier(self, lr_multiplier) -> None:
        """Scale every later learning rate of this optimizer by the blob ``lr_multiplier``."""
        self._lr_multiplier = lr_multiplier

    def _clear_local_lr_multiplier(self) -> None:
        self._local_lr_multiplier = None
        self._local_lr_multiplier_on_gpu = False

    @staticmethod
    def dedup(net, sparse_dedup_aggregator, grad):
        if not isinstance(grad, core.GradientSlice):
            raise AssertionError(f"Dedup only works for sparse gradient, got {grad}")
        if sparse_dedup_aggregator:
            return net.DeduplicateGradientSlices(grad, aggregator=sparse_dedup_aggregator)
        return grad

    def get_auxiliary_parameters(self) -> AuxOptimizerParams:
        """The blobs the optimizer keeps: ``local`` (one per parameter, e.g. Adagrad's squared
        sums) and ``shared`` (e.g. ``ONE``, the iteration counter)."""
        return self._aux_params

    def scale_learning_rate(self, *args, **kwargs):
        raise NotImplementedError(
            "Optimizer Need to Implement `scale_learning_rate` method.")

    @staticmethod
    def _refuse_lars(lars) -> None:
        if lars is not None:
            raise NotImplementedError(
                "optimizer: lars needs the Lars operator, which caffe2ops does not implement"
            )


def _current_device_or_cpu():
    dev = scope.current_device()
    return dev if dev is not None else core.DeviceOption(caffe2_pb2.CPU)


class SgdOptimizer(Optimizer):
    """``param += lr·grad`` with ``lr = -base_learning_rate·policy(iter)`` (or momentum)."""

    def __init__(self, base_learning_rate=0.01, policy="fixed", momentum=0.0, nesterov=1,
                 sparse_dedup_aggregator=None, lars=None, **kwargs) -> None:
        super().__init__()
        self._refuse_lars(lars)
        self.base_learning_rate = base_learning_rate
        self.policy = policy
        self.momentum = momentum
        self.nesterov = nesterov
        self.sparse_dedup_aggregator = sparse_dedup_aggregator
        self.lars = lars
        self.init_kwargs = kwargs

    def _run(self, net, param_init_net, param_info) -> None:
        param, grad = param_info.blob, param_info.grad
        if self.base_learning_rate == 0:
            return
        if not self.base_learning_rate > 0:
            raise AssertionError(
                f"Expect positive base learning rate, got {self.base_learning_rate}"
            )
        self._clear_local_lr_multiplier()
        # WeightedSum adds lr·grad, so lr is negative; the momentum ops subtract it.
        lr_sign = -1 if self.momentum else 1
        lr, _ = self.build_lr(net, param_init_net,
                              base_learning_rate=self.base_learning_rate * lr_sign,
                              policy=self.policy, **self.init_kwargs)
        dev = _current_device_or_cpu()
        one = param_init_net.ConstantFill(
            [], f"ONE_{dev.device_type}_{dev.device_id}{dev.node_name}", shape=[1], value=1.0
        )
        self._aux_params.shared.append(one)
        if self.momentum > 0:
            momentum_data = param_init_net.ConstantFill(
                param, str(param) + "_momentum", value=0.0
            )
            self._aux_params.local.append(momentum_data)
        if isinstance(grad, core.GradientSlice):
            grad = self.dedup(net, self.sparse_dedup_aggregator, grad)
            if self.momentum > 0.0:
                net.SparseMomentumSGDUpdate(
                    [grad.values, momentum_data, lr, param, grad.indices],
                    [grad.values, momentum_data, param],
                    momentum=self.momentum, nesterov=self.nesterov)
            else:
                net.ScatterWeightedSum([param, one, grad.indices, grad.values, lr], param)
        elif self.momentum > 0.0:
            net.MomentumSGDUpdate([grad, momentum_data, lr, param],
                                  [grad, momentum_data, param],
                                  momentum=self.momentum, nesterov=self.nesterov)
        else:
            net.WeightedSum([param, one, grad, lr], param)

    def scale_learning_rate(self, scale) -> None:
        self.base_learning_rate *= scale


class WeightDecayBuilder(Optimizer):
    """``grad = 1·grad + weight_decay·param`` (dense gradients only)."""

    def __init__(self, weight_decay) -> None:
        self.weight_decay = weight_decay

    def _run(self, net, param_init_net, param_info) -> None:
        dev = _current_device_or_cpu()
        one = param_init_net.ConstantFill(
            [], f"ONE_{dev.device_type}_{dev.device_id}", shape=[1], value=1.0
        )
        wd = param_init_net.ConstantFill(
            [], f"wd_{dev.device_type}_{dev.device_id}", shape=[1], value=self.weight_decay
        )
        if isinstance(param_info.grad, core.GradientSlice):
            raise ValueError("Weight decay does not yet support sparse gradients")
        net.WeightedSum([param_info.grad, one, param_info.blob, wd], param_info.grad)


FP16_ENGINES = ["SIMD_Q_FP16", "SIMD_Q_STOC_FP16", "SIMD_Q_STOC_MKL_FP16"]


def _first_dim_from_init_net(param_init_net, param) -> int | None:
    from caffe2ops import workspace

    shapes, _ = workspace.InferShapesAndTypes([param_init_net])
    shape = shapes.get(str(param))
    return shape[0] if shape else None


class AdagradOptimizer(Optimizer):
    """Adagrad: ``h += g²`` (``decay·h`` first for dense), ``param += lr·g/(√h + epsilon)``;
    ``rowWise`` keeps one average of ``g²`` per row of a sparse parameter."""

    def __init__(self, alpha=0.01, epsilon=1e-4, decay=1, policy="fixed",
                 sparse_dedup_aggregator=None, rowWise=False, engine="",  # noqa: N803
                 lars=None, output_effective_lr=False, output_effective_lr_and_update=False,
                 pruning_options=None, **kwargs) -> None:
        super().__init__()
        self._refuse_lars(lars)
        if pruning_options:
            raise NotImplementedError(
                "AdagradOptimizer: pruning_options need the Masked*Adagrad operators, which "
                "caffe2ops does not implement"
            )
        if engine in FP16_ENGINES:
            raise NotImplementedError(
                f"AdagradOptimizer: engine {engine} needs Float16ConstantFill, which caffe2ops "
                "does not implement"
            )
        self.alpha = alpha
        self.epsilon = epsilon
        self.decay = decay
        self.policy = policy
        self.sparse_dedup_aggregator = sparse_dedup_aggregator
        self.rowWise = rowWise  # noqa: N815 - Caffe2's attribute
        self.engine = engine
        self.lars = lars
        self.output_effective_lr = output_effective_lr
        self.output_effective_lr_and_update = output_effective_lr_and_update
        self.use_mask = False
        self.init_kwargs = kwargs

    def _squared_sum(self, param_init_net, param):
        if not self.rowWise:
            return param_init_net.ConstantFill([param], str(param) + "_squared_sum", value=0.0)
        rows = _first_dim_from_init_net(param_init_net, param)
        if rows is None:
            # Shape inference cannot see the parameter: size the state from it at run time.
            shape = param_init_net.Shape(param, str(param) + "_shape")
            num_rows = param_init_net.Slice([shape], str(shape) + "_numrows",
                                            starts=[0], ends=[1])
            return param_init_net.ConstantFill(num_rows, str(param) + "_avg_squared_sum",
                                               input_as_shape=1, value=0.0)
        return param_init_net.ConstantFill([], str(param) + "_avg_squared_sum",
                                           shape=[rows], value=0.0)

    def _run(self, net, param_init_net, param_info) -> None:
        param, grad = param_info.blob, param_info.grad
        if self.alpha <= 0:
            return
        self._clear_local_lr_multiplier()
        lr, _ = self.build_lr(net, param_init_net, base_learning_rate=self.alpha,
                              policy=self.policy, **self.init_kwargs)
        logger.info("Using engine %s for %s Adagrad", self.engine,
                    "rowWise" if self.rowWise else "regular")
        squared_sum = self._squared_sum(param_init_net, param)
        self._aux_params.local.append(squared_sum)
        if self.rowWise and not isinstance(grad, core.GradientSlice):
            raise AssertionError(
                "If SparseAdagrad with rowWise=True, gradient must be a gradientslice. "
                "PLease ensure that rowWise is not enabled for the dense Adagrad optimizer, "
                "as it is not supported."
            )
        if isinstance(grad, core.GradientSlice):
            if self.decay != 1.0:
                raise AssertionError(
                    "Decay is not implemented for SparseAdagrad and must be set to 1"
                )
            grad = self.dedup(net, self.sparse_dedup_aggregator, grad)
            op = "RowWiseSparseAdagrad" if self.rowWise else "SparseAdagrad"
            getattr(net, op)([param, squared_sum, grad.indices, grad.values, lr],
                             [param, squared_sum], epsilon=self.epsilon, engine=self.engine)
            return
        outputs = [param, squared_sum]
        if self.output_effective_lr_and_update:
            outputs += [str(param) + "_effective_lr", str(param) + "_update"]
        elif self.output_effective_lr:
            outputs.append(str(param) + "_effective_lr")
        net.Adagrad([param, squared_sum, grad, lr], outputs, epsilon=self.epsilon,
                    decay=float(self.decay), engine=self.engine)

    def scale_learning_rate(self, scale) -> None:
        self.alpha *= scale


class AdamOptimizer(Optimizer):
    """Adam with Caffe2's bias correction inside the operator (``Adam`` gets the iteration)."""

    def __init__(self, alpha=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8, policy="fixed",
                 use_lr_adaption=False, lr_alpha=0.01, normalized_lr_adaption=True,
                 sparse_dedup_aggregator=None, rowWise=False, engine="",  # noqa: N803
                 enableRAdam=False, **kwargs) -> None:  # noqa: N803
        super().__init__()
        self.alpha = alpha
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.policy = policy
        self.use_lr_adaption = use_lr_adaption
        self.lr_alpha = lr_alpha
        self.normalized_lr_adaption = normalized_lr_adaption
        self.sparse_dedup_aggregator = sparse_dedup_aggregator
        self.rowWise = rowWise  # noqa: N815 - Caffe2's attribute
        self.engine = engine
        self.enableRAdam = enableRAdam  # noqa: N815 - Caffe2's attribute
        self.init_kwargs = kwargs

    def _run(self, net, param_init_net, param_info) -> None:
        param, grad = param_info.blob, param_info.grad
        if self.alpha <= 0:
            return
        lr, iteration = self.build_lr(net, param_init_net, base_learning_rate=self.alpha,
                                      policy=self.policy, **self.init_kwargs)
        m1 = param_init_net.ConstantFill([param], param + "_first_moment", value=0.0)
        if self.rowWise:
            rows = _first_dim_from_init_net(param_init_net, param)
            if rows is None:
                raise KeyError(f"AdamOptimizer(rowWise): shape of '{param}' is not inferable")
            m2 = param_init_net.ConstantFill([], param + "_avg_second_moment", shape=[rows],
                                             value=0.0)
        else:
            m2 = param_init_net.ConstantFill([param], param + "_second_moment", value=0.0)
        self._aux_params.shared.append(iteration)
        self._aux_params.local.append(m1)
        self._aux_params.local.append(m2)
        if self.rowWise and not isinstance(grad, core.GradientSlice):
            raise AssertionError(
                "If SparseAdam with rowWise=True, gradient must be a gradientslice. PLease "
                "ensure that rowWise is not enabled for the dense Adam optimizer, as it is not "
                "supported."
            )
        outputs = [param, m1, m2]
        if self.use_lr_adaption:
            effective_grad = str(param) + "_effective_grad"
            outputs.append(effective_grad)
        if isinstance(grad, core.GradientSlice):
            grad = self.dedup(net, self.sparse_dedup_aggregator, grad)
            inputs = [param, m1, m2, grad.indices, grad.values, lr, iteration]
            if self.rowWise:
                if self.enableRAdam:
                    raise AssertionError("Currently, RowWiseSparseAdam is not supported by RAdam!")
                net.RowWiseSparseAdam(inputs, outputs, beta1=self.beta1, beta2=self.beta2,
                                      epsilon=self.epsilon)
            else:
                net.SparseAdam(inputs, outputs, beta1=self.beta1, beta2=self.beta2,
                               epsilon=self.epsilon, enableRAdam=self.enableRAdam)
            adapted = grad.values
        else:
            net.Adam([param, m1, m2, grad, lr, iteration], outputs, beta1=self.beta1,
                     beta2=self.beta2, epsilon=self.epsilon)
            adapted = grad
        if self.use_lr_adaption:
            net.LearningRateAdaption([lr, adapted, effective_grad], [lr],
                                     lr_alpha=self.lr_alpha,
                                     normalized_lr_adaption=self.normalized_lr_adaption)

    def scale_learning_rate(self, scale) -> None:
        self.alpha *= scale


def infer_blob_devices(net) -> dict:
    """``{blob: device option of the last op writing it}`` (Caffe2's
    ``core.InferBlobDevices``; an op without one gives an empty, i.e. CPU, option)."""
    mapping = {}
    for op in net.Proto().op:
        for blob in op.output:
            mapping[blob] = op.device_option
    return mapping


def _get_param_to_device(model) -> dict:
    param_to_device = infer_blob_devices(model.net)
    param_to_device.update(infer_blob_devices(model.param_init_net))
    return param_to_device


def get_lr_injection():
    """The current ``lr_injection`` multiplier (built with ``allow_lr_injection=True``)."""
    from caffe2ops import workspace

    return workspace.FetchBlob(_LEARNING_RATE_INJECTION)


def set_lr_injection(lr_injection_value) -> None:
    from caffe2ops import workspace

    workspace.FeedBlob(_LEARNING_RATE_INJECTION,
                       np.array([float(lr_injection_value)], dtype=np.float32))


def _calc_norm_ratio(model, params, name_scope, param_to_device, max_gradient_norm):
    with core.NameScope(name_scope):
        grad_squared_sums = []
        for i, param in enumerate(params):
            device = get_param_device(str(param.blob), param.grad, param_to_device)
            with core.DeviceScope(device):
                grad = (param.grad.values if isinstance(param.grad, core.GradientSlice)
                        else param.grad)
                squared_sum = model.net.SumSqrElements(grad, f"grad_{i}_squared_sum")
                grad_squared_sums.append(model.net.EnsureCPUOutput(squared_sum))
        with core.DeviceScope(core.DeviceOption(caffe2_pb2.CPU)):
            full_sum = model.net.Sum(grad_squared_sums, "grad_squared_full_sum")
            global_norm = model.net.Pow(full_sum, "global_norm", exponent=0.5)
            clip_norm = model.param_init_net.ConstantFill(
                [], "clip_norm", shape=[], value=float(max_gradient_norm)
            )
            max_norm = model.net.Max([global_norm, clip_norm], "max_norm")
            return model.net.Div([clip_norm, max_norm], "norm_ratio")


def _build(model, optimizer, weights_only=False, use_param_info_optim=True,
           max_gradient_norm=None, allow_lr_injection=False):
    param_to_device = _get_param_to_device(model)
    model.Validate()
    params = [
        info for info in model.GetOptimizationParamInfo()
        if not weights_only or info.blob in model.weights
    ]
    lr_multiplier = None
    if max_gradient_norm is not None:
        lr_multiplier = _calc_norm_ratio(model, params, "norm_clipped_grad_update",
                                         param_to_device, max_gradient_norm)
    if allow_lr_injection:
        if not model.net.BlobIsDefined(_LEARNING_RATE_INJECTION):
            lr_injection = model.param_init_net.ConstantFill(
                [], _LEARNING_RATE_INJECTION, shape=[1], value=1.0
            )
        else:
            lr_injection = _LEARNING_RATE_INJECTION
        if lr_multiplier is None:
            lr_multiplier = lr_injection
        else:
            lr_multiplier = model.net.Mul([lr_multiplier, lr_injection], "lr_multiplier",
                                          broadcast=1)
    optimizer.add_lr_multiplier(lr_multiplier)
    for info in params:
        device = get_param_device(str(info.blob), info.grad, param_to_device)
        with core.DeviceScope(device):
            if info.optimizer and use_param_info_optim:
                info.optimizer(model.net, model.param_init_net, info)
            else:
                optimizer(model.net, model.param_init_net, info)
    return optimizer


def add_weight_decay(model, weight_decay) -> None:
    """``grad += weight_decay·param`` for every weight (L2 regularization)."""
    _build(model, WeightDecayBuilder(weight_decay=weight_decay), weights_only=True,
           use_param_info_optim=False)


def build_sgd(model, base_learning_rate, max_gradient_norm=None, allow_lr_injection=False,
              **kwargs) -> SgdOptimizer:
    """Plain SGD (``momentum``/``nesterov``, ``policy`` and its arguments in ``kwargs``)."""
    return _build(model, SgdOptimizer(base_learning_rate, **kwargs),
                  max_gradient_norm=max_gradient_norm, allow_lr_injection=allow_lr_injection)


def build_adagrad(model, base_learning_rate, parameters=None, max_gradient_norm=None,
                  allow_lr_injection=False, **kwargs) -> AdagradOptimizer:
    """Adagrad, dense or sparse (``rowWise=True`` for row-wise sparse state)."""
    return _build(model, AdagradOptimizer(alpha=base_learning_rate, **kwargs),
                  max_gradient_norm=max_gradient_norm, allow_lr_injection=allow_lr_injection)


def build_adam(model, base_learning_rate, max_gradient_norm=None, allow_lr_injection=False,
               **kwargs) -> AdamOptimizer:
    """Adam (``beta1``, ``beta2``, ``epsilon``, ``rowWise`` for sparse gradients)."""
    return _build(model, AdamOptimizer(alpha=base_learning_rate, **kwargs),
                  max_gradient_norm=max_gradient_norm, allow_lr_injection=allow_lr_injection)
