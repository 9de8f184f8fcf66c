"""Parameter initializers (Caffe2's ``caffe2/python/modeling/initializers.py``): an initializer
adds the operator that creates a parameter to the init net and returns its ``ParameterInfo``.

>>> from caffe2ops import core
>>> init_net = core.Net("initializers_example")
>>> info = Initializer("ConstantFill", value=0.5).create_param(
...     core.BlobReference("b"), init_net, shape=[2])
>>> op = init_net.Proto().op[0]
>>> op.type, list(op.output), [a.name for a in op.arg]
('ConstantFill', ['b'], ['shape', 'value'])
>>> ExternalInitializer().create_param("w", init_net, shape=[2]).name
'w'
"""

from __future__ import annotations

from caffe2ops import core
from caffe2ops.modeling.parameter_info import ParameterInfo


class Initializer:
    """Creates the parameter with operator ``operator_name`` (``shape=`` plus ``kwargs``) in the
    init net, output named ``param_name``."""

    def __init__(self, operator_name: str | None = None, **kwargs) -> None:
        self.operator_name = operator_name
        self.operator_kwargs = kwargs

    def update(self, operator_name: str, kwargs: dict) -> None:
        if self.operator_name is not None:
            raise Exception("Operator name overwrites are not allowed")
        self.operator_name = operator_name
        self.operator_kwargs = kwargs

    def create_param(self, param_name, init_net, shape) -> ParameterInfo:
        param = getattr(init_net, self.operator_name)(
            [], param_name, shape=shape, **self.operator_kwargs
        )
        return ParameterInfo(param_id=None, param=param, shape=shape)


class ExternalInitializer:
    """Adds no operator: the parameter is expected in the workspace when the init net runs."""

    def create_param(self, param_name, init_net, shape) -> ParameterInfo:
        if isinstance(param_name, core.BlobReference):
            param = core.BlobReference(str(param_name), init_net)
        elif isinstance(param_name, str):
            param = core.ScopedBlobReference(param_name, init_net)
        else:
            raise TypeError(
                f"ExternalInitializer: param_name must be a str or BlobReference, got "
                f"{type(param_name).__name__}"
            )
        return ParameterInfo(param_id=None, param=param, shape=shape)


def update_initializer(initializer_class, operator_name_and_kwargs,
                       default_operator_name_and_kwargs):
    """An initializer instance: ``initializer_class`` (default :class:`Initializer`) built from
    ``operator_name_and_kwargs`` (``(op_type, kwargs)``), else from the default pair.

    >>> init = update_initializer(None, None, ("XavierFill", {}))
    >>> init.operator_name, init.operator_kwargs
    ('XavierFill', {})
    """
    name, kwargs = operator_name_and_kwargs or default_operator_name_and_kwargs
    return (initializer_class or Initializer)(name, **kwargs)
