"""Caffe2's protobuf messages: field numbers, hand-encoded wire bytes, text format, round trips.

Field numbers are those of ``caffe2/proto/caffe2.proto`` (shared/reference/caffe2-proto-fields.md);
bytes below are encoded by hand from them, so they are what Caffe2 itself writes.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
from google.protobuf import text_format

from caffe2ops import core, workspace
from caffe2ops.proto import caffe2_pb2

FIELDS = {
    "TensorProto": {"dims": 1, "data_type": 2, "float_data": 3, "int32_data": 4, "byte_data": 5,
                    "string_data": 6, "name": 7, "device_detail": 8, "double_data": 9,
                    "int64_data": 10, "segment": 11},
    "TensorProtos": {"protos": 1},
    "Argument": {"name": 1, "f": 2, "i": 3, "s": 4, "floats": 5, "ints": 6, "strings": 7,
                 "n": 8, "nets": 9},
    "DeviceOption": {"device_type": 1, "device_id": 2, "random_seed": 3, "node_name": 4,
                     "numa_node_id": 5, "extra_info": 6},
    "OperatorDef": {"input": 1, "output": 2, "name": 3, "type": 4, "arg": 5, "device_option": 6,
                    "engine": 7, "control_input": 8, "is_gradient_op": 9, "debug_info": 10},
    "NetDef": {"name": 1, "op": 2, "type": 3, "num_workers": 4, "device_option": 5, "arg": 6,
               "external_input": 7, "external_output": 8, "profile": 9},
    "PlanDef": {"name": 1, "network": 2, "execution_step": 3},
    "ExecutionStep": {"name": 1, "substep": 2, "network": 3, "num_iter": 4,
                      "criteria_network": 5, "concurrent_substeps": 6, "report_net": 7,
                      "report_interval": 8, "should_stop_blob": 9, "only_once": 10,
                      "run_every_ms": 11, "create_workspace": 12,
                      "num_concurrent_instances": 13},
    "BlobProto": {"name": 1, "type": 2, "tensor": 3, "content": 4, "qtensor": 5,
                  "content_num_chunks": 6, "content_chunk_id": 7},
}
DATA_TYPES = {"UNDEFINED": 0, "FLOAT": 1, "INT32": 2, "BYTE": 3, "STRING": 4, "BOOL": 5,
              "UINT8": 6, "INT8": 7, "UINT16": 8, "INT16": 9, "INT64": 10, "FLOAT16": 12,
              "DOUBLE": 13}


pytestmark = pytest.mark.usefixtures("fresh_workspace")


# ---- wire encoding helpers (proto2) -----------------------------------------------------------


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(field: int, wire: int) -> bytes:
    return varint(field << 3 | wire)


def ld(field: int, payload: bytes | str) -> bytes:  # length-delimited (wire type 2)
    if isinstance(payload, str):
        payload = payload.encode()
    return key(field, 2) + varint(len(payload)) + payload


def vi(field: int, value: int) -> bytes:  # varint (wire type 0)
    return key(field, 0) + varint(value)


def f32(field: int, value: float) -> bytes:  # fixed32 (wire type 5)
    return key(field, 5) + struct.pack("<f", value)


# ---- field numbers ----------------------------------------------------------------------------


@pytest.mark.parametrize("message", sorted(FIELDS))
def test_field_numbers_are_caffe2s(message):
    desc = getattr(caffe2_pb2, message).DESCRIPTOR
    got = {f.name: f.number for f in desc.fields}
    assert got == FIELDS[message]


def test_enums_are_caffe2s():
    dt = caffe2_pb2.TensorProto.DataType
    assert {name: dt.Value(name) for name in DATA_TYPES} == DATA_TYPES
    assert caffe2_pb2.CPU == 0 and caffe2_pb2.CUDA == 1
    assert caffe2_pb2.MKLDNN == 2 and caffe2_pb2.OPENGL == 3
    assert caffe2_pb2.ONLY_FOR_TEST == 20901701
    assert caffe2_pb2.DESCRIPTOR.package == "caffe2"
    assert caffe2_pb2.OperatorDef.DESCRIPTOR.full_name == "caffe2.OperatorDef"


def test_proto2_defaults():
    assert caffe2_pb2.TensorProto().data_type == caffe2_pb2.TensorProto.FLOAT
    assert caffe2_pb2.DeviceOption().numa_node_id == -1
    assert caffe2_pb2.DeviceOption().device_type == caffe2_pb2.CPU
    op = caffe2_pb2.OperatorDef()
    assert op.is_gradient_op is False and not op.HasField("is_gradient_op")


def test_device_id_is_field_2_and_cuda_gpu_id_alias():
    raw = vi(1, 1) + vi(2, 3)  # device_type = CUDA, field 2 = 3
    option = caffe2_pb2.DeviceOption.FromString(raw)
    assert option.device_type == caffe2_pb2.CUDA and option.device_id == 3
    assert caffe2_pb2.DeviceOption.DESCRIPTOR.fields_by_number[2].name == "device_id"
    made = core.DeviceOption(caffe2_pb2.CUDA, cuda_gpu_id=3)
    assert made.SerializeToString() == raw
    assert core.DeviceOption(caffe2_pb2.CUDA, 3).SerializeToString() == raw


# ---- hand-encoded messages --------------------------------------------------------------------


def clip_operator_bytes() -> bytes:
    arg_min = ld(1, "min") + f32(2, -0.5)
    arg_max = ld(1, "max") + f32(2, 0.75)
    arg_i = ld(1, "use_max_norm") + vi(3, 1)
    device = vi(1, 0) + vi(2, 0) + vi(3, 7) + ld(4, "node0")
    return (ld(1, "X") + ld(2, "Y") + ld(3, "clip1") + ld(4, "Clip") + ld(5, arg_min)
            + ld(5, arg_max) + ld(5, arg_i) + ld(6, device) + ld(7, "ENGINE")
            + ld(8, "ctrl") + vi(9, 1) + ld(10, "clip at line 3"))


def test_hand_encoded_operator_def_parses():
    op = caffe2_pb2.OperatorDef.FromString(clip_operator_bytes())
    assert list(op.input) == ["X"] and list(op.output) == ["Y"]
    assert op.name == "clip1" and op.type == "Clip" and op.engine == "ENGINE"
    assert [a.name for a in op.arg] == ["min", "max", "use_max_norm"]
    assert op.arg[0].f == -0.5 and op.arg[1].f == 0.75 and op.arg[2].i == 1
    assert op.arg[0].HasField("f") and not op.arg[0].HasField("i")
    assert op.device_option.random_seed == 7 and op.device_option.node_name == "node0"
    assert list(op.control_input) == ["ctrl"]
    assert op.is_gradient_op is True and op.debug_info == "clip at line 3"


def test_operator_def_serializes_to_caffe2_bytes():
    op = core.CreateOperator("Clip", ["X"], ["Y"], name="clip1", min=-0.5, max=0.75,
                             use_max_norm=True, engine="ENGINE", control_input=["ctrl"],
                             device_option=core.DeviceOption(caffe2_pb2.CPU, 0, 7, "node0"),
                             debug_info="clip at line 3")
    op.is_gradient_op = True
    assert op.SerializeToString(deterministic=True) == clip_operator_bytes()


def test_hand_encoded_operator_runs():
    workspace.FeedBlob("X", np.array([-2.0, 0.25, 2.0], np.float32))
    assert workspace.RunOperatorOnce(clip_operator_bytes())
    np.testing.assert_array_equal(workspace.FetchBlob("Y"), [-0.5, 0.25, 0.75])


def test_repeated_scalars_parse_packed_and_unpacked():
    """proto2 repeated scalars are written unpacked by Caffe2; parsers accept both forms."""
    unpacked = ld(1, "shape") + vi(6, 2) + vi(6, 3) + f32(5, 1.5) + f32(5, -2.0)
    packed = (ld(1, "shape") + ld(6, varint(2) + varint(3))
              + ld(5, struct.pack("<ff", 1.5, -2.0)))
    for raw in (unpacked, packed):
        arg = caffe2_pb2.Argument.FromString(raw)
        assert list(arg.ints) == [2, 3] and list(arg.floats) == [1.5, -2.0]
    assert caffe2_pb2.Argument(name="shape", ints=[2, 3], floats=[1.5, -2.0]).SerializeToString(
        deterministic=True) == ld(1, "shape") + f32(5, 1.5) + f32(5, -2.0) + vi(6, 2) + vi(6, 3)


def test_argument_strings_and_nested_nets():
    inner = ld(1, "inner") + ld(2, ld(4, "Cos") + ld(1, "a") + ld(2, "b"))
    raw = (ld(1, "x") + ld(4, b"\x00\xffbytes") + ld(7, "s1") + ld(7, "s2") + ld(8, inner)
           + ld(9, inner) + ld(9, inner))
    arg = caffe2_pb2.Argument.FromString(raw)
    assert arg.s == b"\x00\xffbytes"
    assert list(arg.strings) == [b"s1", b"s2"]
    assert arg.n.name == "inner" and arg.n.op[0].type == "Cos"
    assert len(arg.nets) == 2 and arg.nets[1].op[0].input[0] == "a"
    i = caffe2_pb2.Argument.FromString(ld(1, "neg") + vi(3, -5))
    assert i.i == -5  # int64 varint, ten bytes


def test_hand_encoded_net_def_parses_and_runs():
    op1 = ld(1, "X") + ld(2, "Y") + ld(4, "Clip") + ld(5, ld(1, "min") + f32(2, 0.0))
    op2 = ld(1, "Y") + ld(2, "Z") + ld(4, "Cos")
    raw = (ld(1, "predict") + ld(2, op1) + ld(2, op2) + ld(3, "simple") + vi(4, 2)
           + ld(5, vi(1, 0)) + ld(6, ld(1, "net_arg") + vi(3, 4)) + ld(7, "X")
           + ld(8, "Z"))
    net = caffe2_pb2.NetDef.FromString(raw)
    assert net.name == "predict" and [o.type for o in net.op] == ["Clip", "Cos"]
    assert net.type == "simple" and net.num_workers == 2 and net.arg[0].i == 4
    assert list(net.external_input) == ["X"] and list(net.external_output) == ["Z"]
    x = np.array([-1.0, 0.5, 2.0], np.float32)
    workspace.FeedBlob("X", x)
    assert workspace.RunNetOnce(raw)
    np.testing.assert_allclose(workspace.FetchBlob("Z"), np.cos(np.maximum(x, 0)), rtol=3e-7)


def test_hand_encoded_tensor_proto():
    raw = (vi(1, 2) + vi(1, 3) + vi(2, 1) + ld(3, struct.pack("<6f", *range(6))) + ld(7, "w"))
    t = caffe2_pb2.TensorProto.FromString(raw)
    assert list(t.dims) == [2, 3] and t.data_type == caffe2_pb2.TensorProto.FLOAT
    assert list(t.float_data) == [0, 1, 2, 3, 4, 5] and t.name == "w"
    workspace.FeedBlob("w", t)
    got = workspace.FetchBlob("w")
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, np.arange(6, dtype=np.float32).reshape(2, 3))
    # float_data is declared packed: serializing gives the packed form Caffe2 writes
    assert caffe2_pb2.TensorProto(dims=[2, 3], float_data=range(6), name="w").SerializeToString(
        deterministic=True) == raw.replace(vi(2, 1), b"")
    d = caffe2_pb2.TensorProto.FromString(vi(1, 2) + vi(2, 13) + ld(9, struct.pack("<2d", .1, 2)))
    workspace.FeedBlob("d", d)
    np.testing.assert_array_equal(workspace.FetchBlob("d"), np.array([0.1, 2.0]))
    q = caffe2_pb2.TensorProto.FromString(vi(1, 3) + vi(2, 10) + ld(10, varint(5) + varint(-1)
                                                                     + varint(2 ** 40)))
    workspace.FeedBlob("q", q)
    got = workspace.FetchBlob("q")
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, [5, -1, 2 ** 40])


def test_unknown_fields_of_newer_caffe2_survive_a_round_trip():
    """Later Caffe2 versions added fields (e.g. OperatorDef 11+); they parse and re-serialize."""
    extra = ld(11, "future-field") + vi(12, 42)
    op = caffe2_pb2.OperatorDef.FromString(clip_operator_bytes() + extra)
    assert op.type == "Clip"
    assert op.SerializeToString().endswith(extra)


# ---- round trips ------------------------------------------------------------------------------


def _sample_net():
    net = core.Net("roundtrip")
    x = net.AddExternalInput("x")
    y = net.Clip([x], ["y"], min=-0.5, max=0.5)
    z = net.Cos([y], ["z"])
    w = net.ThresholdedRelu([z], ["w"], alpha=0.9)
    s = net.CosineSimilarity([w, z], ["s"])
    net.CosineEmbeddingCriterion([s, "label"], ["loss"], margin=0.1)
    net.AddGradientOperators(["loss"])
    net.AddExternalOutput("loss")
    return net.Proto()


def test_bytes_round_trip():
    net = _sample_net()
    raw = net.SerializeToString()
    again = caffe2_pb2.NetDef.FromString(raw)
    assert again == net
    assert again.SerializeToString(deterministic=True) == net.SerializeToString(
        deterministic=True)
    assert any(op.is_gradient_op for op in again.op)


def test_text_format_round_trip():
    net = _sample_net()
    text = text_format.MessageToString(net)
    assert 'type: "CosineEmbeddingCriterionGradient"' in text
    parsed = text_format.Parse(text, caffe2_pb2.NetDef())
    assert parsed == net
    op = core.CreateOperator("Clip", ["X"], ["Y"], min=0.0, max=6.0)
    assert text_format.Parse(text_format.MessageToString(op), caffe2_pb2.OperatorDef()) == op


def test_hand_written_pbtxt_runs():
    text = """
    name: "predict_net"
    op { input: "data" output: "clipped" type: "Clip"
         arg { name: "min" f: 0.0 } arg { name: "max" f: 6.0 } }
    op { input: "clipped" output: "out" type: "ThresholdedRelu" arg { name: "alpha" f: 1.5 } }
    external_input: "data"
    external_output: "out"
    """
    net = text_format.Parse(text, caffe2_pb2.NetDef())
    workspace.FeedBlob("data", np.array([-3.0, 1.0, 2.0, 9.0], np.float32))
    workspace.RunNetOnce(net)
    np.testing.assert_array_equal(workspace.FetchBlob("out"), [0.0, 0.0, 2.0, 6.0])


def test_tensor_proto_round_trip_for_every_supported_dtype():
    from caffe2ops.runtime.tensor import array_to_tensor_proto, tensor_proto_to_array

    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64, np.float16, np.int32, np.int64, np.int8, np.uint8,
                  np.int16, np.uint16, np.bool_):
        a = (rng.standard_normal((2, 3)) * 50).astype(dtype)
        t = array_to_tensor_proto(a, "a")
        back = tensor_proto_to_array(caffe2_pb2.TensorProto.FromString(t.SerializeToString()))
        assert back.dtype == a.dtype and back.shape == a.shape
        assert back.tobytes() == a.tobytes(), dtype
