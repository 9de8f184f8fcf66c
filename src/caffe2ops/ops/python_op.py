"""Python and PythonGradient (Caffe2 ``caffe2/python/pybind_state.h`` ``PythonOp``).

A ``Python`` operator calls a registered Python function ``f(inputs, outputs)`` where both are
lists of :class:`TensorView`: ``.data`` is the blob's NumPy array (writable: writing an input's
``data`` changes that blob, as in Caffe2), ``.shape``, ``.fetch()`` a copy, ``.feed(arr)`` replaces
an output's content, ``.reshape(shape)`` resizes it (new memory is zeroed; Caffe2 left it
uninitialized; an empty output is float32). The function is found by the ``token`` argument
(:mod:`caffe2ops.runtime.python_functions`). Exceptions from ``f`` become ``OperatorError``.

The gradient is ``PythonGradient`` running ``grad_f`` with inputs ``[X..., Y..., dY...]`` and
outputs ``[dX...]``; ``grad_output_indices`` / ``grad_input_indices`` choose subsets of dY / dX.
Not supported (raise at creation): ``pass_workspace=True`` and ``pickled_builder`` (a NetDef
carrying pickled code; build the function in-process with ``net.Python((func, args, kwargs))``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from caffe2ops.errors import OperatorError
from caffe2ops.runtime import python_functions
from caffe2ops.runtime.schema import Arg, OpSchema, register

_MANY = 1 << 30


class TensorView:
    """One blob as a Python operator's function sees it (Caffe2's ``TensorCPU``)."""

    __slots__ = ("_value",)

    def __init__(self, value: Any) -> None:
        self._value = value

    @property
    def data(self) -> np.ndarray:
        if self._value is None or not isinstance(self._value, np.ndarray):
            self._value = np.zeros((0,), np.float32) if self._value is None else self._value
        return self._value

    @property
    def shape(self) -> tuple[int, ...]:
        value = self._value
        return (0,) if value is None else tuple(np.shape(value))

    @property
    def _shape(self) -> list[int]:
        return list(self.shape)

    def fetch(self) -> Any:
        value = self.data
        return value.copy() if isinstance(value, np.ndarray) else value

    def feed(self, arr) -> bool:
        value = np.array(arr, copy=True)
        self._value = value.astype(object) if value.dtype.kind in "SU" else value
        return True

    def reshape(self, shape) -> None:
        shape = tuple(int(d) for d in shape)
        if any(d < 0 for d in shape):
            raise OperatorError(f"Python: cannot reshape an output to {shape}")
        old = self._value if isinstance(self._value, np.ndarray) else None
        if old is not None and old.size == int(np.prod(shape)):
            self._value = old.reshape(shape)
        else:
            self._value = np.zeros(shape, old.dtype if old is not None else np.float32)

    def init(self, dims, caffe2_type: int) -> None:
        from caffe2ops.runtime.tensor import dtype_from_tp

        self._value = np.zeros(tuple(int(d) for d in dims), dtype_from_tp(caffe2_type))


def _call(op, token: str, inputs, outs) -> list:
    f = python_functions.lookup(token)
    input_views = [TensorView(x) for x in inputs]
    output_views = [TensorView(x) for x in outs]
    try:
        f(input_views, output_views)
    except Exception as exc:
        raise OperatorError(
            f"{op.type}: exception in Python function '{token}': {type(exc).__name__}: {exc}"
        ) from exc
    return [v.data for v in output_views]


def _run_python(op, inputs, outs) -> list:
    return _call(op, op.args["token"], inputs, outs)


def _run_python_gradient(op, inputs, outs) -> list:
    return _call(op, op.args["token"] + "_gradient", inputs, outs)


def _check_args(op_type: str, values: dict) -> None:
    if values["pickled_builder"] or values["pickled_grad_builder"]:
        raise OperatorError(
            f"{op_type}: 'pickled_builder' is not supported (it would unpickle code from a "
            "NetDef); register the function in-process with net.Python((func, args, kwargs))"
        )
    if values["pass_workspace"]:
        raise OperatorError(f"{op_type}: pass_workspace=True is not supported by caffe2ops")
    if not values["token"]:
        raise OperatorError(f"{op_type}: argument 'token' is required (the registered function)")
    suffix = "_gradient" if op_type == "PythonGradient" else ""
    python_functions.lookup(values["token"] + suffix)


def _python_gradient(ctx) -> list:
    n_in, n_out = len(ctx.def_.input), len(ctx.def_.output)
    go_indices = ctx.arg("grad_output_indices") or list(range(n_out))
    gi_indices = ctx.arg("grad_input_indices") or list(range(n_in))
    grads = []
    for j in go_indices:
        if ctx.GO(j) is None:
            raise OperatorError(
                f"Python: the gradient of output {j} ('{ctx.def_.output[j]}') is needed by "
                "grad_f; pass grad_output_indices to choose the outputs with gradients"
            )
        grads.append(ctx.GO(j))
    inputs = [ctx.I(i) for i in range(n_in)] + [ctx.O(j) for j in range(n_out)] + grads
    return [ctx.op("PythonGradient", inputs, [ctx.GI(i) for i in gi_indices])]


class _AnyPair(frozenset):
    """Caffe2's Python schema allows every in-place pair."""

    def __contains__(self, pair: object) -> bool:
        return True


_ARGS = (
    Arg("token", "string", "", "the registered function's token"),
    Arg("pass_workspace", "bool", False, "unsupported: pass the workspace to the function"),
    Arg("pickled_builder", "string", "", "unsupported: a pickled (func, args, kwargs) builder"),
    Arg("pickled_grad_builder", "string", "", "unsupported: the gradient's pickled builder"),
    Arg("grad_output_indices", "ints", None, "outputs whose gradients grad_f receives"),
    Arg("grad_input_indices", "ints", None, "inputs whose gradients grad_f produces"),
)

for _schema in (
    OpSchema(
        type="Python", kernel=_run_python, num_inputs=(0, _MANY), num_outputs=(0, _MANY),
        args=_ARGS, check_args=_check_args, gradient=_python_gradient,
        doc="Run a registered Python function f(inputs, outputs) over the blobs.",
    ),
    OpSchema(
        type="PythonGradient", kernel=_run_python_gradient, num_inputs=(0, _MANY),
        num_outputs=(0, _MANY), args=_ARGS, check_args=_check_args,
        doc="Run the gradient function registered with a Python operator's token.",
    ),
):
    register(_schema)
    _schema.allow_inplace = _AnyPair()
