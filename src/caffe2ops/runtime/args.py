"""Turn a protobuf ``Argument`` list into Python values, checked against the schema.

Float arguments accept the ``f`` field or, unlike Caffe2 (which rejected ``min=0``), the ``i``
field. Values are kept as Python numbers; kernels round floats to the input's dtype.
"""

from __future__ import annotations

from typing import Any

from caffe2ops.errors import OperatorTypeError
from caffe2ops.runtime.schema import OpSchema


def _value(op_type: str, spec, arg) -> Any:
    kind = spec.kind
    has = arg.HasField
    if kind == "float":
        if has("f"):
            return float(arg.f)
        if has("i"):
            return float(arg.i)
    elif kind == "number":  # keeps the field's type: i -> int, f -> float
        if has("i"):
            return int(arg.i)
        if has("f"):
            return float(arg.f)
    elif kind in ("int", "bool"):
        if has("i"):
            return bool(arg.i) if kind == "bool" else int(arg.i)
        if has("f") and float(arg.f).is_integer():
            return bool(arg.f) if kind == "bool" else int(arg.f)
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
    set_fields = [f.name for f, _ in arg.ListFields() if f.name != "name"]
    raise OperatorTypeError(
        f"{op_type}: argument '{spec.name}' must be {kind}; its Argument has fields {set_fields}"
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
