"""``brew``: helper functions that add a layer's operators and parameters to a ``ModelHelper``
(Caffe2's ``caffe2/python/brew.py`` and ``helpers/``).

Every helper is called as ``brew.<helper>(model, ...)``. Its keyword arguments are, in order of
precedence: those given in the call, those of the enclosing ``brew.arg_scope`` for that helper,
then the model's ``arg_scope`` (``order``, ``use_cudnn``, ``cudnn_exhaustive_search``) — all of
them for a helper taking ``**kwargs`` (they become operator arguments, as in Caffe2), only the
named ones otherwise.

>>> from caffe2ops import brew, model_helper
>>> model = model_helper.ModelHelper(name="brew_example")
>>> with brew.arg_scope([brew.fc], axis=1):
...     h = brew.fc(model, "x", "h", dim_in=4, dim_out=3)
>>> op = model.net.Proto().op[0]
>>> op.type, list(op.input), [a.name for a in op.arg]
('FC', ['x', 'h_w', 'h_b'], ['order', 'use_cudnn', 'cudnn_exhaustive_search', 'axis'])
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import functools
import inspect
import threading
from collections.abc import Callable, Iterator

from caffe2ops import core
from caffe2ops.modeling import initializers
from caffe2ops.modeling.parameter_info import ParameterTags
from caffe2ops.proto import caffe2_pb2

_scope_state = threading.local()


def get_current_scope() -> dict:
    """The current ``arg_scope`` arguments, ``{helper name: {argument: value}}`` (per thread)."""
    if not hasattr(_scope_state, "current_scope"):
        _scope_state.current_scope = {}
    return _scope_state.current_scope


@contextlib.contextmanager
def arg_scope(single_helper_or_list, **kwargs) -> Iterator[None]:
    """Inside the block, ``kwargs`` are default arguments of the given helper(s) (nested
    scopes add to the outer ones)."""
    helpers = single_helper_or_list
    if not isinstance(helpers, list):
        if not callable(helpers):
            raise AssertionError(
                "arg_scope is only supporting single or a list of helper functions."
            )
        helpers = [helpers]
    old_scope = copy.deepcopy(get_current_scope())
    for helper in helpers:
        if not callable(helper):
            raise AssertionError(
                "arg_scope is only supporting a list of callable helper functions."
            )
        get_current_scope().setdefault(helper.__name__, {}).update(kwargs)
    try:
        yield
    finally:
        _scope_state.current_scope = old_scope


_registry: dict[str, Callable] = {}


def _model_of(helper_name: str, args, kwargs):
    from caffe2ops.model_helper import ModelHelper

    if args and isinstance(args[0], ModelHelper):
        return args[0]
    if "model" in kwargs:
        return kwargs["model"]
    raise RuntimeError(
        f"brew.{helper_name}: the first input of a helper function should be the model, or "
        "give it as model=<your_model>."
    )


def _scoped(func: Callable) -> Callable:
    """``func`` with the model's and the current ``arg_scope``'s arguments filled in."""
    name = func.__name__
    spec = inspect.getfullargspec(func)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        model = _model_of(name, args, kwargs)
        new_kwargs = copy.deepcopy(model.arg_scope)
        if spec.varkw is None:
            new_kwargs = {k: v for k, v in new_kwargs.items() if k in spec.args}
        new_kwargs.update(get_current_scope().get(name, {}))
        new_kwargs.update(kwargs)
        return func(*args, **new_kwargs)

    return wrapper


def Register(helper: Callable) -> None:  # noqa: N802
    """Make ``helper`` available as ``brew.<its name>`` (names are unique)."""
    name = helper.__name__
    if name in _registry:
        raise AttributeError(f"Helper {name} already exists. Please change your helper name.")
    _registry[name] = helper
    if name not in globals():
        globals()[name] = _scoped(helper)


def has_helper(helper_or_helper_name) -> bool:
    name = helper_or_helper_name if isinstance(helper_or_helper_name, str) else (
        helper_or_helper_name.__name__
    )
    return name in _registry


def _helper(func: Callable) -> Callable:
    _registry[func.__name__] = func
    return _scoped(func)


# Helpers -------------------------------------------------------------------------------------


@_helper
def fc(model, blob_in, blob_out, dim_in, dim_out, weight_init=None, bias_init=None,
       WeightInitializer=None, BiasInitializer=None, enable_tensor_core=False,  # noqa: N803
       float16_compute=False, **kwargs):
    """``Y = X·Wᵀ + b``: creates ``<blob_out>_w`` (shape ``[dim_out, dim_in]``, tagged WEIGHT,
    ``XavierFill`` unless ``weight_init=(op, kwargs)``) and ``<blob_out>_b`` (``[dim_out]``,
    tagged BIAS, ``ConstantFill``), then adds ``FC([blob_in, w, b], blob_out, **kwargs)``.
    With ``model.init_params`` False the parameters are expected in the workspace."""
    weight_initializer = initializers.update_initializer(
        WeightInitializer, weight_init, ("XavierFill", {})
    )
    bias_initializer = initializers.update_initializer(
        BiasInitializer, bias_init, ("ConstantFill", {})
    )
    if not model.init_params:
        weight_initializer = initializers.ExternalInitializer()
        bias_initializer = initializers.ExternalInitializer()
    blob_out = blob_out or model.net.NextName()
    bias_tags = [ParameterTags.BIAS]
    if "freeze_bias" in kwargs:
        bias_tags.append(ParameterTags.COMPUTED_PARAM)
    weight = model.create_param(param_name=blob_out + "_w", shape=[dim_out, dim_in],
                                initializer=weight_initializer, tags=ParameterTags.WEIGHT)
    bias = model.create_param(param_name=blob_out + "_b", shape=[dim_out],
                              initializer=bias_initializer, tags=bias_tags)
    if enable_tensor_core:
        kwargs["engine"] = "TENSORCORE"
    if float16_compute:
        kwargs["float16_compute"] = True
    return model.net.FC([blob_in, weight, bias], blob_out, **kwargs)


@_helper
def relu(model, blob_in, blob_out, use_cudnn=False, order="NCHW", **kwargs):
    """``Relu(blob_in) -> blob_out`` with the ``order`` argument (engine ``CUDNN`` if
    ``use_cudnn``, which the model's default arg_scope turns on, as in Caffe2)."""
    if use_cudnn:
        kwargs["engine"] = "CUDNN"
    return model.net.Relu(blob_in, blob_out, order=order, **kwargs)


@_helper
def tanh(model, blob_in, blob_out, use_cudnn=False, order="NCHW", **kwargs):
    """``Tanh(blob_in) -> blob_out``, arguments as :func:`relu`."""
    if use_cudnn:
        kwargs["engine"] = "CUDNN"
    return model.net.Tanh(blob_in, blob_out, order=order, **kwargs)


@_helper
def sigmoid(model, blob_in, blob_out, **kwargs):
    """``Sigmoid(blob_in) -> blob_out``. Caffe2 1.5.0's brew had no sigmoid helper (scripts
    called ``model.net.Sigmoid``); this one adds the same operator with ``kwargs`` as its
    arguments (the model's arg_scope included, as for every ``**kwargs`` helper)."""
    return model.net.Sigmoid(blob_in, blob_out, **kwargs)


@_helper
def sum(model, blob_in, blob_out, **kwargs):  # noqa: A001 - Caffe2's name
    """``Sum(blob_in...) -> blob_out`` (elementwise sum of the inputs)."""
    return model.net.Sum(blob_in, blob_out, **kwargs)


@_helper
def transpose(model, blob_in, blob_out, use_cudnn=False, **kwargs):
    """``Transpose(blob_in) -> blob_out`` (engine ``CUDNN`` if ``use_cudnn``)."""
    if use_cudnn:
        kwargs["engine"] = "CUDNN"
    return model.net.Transpose(blob_in, blob_out, **kwargs)


@_helper
def iter(model, blob_out, **kwargs):  # noqa: A001 - Caffe2's name
    """An iteration counter: ``ConstantFill`` of an int64 ``[1]`` zero on the CPU in the init
    net, ``Iter(blob_out) -> blob_out`` in the net."""
    kwargs.pop("device_option", None)
    model.param_init_net.ConstantFill(
        [], blob_out, shape=[1], value=0, dtype=caffe2_pb2.TensorProto.INT64,
        device_option=core.DeviceOption(caffe2_pb2.CPU, 0), **kwargs,
    )
    return model.net.Iter(blob_out, blob_out, **kwargs)


def _weights_in_scope(model, namescope=None) -> list:
    namescope = core.CurrentNameScope() if namescope is None else namescope
    if namescope == "":
        return model.weights[:]
    return [w for w in model.weights if w.GetNameScope() == namescope]


@_helper
def add_weight_decay(model, weight_decay):
    """L2 regularization of the weights (after ``AddGradientOperators``):
    ``grad = 1·grad + weight_decay·param`` (``WeightedSum``) for every weight of the current
    name scope; ``wd`` and ``ONE`` are filled in the init net. Nothing for
    ``weight_decay <= 0``."""
    if weight_decay <= 0.0:
        return
    wd = model.param_init_net.ConstantFill([], "wd", shape=[1], value=weight_decay)
    one = model.param_init_net.ConstantFill([], "ONE", shape=[1], value=1.0)
    for param in _weights_in_scope(model):
        grad = model.param_to_grad[param]
        model.net.WeightedSum([grad, one, param, wd], grad)


def __getattr__(name: str):
    if name in _registry:
        return _scoped(_registry[name])
    raise AttributeError(f"Helper function {name} not registered.")


__all__ = builtins.list(_registry) + ["Register", "arg_scope", "get_current_scope", "has_helper"]
