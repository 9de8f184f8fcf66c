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
from caffe2ops.runtime.checks import as_message, check_inputs_exist
from caffe2ops.runtime.net import NetInstance
from caffe2ops.runtime.operator import Operator
from caffe2ops.runtime.tensor import DTYPE_TO_TP


class _NamedWorkspace:
    """Blobs by name and created nets by name (``workspace.Workspace`` is ``C.Workspace``)."""

    def __init__(self, name: str, root_folder: str | None = None) -> None:
        self.name = name
        self.root_folder = root_folder
        self.blobs: dict[str, Any] = {}
        self.nets: dict[str, NetInstance] = {}


_workspaces: dict[str, _NamedWorkspace] = {"default": _NamedWorkspace("default")}
_current: list[str] = ["default"]


def _ws() -> _NamedWorkspace:
    return _workspaces[_current[0]]


def current_workspace() -> _NamedWorkspace:
    """The current named workspace (what ``C.Workspace.current`` views)."""
    return _ws()


def current_blobs() -> MutableMapping[str, Any]:
    """The current workspace's blob dict (the runtime's view; prefer Feed/FetchBlob)."""
    return _ws().blobs


def _name(blob) -> str:
    return blob if isinstance(blob, str) else str(blob)


_proto = as_message


def FeedBlob(name, arr, device_option=None) -> bool:  # noqa: N802
    """Copy ``arr`` into blob ``name`` (created if missing), keeping its dtype.

    A ``TensorProto`` is converted first; ``str``/``bytes`` become string blobs. With a CUDA
    device option (given or from the current ``DeviceScope``) the blob is a CuPy array.
    """
    from caffe2ops.pybind_state import blob_value

    name = _name(name)
    device_option = device_option if device_option is not None else scope.current_device()
    _ws().blobs[name] = blob_value(arr, device_option, f"FeedBlob('{name}')")
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
    from caffe2ops.pybind_state import host_copy

    return host_copy(value)


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
    _workspaces[ws.name] = _NamedWorkspace(ws.name, root_folder or ws.root_folder)
    return True


def SwitchWorkspace(name: str, create_if_missing: bool | None = None) -> None:  # noqa: N802
    """Make workspace ``name`` current; a missing one is created only if ``create_if_missing``."""
    name = name.decode("utf-8") if isinstance(name, bytes) else str(name)
    if name not in _workspaces:
        if not create_if_missing:
            raise OperatorError(
                f"SwitchWorkspace: workspace '{name}' does not exist; pass "
                "create_if_missing=True to create it"
            )
        _workspaces[name] = _NamedWorkspace(name)
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
    instance = NetInstance(net_def)
    check_inputs_exist("CreateNet", net_def, ws.blobs, ws.name)
    ws.nets[net_def.name] = instance
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
    net_def = _proto(net, caffe2_pb2.NetDef)
    instance = NetInstance(net_def)
    check_inputs_exist("RunNetOnce", net_def, _ws().blobs, _current[0])
    instance.run(_ws().blobs)
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

    def __contains__(self, key):
        return HasBlob(key)


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
# --- Caffe2's process-level API: GlobalInit, devices, C.Workspace, BenchmarkNet ---------------

from caffe2ops import pybind_state as C  # noqa: E402

Workspace = C.Workspace
has_cuda_support = C.has_cuda_support
has_gpu_support = C.has_gpu_support
has_hip_support = C.has_hip_support
GpuDeviceType = caffe2_pb2.CUDA  # Caffe2 names CUDA even without a GPU; it claims no device


def NumCudaDevices() -> int:  # noqa: N802
    """GPUs visible through CuPy; 0 without CuPy or a device."""
    return C.cuda_device_count()


NumGpuDevices = NumCudaDevices


def GlobalInit(args) -> None:  # noqa: N802
    """Caffe2's flags: ``--caffe2_log_level`` and the thread counts apply, other Caffe2 flags are
    ignored with a warning, unknown flags raise (see :mod:`caffe2ops.runtime.flags`)."""
    from caffe2ops.runtime.flags import apply_flags

    apply_flags(args)
    _global_init_args.extend(str(a) for a in list(args)[1:])


_global_init_args: list[str] = []


def RegisteredOperators() -> list[str]:  # noqa: N802
    from caffe2ops.runtime.schema import registered_types

    return registered_types()


def BenchmarkNet(name, warmup_runs: int, main_runs: int, run_individual: bool) -> list[float]:  # noqa: N802
    """Caffe2's timing list: milliseconds per run of the whole net, then one entry per operator
    (its milliseconds per run when ``run_individual``, else 0.0), averaged over ``main_runs``."""
    import time

    ws = _ws()
    key = _net_name(name)
    instance = ws.nets.get(key)
    if instance is None:
        raise OperatorError(f"BenchmarkNet: didn't find net '{key}' in workspace '{ws.name}'")
    if warmup_runs < 0 or main_runs < 0:
        raise OperatorError("BenchmarkNet: warmup_runs and main_runs must be non-negative")
    runs = max(main_runs, 1)
    for _ in range(warmup_runs):
        instance.run(ws.blobs)
    start = time.perf_counter()
    for _ in range(main_runs):
        instance.run(ws.blobs)
    total_ms = (time.perf_counter() - start) * 1e3 / runs
    per_op = [0.0] * len(instance.operators)
    if run_individual:
        for _ in range(main_runs):
            for k, op in enumerate(instance.operators):
                t0 = time.perf_counter()
                op.run(ws.blobs)
                per_op[k] += time.perf_counter() - t0
        per_op = [t * 1e3 / runs for t in per_op]
    return [total_ms, *per_op]


def RunPlan(plan_or_step) -> bool:  # noqa: N802
    """Run a plan (``core.Plan``, ``core.ExecutionStep``, a ``PlanDef`` or its bytes) on the
    current workspace; its nets are created there (see :mod:`caffe2ops.runtime.plan`)."""
    from caffe2ops.runtime.plan import run_plan

    if hasattr(plan_or_step, "Proto") and isinstance(plan_or_step.Proto(),
                                                     caffe2_pb2.ExecutionStep):
        from caffe2ops import core

        plan_or_step = core.Plan(plan_or_step)
    run_plan(_proto(plan_or_step, caffe2_pb2.PlanDef), _ws().blobs, _ws().nets)
    return True
