"""Caffe2's ``workspace.C`` (``caffe2_pybind11_state``): workspace and blob objects.

A :class:`Workspace` object holds its own blobs and nets, independent of the process-wide current
workspace that ``workspace.FeedBlob`` / ``RunNet`` use, so each thread can work in its own::

    ws = Workspace()
    ws.create_blob("X").feed(x)         # True
    ws.run(op_or_net)                   # an OperatorDef, a NetDef / core.Net or a PlanDef
    ws.blobs["Y"].fetch()               # a NumPy copy
    ws.has_blob("Y"), sorted(ws.blobs)  # ws.blobs is a new {name: Blob} dict on every access

``Workspace.current`` is a view of the current named workspace (the one ``workspace.*`` uses).
One object must not be used by two threads at once (nor could Caffe2's); separate objects may.

>>> import numpy as np
>>> from caffe2ops import core
>>> ws = Workspace()
>>> ws.create_blob("X").feed(np.array([-2.0, 0.5], np.float32))
True
>>> ws.run(core.CreateOperator("Clip", ["X"], ["Y"], min=-1.0))
>>> ws.blobs["Y"].fetch()
array([-1. ,  0.5], dtype=float32)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from caffe2ops.errors import BlobNotFoundError, OperatorError
from caffe2ops.proto import caffe2_pb2
from caffe2ops.runtime import scope
from caffe2ops.runtime.checks import as_message, check_inputs_exist, feedable_array
from caffe2ops.runtime.net import NetInstance
from caffe2ops.runtime.operator import Operator
from caffe2ops.runtime.tensor import tensor_proto_to_array


def cuda_device_count() -> int:
    """GPUs visible through CuPy; 0 without CuPy, a driver or a device (never guessed)."""
    from caffe2ops.runtime.device import gpu_count

    return gpu_count()


has_cuda_support = cuda_device_count() > 0
has_gpu_support = has_cuda_support
has_hip_support = False
num_cuda_devices = cuda_device_count


def blob_value(value: Any, device_option=None, what: str = "feed") -> Any:
    """What a blob stores for ``value``: a NumPy copy (CuPy on a CUDA device option), strings."""
    if isinstance(value, caffe2_pb2.TensorProto):
        value = tensor_proto_to_array(value)
    if isinstance(value, str | bytes):
        return value
    if device_option is not None and device_option.device_type == caffe2_pb2.CUDA:
        from caffe2ops.runtime.device import to_device

        return to_device(what, feedable_array(what, value), device_option.device_id)
    stored = feedable_array(what, value)
    if stored.dtype.kind in "SU":
        stored = stored.astype(object)
    return stored


def host_copy(value: Any) -> Any:
    """A NumPy copy of an array blob (from the GPU if needed); other values as they are."""
    from caffe2ops.runtime.device import is_device_array, to_host

    if isinstance(value, np.ndarray):
        return value.copy()
    if is_device_array(value):
        return to_host(value)
    return value


class Blob:
    """One named blob of a :class:`Workspace` (``ws.create_blob(name)`` / ``ws.blobs[name]``)."""

    __slots__ = ("_store", "_name")

    def __init__(self, store: dict, name: str) -> None:
        self._store = store
        self._name = name

    def feed(self, arg, device_option=None) -> bool:
        """Store a copy of ``arg`` (array, TensorProto, str/bytes) in the blob; returns True."""
        if device_option is None:
            device_option = scope.current_device()
        self._store[self._name] = blob_value(arg, device_option, f"Blob('{self._name}').feed")
        return True

    def fetch(self) -> Any:
        """A NumPy copy of the blob's tensor (or its string / Python value)."""
        if self._name not in self._store:
            raise BlobNotFoundError(f"Blob.fetch: blob '{self._name}' no longer exists")
        value = self._store[self._name]
        if value is None:
            raise OperatorError(f"Blob.fetch: blob '{self._name}' is empty (created, never fed)")
        return host_copy(value)

    def is_tensor(self) -> bool:
        value = self._store.get(self._name)
        return isinstance(value, np.ndarray) or hasattr(value, "__cuda_array_interface__")

    def __repr__(self) -> str:
        return f"Blob({self._name!r})"


