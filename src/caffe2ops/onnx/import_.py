"""ONNX -> NetDef for the ONNX operators that map onto ours (opsets 9-21).

The initializers (and ``Constant`` nodes) become Caffe2 fillers in the init net:
``GivenTensorFill`` (float, with ``dtype`` for float64/float16), ``GivenTensorIntFill``,
``GivenTensorInt64Fill``, ``GivenTensorBoolFill``. Where our operator takes as an *argument* what
ONNX takes as an input (Clip's bounds, Pow's scalar exponent), that input must be a constant:
an initializer, a ``Constant`` node, or a graph input named in ``constant_inputs``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import onnx
import onnx.defs
import onnx.shape_inference
from onnx import helper, numpy_helper

from caffe2ops.errors import OperatorError
from caffe2ops.proto import caffe2_pb2
from caffe2ops.runtime.args import make_argument
from caffe2ops.runtime.tensor import DTYPE_TO_TP

MIN_OPSET = 9
# The ONNX operator versions read here; every one from opset 9 on differs from the one before
# only in the types it accepts (bfloat16, integers, optional/sequence for Identity), so a model
# of any opset from 9 to the newest listed maps. A later version must be read and added here.
KNOWN_VERSIONS = {
    "Clip": (6, 11, 12, 13), "ThresholdedRelu": (10, 22), "Cos": (7, 22), "Sum": (8, 13),
    "Div": (7, 13, 14), "Mul": (7, 13, 14), "Add": (7, 13, 14), "Sub": (7, 13, 14),
    "Pow": (7, 12, 13, 15), "Relu": (6, 13, 14), "Sigmoid": (6, 13), "Tanh": (6, 13),
    "Gemm": (9, 11, 13), "Gather": (1, 11, 13), "Identity": (1, 13, 14, 16, 19, 21, 23, 24, 25),
    "Constant": (9, 11, 12, 13, 19, 21, 23, 24, 25),
}


class OnnxImportError(OperatorError):
    """The ONNX model uses an operator, attribute or input form we cannot express."""


Importer = Callable[..., list]
IMPORTERS: dict[str, Importer] = {}


def importer(*onnx_types: str) -> Callable[[Importer], Importer]:
    def deco(fn: Importer) -> Importer:
        for t in onnx_types:
            IMPORTERS[t] = fn
        return fn

    return deco


def _check_version(node, opset: int) -> None:
    try:
        since = onnx.defs.get_schema(node.op_type, opset).since_version
    except onnx.defs.SchemaError:
        raise OnnxImportError(f"import-onnx: ONNX has no {node.op_type} at opset {opset}") \
            from None
    if since not in KNOWN_VERSIONS.get(node.op_type, ()):
        raise OnnxImportError(
            f"import-onnx: {node.op_type}-{since} (opset {opset}) is newer than the versions "
            f"mapped here ({', '.join(map(str, KNOWN_VERSIONS.get(node.op_type, ())))})")


def _shapes(model) -> dict[str, tuple]:
    """Static shapes ONNX's shape inference finds (``None`` dims for symbolic ones)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    g = inferred.graph
    out = {}
    for v in [*g.input, *g.value_info, *g.output]:
        if v.type.HasField("tensor_type") and v.type.tensor_type.HasField("shape"):
            out[v.name] = tuple(d.dim_value if d.HasField("dim_value") else None
                                for d in v.type.tensor_type.shape.dim)
    for t in g.initializer:
        out[t.name] = tuple(t.dims)
    return out


class ImportContext:
    def __init__(self, opset: int, constants: dict[str, np.ndarray], shapes: dict) -> None:
        self.opset = opset
        self.constants = constants
        self.shapes = shapes

    def constant(self, node, i: int, what: str) -> np.ndarray | None:
        """Input ``i`` of ``node`` as a constant array; None if omitted (``""`` or absent)."""
        if i >= len(node.input) or not node.input[i]:
            return None
        name = node.input[i]
        if name not in self.constants:
            raise OnnxImportError(
                f"import-onnx: {node.op_type} node '{node.name or node.output[0]}': its {what} "
                f"'{name}' must be a constant (an initializer, a Constant node, or a graph input "
                "passed in constant_inputs), because our operator takes it as an argument")
        return self.constants[name]


