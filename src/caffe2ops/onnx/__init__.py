"""ONNX export (NetDef -> ONNX) and import (ONNX -> NetDef) for the operators that map.

>>> import numpy as np
>>> from caffe2ops import core
>>> from caffe2ops.onnx import export_model
>>> net = core.Net("clip"); _ = net.Clip(["X"], ["Y"], min=0.0)
>>> model = export_model(None, net.Proto(), opset=13,
...                      value_info={"X": (np.dtype("float32"), (2, 3))})
>>> [(n.op_type, list(n.input)) for n in model.graph.node]
[('Clip', ['X', 'min__0', 'max__1'])]

Requires the ``onnx`` package (``pip install onnx``); onnxruntime is only used by the tests.
"""

from caffe2ops.onnx.export import (
    MAX_OPSET,
    MIN_OPSET,
    OnnxExportError,
    export_model,
    parse_value_info,
)
from caffe2ops.onnx.export_ops import mapped_types
from caffe2ops.onnx.import_ import OnnxImportError, import_model, supported_types

__all__ = ["MAX_OPSET", "MIN_OPSET", "OnnxExportError", "OnnxImportError", "export_model",
           "import_model", "mapped_types", "parse_value_info", "supported_types"]
