"""Caffe2's ``workspace`` module: named workspaces of blobs and created nets.

>>> import numpy as np
>>> from caffe2ops import core, workspace
>>> workspace.ResetWorkspace()
True
>>> workspace.FeedBlob("X", np.array([-2.0, 0.5, 3.0], dtype=np.float32))
True
>>> workspace.RunOperatorOnce(core.CreateOperator("Clip", ["X"], ["Y"], min=-1.0, max=1.0))
True
>>> workspace.FetchBlob("Y")
array([-1. ,  0.5,  1. ], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any

import numpy as np

from caffe2ops.errors import BlobNotFoundError, OperatorError
from caffe2ops.proto import caffe2_pb2
from caffe2ops.runtime import scope
from caffe2ops.runtime.net import NetInstance
from caffe2ops.runtime.operator import Operator
from caffe2ops.runtime.tensor import DTYPE_TO_TP, tensor_proto_to_array


class Workspace:
    """Blobs by name and created nets by name."""

    def __init__(self, name: str, root_folder: str | None = None) -> None:
        self.name = name
        self.root_folder = root_folder
        self.blobs: dict[str, Any] = {}
        self.nets: dict[str, NetInstance] = {}


_workspaces: dict[str, Workspace] = {"default": Workspace("default")}
_current: list[str] = ["default"]


def _ws() -> Workspace:
    return _workspaces[_current[0]]


def current_blobs() -> MutableMapping[str, Any]:
    """The current workspace's blob dict (the runtime's view; prefer Feed/FetchBlob)."""
    return _ws().blobs


def _name(blob) -> str:
    return blob if isinstance(blob, str) else str(blob)


def _proto(obj, message):
    """Accept a message, its bytes, or an object with ``Proto()`` (``core.Net``)."""
    if isinstance(obj, message):
        return obj
    if isinstance(obj, bytes):
        return message.FromString(obj)
    if hasattr(obj, "Proto"):
        return obj.Proto()
    raise TypeError(f"expected a {message.DESCRIPTOR.name}, got {type(obj).__name__}")


def FeedBlob(name, arr, device_option=None) -> bool:  # noqa: N802
    """Copy ``arr`` into blob ``name`` (created if missing), keeping its dtype.

    A ``TensorProto`` is converted first; ``str``/``bytes`` become string blobs. With a CUDA
    device option (given or from the current ``DeviceScope``) the blob is a CuPy array.
    """
    name = _name(name)
    if isinstance(arr, caffe2_pb2.TensorProto):
        arr = tensor_proto_to_array(arr)
    if isinstance(arr, str | bytes):
        _ws().blobs[name] = arr
        return True
    device_option = device_option if device_option is not None else scope.current_device()
    if device_option is not None and device_option.device_type == caffe2_pb2.CUDA:
        from caffe2ops.runtime.device import to_device

        _ws().blobs[name] = to_device(f"FeedBlob('{name}')", arr, device_option.device_id)
        return True
    value = np.array(arr, copy=True)
    if value.dtype.kind in "SU":
        value = value.astype(object)
    _ws().blobs[name] = value
    return True


def FetchBlob(name) -> Any:  # noqa: N802
    """A NumPy copy of blob ``name`` (copied to the host if it lives on a GPU), or its string."""
    name = _name(name)
    try:
        value = _ws().blobs[name]
    except KeyError:
        raise BlobNotFoundError(
            f"FetchBlob: blob '{name}' does not exist in workspace '{_current[0]}'"
        ) from None
    if isinstance(value, np.ndarray):
        return value.copy()
    from caffe2ops.runtime.device import is_device_array, to_host

    if is_device_array(value):
        return to_host(value)
    return value


def FetchBlobs(names: Iterable) -> list:  # noqa: N802
    return [FetchBlob(n) for n in names]


def HasBlob(name) -> bool:  # noqa: N802
    return _name(name) in _ws().blobs


def Blobs() -> list[str]:  # noqa: N802
    """Names of the blobs of the current workspace, sorted."""
    return sorted(_ws().blobs)


def ResetWorkspace(root_folder: str | None = None) -> bool:  # noqa: N802
    """Replace the current workspace with an empty one of the same name."""
    ws = _ws()
    _workspaces[ws.name] = Workspace(ws.name, root_folder or ws.root_folder)
    return True


def SwitchWorkspace(name: str, create_if_missing: bool | None = None) -> None:  # noqa: N802
    """Make workspace ``name`` current; a missing one is created only if ``create_if_missing``."""
    if name not in _workspaces:
        if not create_if_missing:
            raise OperatorError(
                f"SwitchWorkspace: workspace '{name}' does not exist; pass "
                "create_if_missing=True to create it"
            )
        _workspaces[name] = Workspace(name)
    _current[0] = name


def CurrentWorkspace() -> str:  # noqa: N802
    return _current[0]


def Workspaces() -> list[str]:  # noqa: N802
    return list(_workspaces)


def RunOperatorOnce(operator) -> bool:  # noqa: N802
    """Create, verify and run one operator on the current workspace, then discard it."""
    Operator(_proto(operator, caffe2_pb2.OperatorDef)).run(_ws().blobs)
    return True


def RunOperatorsOnce(operators: Iterable) -> bool:  # noqa: N802
    for op in operators:
        RunOperatorOnce(op)
    return True


def CreateNet(net, overwrite: bool = False, input_blobs: Iterable | None = None) -> bool:  # noqa: N802
    """Instantiate ``net`` in the current workspace; its operators persist between runs."""
    net_def = _proto(net, caffe2_pb2.NetDef)
    ws = _ws()
    for blob in input_blobs or ():
        ws.blobs.setdefault(_name(blob), None)
    if net_def.name in ws.nets and not overwrite:
        raise OperatorError(
            f'CreateNet: I respectfully refuse to overwrite an existing net of the same name '
            f'"{net_def.name}", unless you explicitly specify overwrite=True.'
        )
    ws.nets[net_def.name] = NetInstance(net_def)
    return True


def _net_name(net) -> str:
    if isinstance(net, str):
        return net
    if isinstance(net, caffe2_pb2.NetDef):
        return net.name
    if hasattr(net, "Name"):
        return net.Name()
    return str(net)


def RunNet(name, num_iter: int = 1, allow_fail: bool = False) -> bool:  # noqa: N802
    """Run a created net ``num_iter`` times; a failure raises, or returns False if allowed."""
    ws = _ws()
    key = _net_name(name)
    instance = ws.nets.get(key)
    if instance is None:
        raise OperatorError(
            f"RunNet: net '{key}' does not exist in workspace '{ws.name}'; call CreateNet first"
        )
    try:
        for _ in range(num_iter):
            instance.run(ws.blobs)
    except Exception:
        if allow_fail:
            return False
        raise
    return True


def RunNetOnce(net) -> bool:  # noqa: N802
    """Create a temporary net, run it once, discard it."""
    NetInstance(_proto(net, caffe2_pb2.NetDef)).run(_ws().blobs)
    return True


def GetNetNames() -> list[str]:  # noqa: N802
    return list(_ws().nets)


def InferShapesAndTypes(nets, blob_dimensions=None, blob_types=None):  # noqa: N802
    """``(shapes, types)`` of every blob the nets write, from the schemas' shape inference.

    Starts from the current workspace's blobs, then ``blob_dimensions`` / ``blob_types``
    (Caffe2 DataType codes); blobs whose shape cannot be inferred are left out.
    """
    from caffe2ops.runtime.schema import get_schema

    known: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    for name, value in _ws().blobs.items():
        if isinstance(value, np.ndarray):
            known[name] = (value.shape, value.dtype)
    for name, dims in (blob_dimensions or {}).items():
        dtype = known.get(name, (None, np.dtype(np.float32)))[1]
        known[name] = (tuple(dims), dtype)
    from caffe2ops.runtime.tensor import dtype_from_tp

    for name, code in (blob_types or {}).items():
        if name in known:
            known[name] = (known[name][0], dtype_from_tp(code))
    for net in nets if isinstance(nets, list | tuple) else [nets]:
        for op_def in _proto(net, caffe2_pb2.NetDef).op:
            schema = get_schema(op_def.type)
            if schema.infer is None or any(b not in known for b in op_def.input):
                continue
            from caffe2ops.runtime.args import parse_args

            args = parse_args(schema, op_def.type, op_def.arg)
            result = schema.infer([known[b] for b in op_def.input], args)
            for name, shape_dtype in zip(op_def.output, result, strict=False):
                if shape_dtype is not None:
                    known[name] = (tuple(shape_dtype[0]), np.dtype(shape_dtype[1]))
    shapes = {k: list(v[0]) for k, v in known.items()}
    types = {k: DTYPE_TO_TP.get(v[1], 0) for k, v in known.items()}
    return shapes, types


class _BlobsDict(MutableMapping):
    """``workspace.blobs``: dict-like access mapped to FetchBlob / FeedBlob."""

    def __getitem__(self, key):
        return FetchBlob(key)

    def __setitem__(self, key, value):
        FeedBlob(key, value)

    def __delitem__(self, key):
        del _ws().blobs[_name(key)]

    def __iter__(self):
        return iter(Blobs())

    def __len__(self):
        return len(_ws().blobs)


blobs = _BlobsDict()


class Predictor:
    """Caffe2's ``workspace.Predictor(init_net, predict_net)``: a private workspace in which
    ``init_net`` ran once and ``predict_net`` is created (each a NetDef, its bytes, or a net).

    ``run(inputs)`` feeds a list to the first ``len(inputs)`` external inputs of
    ``predict_net`` in order, or a dict by name (every name must already be a blob of the
    predictor's workspace), runs the net and returns copies of its external outputs as a list.
    The current workspace is not touched.

    >>> import numpy as np
    >>> from caffe2ops import core
    >>> init = core.Net("predictor_init")
    >>> _ = init.ConstantFill([], "lo", shape=[1], value=0.0)
    >>> pred = core.Net("predictor_net")
    >>> _ = pred.Clip(["x"], ["y"], min=0.0, max=1.0)
    >>> pred.AddExternalOutput("y")
    >>> p = Predictor(init.Proto(), pred.Proto().SerializeToString())
    >>> p.run([np.array([-1.0, 0.5, 2.0], dtype=np.float32)])
    [array([0. , 0.5, 1. ], dtype=float32)]
    """

    def __init__(self, init_net, predict_net) -> None:
        init_def = _proto(init_net, caffe2_pb2.NetDef)
        predict_def = _proto(predict_net, caffe2_pb2.NetDef)
        self._blobs: dict[str, Any] = {}
        NetInstance(init_def).run(self._blobs)
        self._net = NetInstance(predict_def)
        self._input_names = list(predict_def.external_input)
        self._output_names = list(predict_def.external_output)

    def run(self, inputs) -> list:
        if isinstance(inputs, dict):
            for name in inputs:
                if _name(name) not in self._blobs:
                    raise BlobNotFoundError(f"Predictor.run: blob does not exist: {name}")
            feeds = [(_name(k), v) for k, v in inputs.items()]
        else:
            inputs = list(inputs)
            if len(inputs) > len(self._input_names):
                raise OperatorError(
                    f"Predictor.run: {len(inputs)} inputs given, the net has "
                    f"{len(self._input_names)} external inputs"
                )
            feeds = list(zip(self._input_names, inputs, strict=False))
        for name, value in feeds:
            self._blobs[name] = np.array(value, copy=True)
        self._net.run(self._blobs)
        missing = [n for n in self._output_names if n not in self._blobs]
        if missing:
            raise BlobNotFoundError(f"Predictor.run: output blob(s) {missing} were not produced")
        return [np.array(self._blobs[n], copy=True) for n in self._output_names]


def NumGpuDevices() -> int:  # noqa: N802
    """The number of CUDA devices caffe2ops can use (CuPy and a GPU needed; else 0)."""
    from caffe2ops.runtime.device import gpu_count

    return gpu_count()


NumCudaDevices = NumGpuDevices
GpuDeviceType = caffe2_pb2.CUDA


def _has_gpu_support() -> bool:
    return NumGpuDevices() > 0


def __getattr__(name: str) -> Any:
    # Caffe2's module flags, computed when read (importing CuPy costs time; most runs never ask)
    if name in ("has_gpu_support", "has_cuda_support"):
        return _has_gpu_support()
    raise AttributeError(f"module 'caffe2ops.workspace' has no attribute '{name}'")
