"""The registry of Python functions behind ``Python`` operators (Caffe2's ``python_op`` tokens).

``register(f, grad_f)`` returns a token: ``f``'s ``__name__``, with ``:1``, ``:2``, ... appended
when taken, as Caffe2 named them. A ``Python`` operator carries the token in its ``token``
argument; its gradient function is registered under ``token + "_gradient"``.

>>> def double(inputs, outputs):
...     outputs[0].feed(inputs[0].data * 2)
>>> token = register(double)
>>> token.startswith("double"), lookup(token) is double
(True, True)
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from caffe2ops.errors import OperatorError

_functions: dict[str, Callable] = {}
_lock = threading.Lock()


def _build(f):
    """``(func, args, kwargs)`` builds the function locally, as Caffe2's builder tuples did."""
    if isinstance(f, tuple):
        if len(f) != 3:
            raise OperatorError("Python: a builder must be a tuple (func, args, kwargs)")
        func, args, kwargs = f
        return func(*args, **kwargs)
    return f


def register(f, grad_f=None, python_func_type=None) -> str:
    """Register ``f`` (and ``grad_f``) and return the token naming them."""
    if python_func_type is not None:
        instance = python_func_type(f)
        f, grad_f = instance.forward, instance.backward
    else:
        f, grad_f = _build(f), _build(grad_f) if grad_f is not None else None
    if not callable(f):
        raise OperatorError(f"Python: the forward function must be callable, got {type(f)}")
    if grad_f is not None and not callable(grad_f):
        raise OperatorError(f"Python: grad_f must be callable, got {type(grad_f)}")
    base = getattr(f, "__name__", type(f).__name__)
    with _lock:
        token, k = base, 0
        while token in _functions:
            k += 1
            token = f"{base}:{k}"
        _functions[token] = f
        if grad_f is not None:
            _functions[token + "_gradient"] = grad_f
    return token


def lookup(token: str) -> Callable:
    try:
        return _functions[token]
    except KeyError:
        raise OperatorError(
            f"Python operator for {token} is not available: register the function in this "
            "process (core.CreatePythonOperator or net.Python) before creating the operator"
        ) from None