class _CurrentDescriptor:
    """``Workspace.current``: a view of the current named workspace."""

    def __get__(self, instance, owner):
        from caffe2ops import workspace

        named = workspace.current_workspace()
        return owner._view(named.blobs, named.nets, named.name)


class Workspace:
    """Blobs and created nets of one workspace object (see the module doc)."""

    current = _CurrentDescriptor()

    def __init__(self) -> None:
        self._blob_values: dict[str, Any] = {}
        self._net_instances: dict[str, NetInstance] = {}
        self._name = ""

    @classmethod
    def _view(cls, blobs: dict, nets: dict, name: str) -> Workspace:
        ws = cls.__new__(cls)
        ws._blob_values, ws._net_instances, ws._name = blobs, nets, name
        return ws

    @property
    def blobs(self) -> dict[str, Blob]:
        """A new ``{name: Blob}`` dict (as Caffe2's)."""
        return {name: Blob(self._blob_values, name) for name in self._blob_values}

    @property
    def nets(self) -> dict[str, NetInstance]:
        return dict(self._net_instances)

    def create_blob(self, name) -> Blob:
        """The blob ``name``, created empty if it does not exist."""
        name = str(name)
        self._blob_values.setdefault(name, None)
        return Blob(self._blob_values, name)

    def has_blob(self, name) -> bool:
        return str(name) in self._blob_values

    def feed_blob(self, name, arr, device_option=None) -> bool:
        return self.create_blob(name).feed(arr, device_option)

    def fetch_blob(self, name) -> Any:
        name = str(name)
        if name not in self._blob_values:
            raise BlobNotFoundError(f"fetch_blob: blob '{name}' does not exist in the workspace")
        return Blob(self._blob_values, name).fetch()

    def remove_blob(self, name) -> None:
        name = str(name)
        if name not in self._blob_values:
            raise BlobNotFoundError(f"remove_blob: blob '{name}' does not exist in the workspace")
        del self._blob_values[name]

    def create_net(self, net, overwrite: bool = False) -> NetInstance:
        """Instantiate ``net`` (NetDef, its bytes or a ``core.Net``) here; returns the net."""
        net_def = as_message(net, caffe2_pb2.NetDef)
        if net_def.name in self._net_instances and not overwrite:
            raise OperatorError(
                f'create_net: I respectfully refuse to overwrite an existing net of the same '
                f'name "{net_def.name}", unless you explicitly specify overwrite=True.'
            )
        check_inputs_exist("create_net", net_def, self._blob_values, self._name or "<object>")
        instance = NetInstance(net_def)
        self._net_instances[net_def.name] = instance
        return instance

    def run(self, obj) -> None:
        """Run an OperatorDef or a NetDef / ``core.Net`` once on this workspace's blobs."""
        if hasattr(obj, "Proto"):
            obj = obj.Proto()
        if isinstance(obj, caffe2_pb2.NetDef):
            NetInstance(obj).run(self._blob_values)
        elif isinstance(obj, caffe2_pb2.OperatorDef):
            Operator(obj).run(self._blob_values)
        elif isinstance(obj, caffe2_pb2.PlanDef):
            from caffe2ops.runtime.plan import run_plan

            run_plan(obj, self._blob_values, self._net_instances)
        else:
            raise ValueError(f"Don't know how to do Workspace.run() on {type(obj)}")

    def _run_net(self, name) -> None:
        name = name.decode() if isinstance(name, bytes) else str(name)
        if name not in self._net_instances:
            raise OperatorError(f"Didn't find net: {name}")
        self._net_instances[name].run(self._blob_values)

    def __repr__(self) -> str:
        name = self._name or hex(id(self))
        return f"<caffe2ops Workspace {name}: {len(self._blob_values)} blobs>"


def blobs() -> list[str]:
    """Names of the current workspace's blobs (Caffe2's ``C.blobs()``)."""
    from caffe2ops import workspace

    return workspace.Blobs()


def has_blob(name) -> bool:
    from caffe2ops import workspace

    return workspace.HasBlob(name)


def global_init(args) -> None:
    from caffe2ops import workspace

    workspace.GlobalInit(args)