def _attr(node, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _op(op_type: str, inputs, outputs, **kwargs):
    op = caffe2_pb2.OperatorDef(type=op_type, input=list(inputs), output=list(outputs))
    for k, v in kwargs.items():
        op.arg.append(make_argument(k, v))
    return op


def _number(value: np.ndarray):
    """A 1-element constant as a Python number (int stays int)."""
    if value.size != 1:
        raise OnnxImportError(f"import-onnx: expected a 1-element constant, got shape "
                              f"{value.shape}")
    return value.reshape(()).item()


@importer("Clip")
def clip(ctx, node):
    args = {}
    if ctx.opset < 11:
        for key in ("min", "max"):
            value = _attr(node, key)
            if value is not None:
                args[key] = float(value)
    else:
        for i, key in ((1, "min"), (2, "max")):
            value = ctx.constant(node, i, f"bound '{key}'")
            if value is not None:
                args[key] = _number(value)
    return [_op("Clip", node.input[:1], node.output, **args)]


@importer("ThresholdedRelu")
def thresholded_relu(ctx, node):
    return [_op("ThresholdedRelu", node.input[:1], node.output,
                alpha=float(_attr(node, "alpha", 1.0)))]


@importer("Cos", "Relu", "Sigmoid", "Tanh")
def unary(ctx, node):
    return [_op(node.op_type, node.input[:1], node.output)]


@importer("Identity")
def identity(ctx, node):
    return [_op("Copy", node.input[:1], node.output)]


@importer("Sum")
def sum_(ctx, node):
    return [_op("Sum", node.input, node.output)]


@importer("Div", "Mul", "Add", "Sub")
def binary(ctx, node):
    """NumPy broadcasting, which our Div/Mul/Add/Sub follow with broadcast=0."""
    return [_op(node.op_type, node.input, node.output)]


@importer("Pow")
def pow_(ctx, node):
    """A scalar constant exponent -> argument ``exponent``; an exponent of X's shape, or of a
    suffix of it (NumPy's trailing alignment = Caffe2's broadcast=1, axis=-1), -> input 1."""
    exponent = ctx.constants.get(node.input[1])
    if exponent is not None and exponent.size == 1:
        return [_op("Pow", node.input[:1], node.output, exponent=float(_number(exponent)))]
    x_shape, e_shape = ctx.shapes.get(node.input[0]), ctx.shapes.get(node.input[1])
    if x_shape is not None and x_shape == e_shape and None not in x_shape:
        return [_op("Pow", node.input, node.output)]
    if x_shape and e_shape and None not in x_shape + e_shape and len(e_shape) <= len(x_shape) \
            and tuple(x_shape[len(x_shape) - len(e_shape):]) == tuple(e_shape):
        return [_op("Pow", node.input, node.output, broadcast=1, axis=-1)]
    raise OnnxImportError(
        f"import-onnx: Pow node '{node.name or node.output[0]}': exponent shape {e_shape} "
        f"must be X's {x_shape}, a trailing part of it, or one constant element")


@importer("Gemm")
def gemm(ctx, node):
    """Gemm(A, B, C) with alpha = beta = 1, transA = 0, transB = 1 and C of shape [N] -> FC."""
    c_shape = ctx.shapes.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    b_shape = ctx.shapes.get(node.input[1])
    if _attr(node, "alpha", 1.0) != 1.0 or _attr(node, "beta", 1.0) != 1.0 \
            or _attr(node, "transA", 0) or not _attr(node, "transB", 0) or b_shape is None \
            or c_shape != (b_shape[0],):
        raise OnnxImportError(
            f"import-onnx: Gemm node '{node.name or node.output[0]}': only alpha=beta=1, "
            f"transA=0, transB=1 with a bias C of shape [N] maps onto FC (got C {c_shape}, "
            f"B {b_shape})")
    return [_op("FC", node.input[:3], node.output)]


@importer("Gather")
def gather(ctx, node):
    if _attr(node, "axis", 0) != 0:
        raise OnnxImportError("import-onnx: Gather maps onto ours for axis=0 only")
    return [_op("Gather", node.input, node.output)]


def supported_types() -> list[str]:
    return sorted(IMPORTERS)


def _filler(name: str, value: np.ndarray):
    value = np.asarray(value)
    shape = list(value.shape)
    flat = value.ravel()
    if value.dtype == np.float32:
        return _op("GivenTensorFill", [], [name], values=flat.tolist(), shape=shape)
    if value.dtype in (np.float64, np.float16):
        return _op("GivenTensorFill", [], [name], values=flat.astype(np.float64).tolist(),
                   shape=shape, dtype=DTYPE_TO_TP[value.dtype])
    if value.dtype == np.int64:
        return _op("GivenTensorInt64Fill", [], [name], values=flat.tolist(), shape=shape)
    if value.dtype == np.int32:
        return _op("GivenTensorIntFill", [], [name], values=flat.tolist(), shape=shape)
    if value.dtype == np.bool_:
        return _op("GivenTensorBoolFill", [], [name], values=flat.astype(int).tolist(),
                   shape=shape)
    raise OnnxImportError(f"import-onnx: initializer '{name}' of dtype {value.dtype} has no "
                          "Caffe2 filler here")


def import_model(model: onnx.ModelProto, constant_inputs: Mapping[str, np.ndarray] | None = None,
                 name: str | None = None):
    """``(init_net, predict_net)`` NetDefs computing the ONNX ``model``.

    ``constant_inputs`` gives values for graph inputs that our operators take as arguments.
    Raises :class:`OnnxImportError` naming an unsupported operator and the supported ones.
    """
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None or opset < MIN_OPSET:
        raise OnnxImportError(f"import-onnx: the model's opset {opset} is older than "
                              f"{MIN_OPSET}, the first one read here")
    graph = model.graph
    for value in graph.input:
        if value.type.WhichOneof("value") != "tensor_type":
            raise OnnxImportError(f"import-onnx: graph input '{value.name}' is a "
                                  f"{value.type.WhichOneof('value')}, not a tensor")
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    constants.update({k: np.asarray(v) for k, v in (constant_inputs or {}).items()})
    for node in graph.node:
        if node.op_type not in IMPORTERS and node.op_type != "Constant":
            raise OnnxImportError(
                f"import-onnx: ONNX operator {node.op_type} (node "
                f"'{node.name or node.output[0]}') has no mapping; supported: "
                f"{', '.join(supported_types())}, Constant")
    for node in graph.node:
        _check_version(node, opset)
    ctx = ImportContext(opset, constants, _shapes(model))
    ops = []
    for node in graph.node:
        if node.op_type == "Constant":
            constants[node.output[0]] = numpy_helper.to_array(_attr(node, "value")) \
                if _attr(node, "value") is not None else _constant_value(node)
            continue
        ops += IMPORTERS[node.op_type](ctx, node)
    used = {b for op in ops for b in op.input}
    fed = set(constant_inputs or {})
    init_net = caffe2_pb2.NetDef(name=f"{name or graph.name or 'model'}_init")
    for blob, value in constants.items():
        if blob in used and blob not in fed:
            init_net.op.append(_filler(blob, value))
            init_net.external_output.append(blob)
    predict_net = caffe2_pb2.NetDef(name=name or graph.name or "model")
    predict_net.op.extend(ops)
    predict_net.external_input.extend(
        [i.name for i in graph.input if i.name not in constants or i.name in used])
    predict_net.external_input.extend([b for b in init_net.external_output
                                       if b not in predict_net.external_input])
    predict_net.external_output.extend(o.name for o in graph.output)
    return init_net, predict_net


def _constant_value(node) -> np.ndarray:
    for key, dtype in (("value_float", np.float32), ("value_int", np.int64),
                       ("value_floats", np.float32), ("value_ints", np.int64)):
        value = _attr(node, key)
        if value is not None:
            return np.asarray(value, dtype=dtype)
    raise OnnxImportError("import-onnx: a Constant node without a value attribute we read")
