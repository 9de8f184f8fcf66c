"""Turn a protobuf ``Argument`` list into Python values, checked against the schema.

Float arguments accept the ``f`` field or, unlike Caffe2 (which rejected ``min=0``), the ``i``
field. Values are kept as Python numbers; kernels round floats to the input's dtype. An
``Argument`` with two value fields set (``f`` and ``i``) is an error, and a bool argument takes
0 or 1 only.

Arguments the schema does not know: :func:`check_unknown` warns (:class:`UnknownArgumentWarning`,
naming the argument and the closest known names) or, in strict mode, raises. Strict mode is on
inside :func:`strict_args` or with ``CAFFE2OPS_STRICT_ARGS=1`` in the environment. Arguments
Caffe2 attaches to any operator (:data:`GENERIC_ARGS`: ``order``, ``use_cudnn``, ...) and the
arguments of gradient operators (copies of the forward operator's) are never reported. An
``engine`` this runtime does not know warns once per name (every engine runs the same kernels).
"""

from __future__ import annotations

import contextlib
import difflib
import os
import threading
import warnings
from collections.abc import Iterator
from typing import Any

from caffe2ops.errors import OperatorTypeError, OperatorValueError
from caffe2ops.runtime.schema import OpSchema

#: Arguments Caffe2's Python modules (model_helper/brew arg scopes, cnn, data_parallel_model,
#: optimizers) and its C++ base operator accept on any operator.
GENERIC_ARGS = frozenset({
    "order", "use_cudnn", "cudnn_exhaustive_search", "exhaustive_search", "ws_nbytes_limit",
    "deterministic", "float16_compute", "enable_tensor_core", "is_test", "engine", "net_pos",
    "shard_id", "rendezvous", "use_mkldnn", "training_mode", "legacy_pad", "debug_info",
    "allow_broadcast_fastpath", "__op_def_name__", "random_seed", "device_id", "stream_id",
})
#: Engines whose name this runtime accepts silently (it has one implementation per operator).
KNOWN_ENGINES = frozenset({
    "", "DEFAULT", "CUDNN", "EIGEN", "MKLDNN", "IDEEP", "NNPACK", "CUDA", "HIP", "MIOPEN",
    "SIMD", "BLOCK", "DEPTHWISE_3x3", "TENSORCORE", "ACCELERATOR", "OPENGL", "METAL",
})
_WARNED_ENGINES: set[str] = set()


class UnknownArgumentWarning(UserWarning):
    """An operator carries an argument its schema does not know (possibly a misspelling)."""


class _Strict(threading.local):
    on = False


_STRICT = _Strict()


@contextlib.contextmanager
def strict_args(enabled: bool = True) -> Iterator[None]:
    """Inside this block (this thread), an unknown argument raises instead of warning."""
    old = _STRICT.on
    _STRICT.on = bool(enabled)
    try:
        yield
    finally:
        _STRICT.on = old


def _strict() -> bool:
    return _STRICT.on or os.environ.get("CAFFE2OPS_STRICT_ARGS", "") not in ("", "0")


def check_unknown(schema: OpSchema, op_def) -> None:
    """Warn (or raise in strict mode) for each argument of ``op_def`` unknown to ``schema``;
    warn once per unknown ``engine``."""
    engine = op_def.engine
    if engine and engine not in KNOWN_ENGINES and engine not in _WARNED_ENGINES:
        _WARNED_ENGINES.add(engine)
        warnings.warn(
            f"{op_def.type}: engine '{engine}' is not known to caffe2ops; the default kernels "
            f"run (known engines: {', '.join(sorted(e for e in KNOWN_ENGINES if e))})",
            UnknownArgumentWarning, stacklevel=4,
        )
    if op_def.is_gradient_op:
        return  # a gradient op carries its forward op's arguments
    arg_map = schema.arg_map
    for arg in op_def.arg:
        name = arg.name
        if name in arg_map or name in GENERIC_ARGS:
            continue
        close = difflib.get_close_matches(name, list(arg_map), n=3, cutoff=0.5)
        known = ", ".join(f"'{n}'" for n in arg_map) or "none"
        hint = (f"did you mean {' or '.join(repr(c) for c in close)}? " if close else "")
        text = (f"{op_def.type}: unknown argument '{name}' (ignored); {hint}known arguments: "
                f"{known}")
        if _strict():
            raise OperatorValueError(text + " [strict mode: CAFFE2OPS_STRICT_ARGS]")
        warnings.warn(text, UnknownArgumentWarning, stacklevel=4)



