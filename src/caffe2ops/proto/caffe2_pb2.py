"""Caffe2's messages on Caffe2's field numbers, built at import from a descriptor.

The layout follows ``caffe2/proto/caffe2.proto`` (proto2, package ``caffe2``), so bytes written by
Caffe2 parse here and the other way round. ``DeviceOption.device_id`` is field 2, which older
Caffe2 called ``cuda_gpu_id``; both names are accepted by :func:`caffe2ops.core.DeviceOption`.

>>> from caffe2ops.proto import caffe2_pb2
>>> op = caffe2_pb2.OperatorDef(type="Clip", input=["X"], output=["Y"])
>>> caffe2_pb2.OperatorDef.FromString(op.SerializeToString()).type
'Clip'
>>> caffe2_pb2.CUDA
1
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
_OPT, _REP = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
_TYPES = {
    "int64": _F.TYPE_INT64, "int32": _F.TYPE_INT32, "uint32": _F.TYPE_UINT32,
    "float": _F.TYPE_FLOAT, "double": _F.TYPE_DOUBLE, "bool": _F.TYPE_BOOL,
    "string": _F.TYPE_STRING, "bytes": _F.TYPE_BYTES,
}

# message -> [(name, number, label, type or ".caffe2.Message"/enum, default, packed)]
_MESSAGES: dict[str, list[tuple]] = {
    "TensorProto.Segment": [("begin", 1, _OPT, "int64"), ("end", 2, _OPT, "int64")],
    "TensorProto": [
        ("dims", 1, _REP, "int64"),
        ("data_type", 2, _OPT, "enum:.caffe2.TensorProto.DataType", "FLOAT"),
        ("float_data", 3, _REP, "float", None, True),
        ("int32_data", 4, _REP, "int32", None, True),
        ("byte_data", 5, _OPT, "bytes"),
        ("string_data", 6, _REP, "bytes"),
        ("name", 7, _OPT, "string"),
        ("device_detail", 8, _OPT, ".caffe2.DeviceOption"),
        ("double_data", 9, _REP, "double", None, True),
        ("int64_data", 10, _REP, "int64", None, True),
        ("segment", 11, _OPT, ".caffe2.TensorProto.Segment"),
    ],
    "TensorProtos": [("protos", 1, _REP, ".caffe2.TensorProto")],
    "Argument": [
        ("name", 1, _OPT, "string"), ("f", 2, _OPT, "float"), ("i", 3, _OPT, "int64"),
        ("s", 4, _OPT, "bytes"), ("floats", 5, _REP, "float"), ("ints", 6, _REP, "int64"),
        ("strings", 7, _REP, "bytes"), ("n", 8, _OPT, ".caffe2.NetDef"),
        ("nets", 9, _REP, ".caffe2.NetDef"),
    ],
    "DeviceOption": [
        ("device_type", 1, _OPT, "int32", "0"), ("device_id", 2, _OPT, "int32"),
        ("random_seed", 3, _OPT, "uint32"), ("node_name", 4, _OPT, "string"),
        ("numa_node_id", 5, _OPT, "int32", "-1"), ("extra_info", 6, _REP, "string"),
    ],
    "OperatorDef": [
        ("input", 1, _REP, "string"), ("output", 2, _REP, "string"), ("name", 3, _OPT, "string"),
        ("type", 4, _OPT, "string"), ("arg", 5, _REP, ".caffe2.Argument"),
        ("device_option", 6, _OPT, ".caffe2.DeviceOption"), ("engine", 7, _OPT, "string"),
        ("control_input", 8, _REP, "string"), ("is_gradient_op", 9, _OPT, "bool", "false"),
        ("debug_info", 10, _OPT, "string"),
    ],
    "NetDef": [
        ("name", 1, _OPT, "string"), ("op", 2, _REP, ".caffe2.OperatorDef"),
        ("type", 3, _OPT, "string"), ("num_workers", 4, _OPT, "int32"),
        ("device_option", 5, _OPT, ".caffe2.DeviceOption"), ("arg", 6, _REP, ".caffe2.Argument"),
        ("external_input", 7, _REP, "string"), ("external_output", 8, _REP, "string"),
        ("profile", 9, _OPT, "bool"),
    ],
    "ExecutionStep": [
        ("name", 1, _OPT, "string"), ("substep", 2, _REP, ".caffe2.ExecutionStep"),
        ("network", 3, _REP, "string"), ("num_iter", 4, _OPT, "int64"),
        ("criteria_network", 5, _OPT, "string"), ("concurrent_substeps", 6, _OPT, "bool"),
        ("report_net", 7, _OPT, "string"), ("report_interval", 8, _OPT, "int32"),
        ("should_stop_blob", 9, _OPT, "string"), ("only_once", 10, _OPT, "bool"),
        ("run_every_ms", 11, _OPT, "int64"), ("create_workspace", 12, _OPT, "bool"),
        ("num_concurrent_instances", 13, _OPT, "int32"),
    ],
    "PlanDef": [
        ("name", 1, _OPT, "string"), ("network", 2, _REP, ".caffe2.NetDef"),
        ("execution_step", 3, _REP, ".caffe2.ExecutionStep"),
    ],
    "BlobProto": [
        ("name", 1, _OPT, "string"), ("type", 2, _OPT, "string"),
        ("tensor", 3, _OPT, ".caffe2.TensorProto"), ("content", 4, _OPT, "bytes"),
        ("qtensor", 5, _OPT, "bytes"), ("content_num_chunks", 6, _OPT, "int32"),
        ("content_chunk_id", 7, _OPT, "int32"),
    ],
}
_DATA_TYPES = [
    ("UNDEFINED", 0), ("FLOAT", 1), ("INT32", 2), ("BYTE", 3), ("STRING", 4), ("BOOL", 5),
    ("UINT8", 6), ("INT8", 7), ("UINT16", 8), ("INT16", 9), ("INT64", 10), ("FLOAT16", 12),
    ("DOUBLE", 13),
]
_DEVICE_TYPES = [
    ("CPU", 0), ("CUDA", 1), ("MKLDNN", 2), ("OPENGL", 3), ("COMPILE_TIME_MAX_DEVICE_TYPES", 4),
    ("ONLY_FOR_TEST", 20901701),
]


def _add_field(msg: descriptor_pb2.DescriptorProto, spec: tuple) -> None:
    name, number, label, ftype, *rest = spec
    default = rest[0] if rest else None
    packed = rest[1] if len(rest) > 1 else False
    field = msg.field.add(name=name, number=number, label=label)
    if ftype.startswith("enum:"):
        field.type, field.type_name = _F.TYPE_ENUM, ftype[5:]
    elif ftype.startswith("."):
        field.type, field.type_name = _F.TYPE_MESSAGE, ftype
    else:
        field.type = _TYPES[ftype]
    if default is not None:
        field.default_value = default
    if packed:
        field.options.packed = True


def _build_file() -> descriptor_pb2.FileDescriptorProto:
    fdp = descriptor_pb2.FileDescriptorProto(
        name="caffe2ops/caffe2.proto", package="caffe2", syntax="proto2"
    )
    enum = fdp.enum_type.add(name="DeviceType")
    for name, number in _DEVICE_TYPES:
        enum.value.add(name=name, number=number)
    for full_name, fields in _MESSAGES.items():
        if "." in full_name:
            continue
        msg = fdp.message_type.add(name=full_name)
        if full_name == "TensorProto":
            dt = msg.enum_type.add(name="DataType")
            for name, number in _DATA_TYPES:
                dt.value.add(name=name, number=number)
            seg = msg.nested_type.add(name="Segment")
            for spec in _MESSAGES["TensorProto.Segment"]:
                _add_field(seg, spec)
        for spec in fields:
            _add_field(msg, spec)
    return fdp


_pool = descriptor_pool.DescriptorPool()
DESCRIPTOR = _pool.Add(_build_file())


def _message(name: str):
    return message_factory.GetMessageClass(_pool.FindMessageTypeByName(f"caffe2.{name}"))


TensorProto = _message("TensorProto")
TensorProtos = _message("TensorProtos")
Argument = _message("Argument")
DeviceOption = _message("DeviceOption")
OperatorDef = _message("OperatorDef")
NetDef = _message("NetDef")
ExecutionStep = _message("ExecutionStep")
PlanDef = _message("PlanDef")
BlobProto = _message("BlobProto")

DeviceType = dict(_DEVICE_TYPES)
CPU, CUDA, MKLDNN, OPENGL = (DeviceType[k] for k in ("CPU", "CUDA", "MKLDNN", "OPENGL"))
COMPILE_TIME_MAX_DEVICE_TYPES = DeviceType["COMPILE_TIME_MAX_DEVICE_TYPES"]
ONLY_FOR_TEST = DeviceType["ONLY_FOR_TEST"]

__all__ = [
    "Argument", "BlobProto", "DeviceOption", "ExecutionStep", "NetDef", "OperatorDef", "PlanDef",
    "TensorProto", "TensorProtos", "CPU", "CUDA", "MKLDNN", "OPENGL", "DeviceType",
]
