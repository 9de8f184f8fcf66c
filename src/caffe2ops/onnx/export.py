"""NetDef -> ONNX: shapes from ``workspace.InferShapesAndTypes``, one table entry per operator.

The predict net is never run. The init net is run once, in a scratch workspace, because its
outputs *are* the parameters: they become the model's initializers. Graph inputs (external
inputs that no initializer provides) need a dtype and shape, given as ``value_info``; every
other shape comes from the schemas' shape inference.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import numpy as np
import onnx
from onnx import helper, numpy_helper

from caffe2ops import workspace
from caffe2ops.errors import OperatorError
from caffe2ops.onnx import export_ops
from caffe2ops.runtime.args import parse_args
from caffe2ops.runtime.net import final_outputs, free_inputs
from caffe2ops.runtime.schema import get_schema
from caffe2ops.runtime.tensor import DTYPE_TO_TP, dtype_from_tp

MIN_OPSET, MAX_OPSET = 9, 21


class OnnxExportError(OperatorError):
    """The net cannot be written as ONNX (no mapping, an unknown shape, a bad option)."""


def parse_value_info(spec: Mapping[str, str]) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    """``{"X": "float32:2,3"}`` -> ``{"X": (float32, (2, 3))}``; ``"float32:"`` is a scalar.

    >>> parse_value_info({"X": "float32:2,3", "i": "int64:"})
    {'X': (dtype('float32'), (2, 3)), 'i': (dtype('int64'), ())}
    """
    out = {}
    for name, text in spec.items():
        dtype_text, sep, dims = text.partition(":")
        try:
            dtype = np.dtype(dtype_text)
            shape = tuple(int(d) for d in dims.split(",") if d.strip()) if sep else None
        except (TypeError, ValueError):
            shape = None
        if not sep or shape is None or any(d < 0 for d in shape):
            raise OnnxExportError(
                f"export-onnx: --value-info {name}={text!r} must be NAME=dtype:shape, e.g. "
                f"{name}=float32:2,3 (or {name}=float32: for a scalar)")
        out[name] = (dtype, shape)
    return out


class ExportContext:
    """What an exporter entry sees: the opset, blob shapes/dtypes, and node/constant makers."""

    def __init__(self, opset: int, shapes: dict, dtypes: dict) -> None:
        self.opset = opset
        self.shapes = shapes
        self.dtypes = dtypes
        self.nodes: list = []
        self.initializers: list = []
        self._names: set[str] = set(shapes)
        self._counter = itertools.count()
        self.op_index = 0

    def fresh(self, hint: str) -> str:
        while True:
            name = f"{hint}__{next(self._counter)}"
            if name not in self._names:
                self._names.add(name)
                return name

    def shape(self, blob: str) -> tuple[int, ...]:
        if blob not in self.shapes:
            raise OnnxExportError(
                f"export-onnx: the shape of blob '{blob}' could not be inferred; give it with "
                f"--value-info {blob}=dtype:shape")
        return tuple(self.shapes[blob])

    def dtype(self, blob: str) -> np.dtype:
        if blob not in self.dtypes:
            raise OnnxExportError(f"export-onnx: the dtype of blob '{blob}' is unknown; give it "
                                  f"with --value-info {blob}=dtype:shape")
        return self.dtypes[blob]

    def const(self, hint: str, value, dtype=None) -> str:
        """An initializer holding ``value`` (as ``dtype``); its name."""
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def node(self, op_type: str, inputs, outputs=None, **attrs) -> str:
        """Append an ONNX node; its first output (a fresh name unless given)."""
        outputs = list(outputs) if outputs else [self.fresh(op_type.lower())]
        self.nodes.append(helper.make_node(op_type, list(inputs), outputs, **attrs))
        return outputs[0]

    def reshape(self, blob: str, shape, output: str | None = None) -> str:
        shape_name = self.const("shape", list(shape), np.int64)
        return self.node("Reshape", [blob, shape_name], [output] if output else None)

    def unsupported(self, op, why: str) -> OnnxExportError:
        return OnnxExportError(f"export-onnx: operator #{self.op_index} {op.type}: {why}")


def _run_init_net(init_net) -> dict[str, np.ndarray]:
    previous = workspace.CurrentWorkspace()
    workspace.SwitchWorkspace("caffe2ops_onnx_export", True)
    workspace.ResetWorkspace()
    try:
        workspace.RunNetOnce(init_net)
        return {name: workspace.FetchBlob(name) for name in workspace.Blobs()}
    finally:
        workspace.ResetWorkspace()
        workspace.SwitchWorkspace(previous)


def _infer(predict_net, params: dict, value_info: dict):
    previous = workspace.CurrentWorkspace()
    workspace.SwitchWorkspace("caffe2ops_onnx_export", True)
    workspace.ResetWorkspace()
    try:
        for name, value in params.items():
            workspace.FeedBlob(name, value)
        dims = {k: list(shape) for k, (_, shape) in value_info.items()}
        types = {k: DTYPE_TO_TP[np.dtype(dtype)] for k, (dtype, _) in value_info.items()}
        shapes, codes = workspace.InferShapesAndTypes([predict_net], dims, types)
    finally:
        workspace.ResetWorkspace()
        workspace.SwitchWorkspace(previous)
    dtypes = {k: dtype_from_tp(v) for k, v in codes.items() if v}
    return {k: tuple(v) for k, v in shapes.items()}, dtypes


def onnx_tp(dtype) -> int:
    """ONNX's TensorProto data type of a NumPy dtype (not Caffe2's codes, which differ)."""
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def export_model(init_net, predict_net, opset: int | None = None,
                 value_info: Mapping | None = None, name: str | None = None) -> onnx.ModelProto:
    """An ONNX model computing ``predict_net`` with ``init_net``'s outputs as initializers.

    ``value_info`` maps graph inputs to ``(dtype, shape)`` (see :func:`parse_value_info`); a
    blob named there is a graph input even if the init net fills it (``mobile_exporter.Export``
    writes a placeholder for every non-parameter input, as Caffe2's did). Raises
    :class:`OnnxExportError` naming the first operator without a mapping for ``opset`` and the
    operators that have one.
    """
    opset = MAX_OPSET if opset is None else int(opset)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise OnnxExportError(
            f"export-onnx: --opset must be in [{MIN_OPSET}, {MAX_OPSET}]; got {opset}")
    for idx, op in enumerate(predict_net.op):  # every operator is checked before any work
        export_ops.lookup(op.type, opset, idx)
    params = _run_init_net(init_net) if init_net is not None and len(init_net.op) else {}
    value_info = dict(value_info or {})
    read = free_inputs(predict_net)
    params = {k: v for k, v in params.items() if k in read and k not in value_info}
    graph_inputs = [b for b in (list(predict_net.external_input) or read) if b not in params]
    missing = [b for b in graph_inputs if b not in value_info]
    if missing:
        raise OnnxExportError(
            f"export-onnx: graph input(s) {', '.join(missing)} need a dtype and shape: pass "
            + " ".join(f"--value-info {b}=float32:2,3" for b in missing) + " (your shapes)")
    shapes, dtypes = _infer(predict_net, params, value_info)
    ctx = ExportContext(opset, shapes, dtypes)
    for idx, op in enumerate(predict_net.op):
        ctx.op_index = idx
        schema = get_schema(op.type)
        args = parse_args(schema, op.type, op.arg)
        export_ops.lookup(op.type, opset, idx)(ctx, op, args)
    outputs = list(predict_net.external_output) or final_outputs(predict_net)
    inputs = [helper.make_tensor_value_info(b, onnx_tp(value_info[b][0]), value_info[b][1])
              for b in graph_inputs]
    output_infos = []
    for b in outputs:
        if b not in dtypes:
            raise OnnxExportError(f"export-onnx: the dtype of output '{b}' could not be "
                                  "inferred from the schemas")
        output_infos.append(helper.make_tensor_value_info(b, onnx_tp(dtypes[b]),
                                                          shapes.get(b)))
    initializers = [numpy_helper.from_array(np.ascontiguousarray(v), k) for k, v in
                    params.items()]
    graph = helper.make_graph(ctx.nodes, name or predict_net.name or "caffe2ops", inputs,
                              output_infos, initializer=initializers + ctx.initializers)
    opset_ids = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opset_ids, producer_name="caffe2ops")
    model.ir_version = helper.find_min_ir_version_for(opset_ids)
    return model
