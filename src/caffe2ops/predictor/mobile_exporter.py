"""``Export(workspace, net, params)``: a trained net as the ``(init_net, predict_net)`` pair a
``workspace.Predictor`` loads (Caffe2's ``caffe2/python/predictor/mobile_exporter.py``).

``init_net`` holds one ``GivenTensor*Fill`` per parameter with its current value from the
workspace (float32 -> ``GivenTensorFill``, int32 -> ``GivenTensorIntFill``, int64 ->
``GivenTensorInt64Fill``, uint8 -> ``GivenTensorByteStringToUInt8Fill`` with the bytes as one
string, bytes objects -> ``GivenTensorStringFill``), then a ``[1, 1]`` zero ``GivenTensorFill``
for each input blob, so that it exists. ``predict_net`` is ``net`` with the external inputs put
in the order inputs, then the net's other external inputs, and the external outputs set to the
blobs written but never read.

>>> import numpy as np
>>> from caffe2ops import core, workspace
>>> net = core.Net("mobile_exporter_example")
>>> _ = net.Clip(["x", ], ["y"], min=0.0)
>>> _ = workspace.FeedBlob("lo", np.zeros(2, dtype=np.float32))
>>> init_net, predict_net = Export(workspace, net, ["lo"])
>>> [(op.type, op.output[0]) for op in init_net.op]
[('GivenTensorFill', 'lo'), ('GivenTensorFill', 'x')]
>>> list(predict_net.external_input), list(predict_net.external_output)
(['x'], ['y'])
"""

from __future__ import annotations

import numpy as np

from caffe2ops import core
from caffe2ops.proto import caffe2_pb2
from caffe2ops.runtime.args import make_argument

_FILL_FOR_DTYPE = {
    np.dtype("float32"): "GivenTensorFill",
    np.dtype("int32"): "GivenTensorIntFill",
    np.dtype("int64"): "GivenTensorInt64Fill",
    np.dtype("uint8"): "GivenTensorByteStringToUInt8Fill",
    np.dtype("O"): "GivenTensorStringFill",
}


def add_tensor(net, name: str, blob: np.ndarray) -> None:
    """Append to ``net`` (a NetDef) the fill operator that recreates ``blob`` as ``name``."""
    blob = np.asarray(blob)
    if blob.dtype not in _FILL_FOR_DTYPE:
        raise TypeError(
            f"mobile_exporter: blob '{name}' has dtype {blob.dtype}; expected one of "
            f"{', '.join(str(d) for d in _FILL_FOR_DTYPE)}"
        )
    values = blob
    if blob.dtype == np.uint8:
        values = [blob.tobytes()]
    if blob.dtype == np.dtype("O"):
        for value in blob.flat:
            if not isinstance(value, bytes):
                raise TypeError(f"mobile_exporter: string blob '{name}' holds a non-bytes value")
    op = core.CreateOperator(
        _FILL_FOR_DTYPE[blob.dtype], [], [name],
        arg=[make_argument("shape", list(blob.shape)), make_argument("values", _listed(values))],
    )
    net.op.extend([op])


def _listed(values):
    if isinstance(values, np.ndarray):
        return values.reshape(-1).tolist()
    return list(values)


def blob_versions(proto) -> tuple[list[str], dict[str, int]]:
    """``(names read by the ops, {blob: number of writes})`` with every external input at 0
    (Caffe2's ``core.get_ssa`` as the exporter uses it)."""
    versions = {str(b): 0 for b in proto.external_input}
    read: list[str] = []
    for op in proto.op:
        if not proto.external_input:
            for b in op.input:
                versions.setdefault(b, 0)
        read += list(op.input)
        for b in op.output:
            versions[b] = versions.get(b, 0) + 1
    return read, versions


def Export(workspace, net, params):  # noqa: N802 - Caffe2's name
    """``(init_net, predict_net)`` NetDefs for ``workspace.Predictor``; ``params`` are the blobs
    whose current values go into ``init_net``."""
    proto = net if isinstance(net, caffe2_pb2.NetDef) else net.Proto()
    predict_net = caffe2_pb2.NetDef()
    predict_net.CopyFrom(proto)
    init_net = caffe2_pb2.NetDef()
    read, versions = blob_versions(proto)
    param_names = {str(p) for p in params}
    input_blobs = [b for b, v in versions.items() if v == 0 and b not in param_names]
    output_blobs = [b for b, v in versions.items() if v != 0 and b not in read]
    for blob_ref in params:
        add_tensor(init_net, str(blob_ref), workspace.FetchBlob(str(blob_ref)))
    for blob_name in input_blobs:
        init_net.op.extend([core.CreateOperator(
            "GivenTensorFill", [], [blob_name],
            arg=[make_argument("shape", [1, 1]), make_argument("values", [0.0])],
        )])
    del predict_net.external_input[:]
    external_inputs = list(input_blobs)
    for blob in proto.external_input:
        if blob not in external_inputs:
            external_inputs.append(blob)
    predict_net.external_input.extend(external_inputs)
    del predict_net.external_output[:]
    predict_net.external_output.extend(output_blobs)
    return init_net, predict_net