def _value(op_type: str, spec, arg) -> Any:
    kind = spec.kind
    has = arg.HasField
    set_fields = [f.name for f, _ in arg.ListFields() if f.name != "name"]
    if len(set_fields) > 1:
        raise OperatorTypeError(
            f"{op_type}: argument '{spec.name}' has several value fields set {set_fields}; "
            "an Argument carries exactly one"
        )
    if kind == "float":
        if has("f"):
            return float(arg.f)
        if has("i"):  # kept exact (an integer Clip bound beyond 2**53)
            return int(arg.i)
    elif kind == "number":  # keeps the field's type: i -> int, f -> float
        if has("i"):
            return int(arg.i)
        if has("f"):
            return float(arg.f)
    elif kind == "bool":
        value = arg.i if has("i") else arg.f if has("f") else None
        if value in (0, 1):
            return bool(value)
    elif kind == "int":
        if has("i"):
            return int(arg.i)
        if has("f") and float(arg.f).is_integer():
            return int(arg.f)
    elif kind == "string":
        if has("s"):
            return arg.s.decode("utf-8")
    elif kind in ("floats", "ints", "strings"):
        # A list argument must not carry a single value or another kind of list (Caffe2 read
        # the repeated field only, so `shape="2x3"` silently became an empty shape).
        allowed = {"strings"} if kind == "strings" else {"floats", "ints"}
        if not any(f.name not in allowed | {"name"} for f, _ in arg.ListFields()):
            if kind == "strings":
                return [s.decode("utf-8") for s in arg.strings]
            if kind == "floats":
                if len(arg.floats) or not len(arg.ints):
                    return [float(v) for v in arg.floats]
                return [float(v) for v in arg.ints]
            if len(arg.ints) or not len(arg.floats):
                return [int(v) for v in arg.ints]
            if all(float(v).is_integer() for v in arg.floats):
                return [int(v) for v in arg.floats]
    raise OperatorTypeError(
        f"{op_type}: argument '{spec.name}' must be {kind}"
        + (" (0 or 1)" if kind == "bool" else "")
        + f"; its Argument has fields {set_fields}"
        + (f" = {getattr(arg, set_fields[0])!r}" if set_fields and set_fields[0] in "fi" else "")
    )


def parse_args(schema: OpSchema, op_type: str, arguments) -> dict[str, Any]:
    """``{name: value}`` for every schema argument (defaults filled in); unknown names ignored."""
    values = {a.name: a.default for a in schema.args}
    arg_map = schema.arg_map
    for arg in arguments:
        spec = arg_map.get(arg.name)
        if spec is not None:
            values[arg.name] = _value(op_type, spec, arg)
    if schema.check_args is not None:
        schema.check_args(op_type, values)
    return values


def make_argument(name: str, value: Any):
    """Caffe2's ``utils.MakeArgument``: the field follows the Python type of ``value``."""
    import numpy as np

    from caffe2ops.proto import caffe2_pb2

    arg = caffe2_pb2.Argument(name=name)
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int):
        arg.i = int(value)
    elif isinstance(value, float):
        arg.f = value
    elif isinstance(value, str):
        arg.s = value.encode("utf-8")
    elif isinstance(value, bytes):
        arg.s = value
    elif isinstance(value, caffe2_pb2.NetDef):
        arg.n.CopyFrom(value)
    elif isinstance(value, list | tuple):
        items = [v.item() if isinstance(v, np.generic) else v for v in value]
        if all(isinstance(v, float) for v in items):
            arg.floats.extend(items)
        elif all(isinstance(v, bool | int) for v in items):
            arg.ints.extend(int(v) for v in items)
        elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in items):
            arg.floats.extend(float(v) for v in items)
        elif all(isinstance(v, str | bytes) for v in items):
            arg.strings.extend(v.encode("utf-8") if isinstance(v, str) else v for v in items)
        elif all(isinstance(v, caffe2_pb2.NetDef) for v in items):
            arg.nets.extend(items)
        else:
            raise TypeError(f"argument {name!r}: cannot store a list of mixed types {value!r}")
    else:
        raise TypeError(f"argument {name!r}: unsupported type {type(value).__name__}")
    return arg
