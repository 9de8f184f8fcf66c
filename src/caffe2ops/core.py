"""Caffe2's ``core`` module: operator definitions, nets, blob references, scopes, gradients.

>>> import numpy as np
>>> from caffe2ops import core, workspace
>>> net = core.Net("example")
>>> y = net.Clip(["x"], ["y"], min=0.0, max=1.0)
>>> z = net.Cos([y], ["z"])
>>> grads = net.AddGradientOperators([z])
>>> [op.type for op in net.Proto().op]
['Clip', 'Cos', 'ConstantFill', 'CosGradient', 'ClipGradient']
>>> str(grads["x"])
'x_grad'
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from caffe2ops.proto import caffe2_pb2
from caffe2ops.runtime import scope
from caffe2ops.runtime.args import make_argument
from caffe2ops.runtime.gradient import (
    GetGradientForOp,
    GradientSlice,
    build_backward,
    register_gradient,
)
from caffe2ops.runtime.schema import has_schema, registered_types

CPU = caffe2_pb2.CPU
CUDA = caffe2_pb2.CUDA


# GradientSlice (imported above): a sparse gradient, the rows ``indices`` of a parameter with
# values ``values`` (Caffe2's type).


def ScopedName(name: str) -> str:  # noqa: N802
    """``name`` prefixed with the current ``NameScope``."""
    return scope.name_prefix() + name


class BlobReference:
    """A blob name, optionally tied to the net that defines it (``blob.Clip(...)`` works then)."""

    def __init__(self, name: str, net: Net | None = None) -> None:
        self._name = name.decode("utf-8") if isinstance(name, bytes) else str(name)
        self._from_net = net

    def __str__(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"BlobReference({self._name!r})"

    def __hash__(self) -> int:
        return hash(self._name)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, BlobReference):
            return self._name == other._name
        if isinstance(other, str):
            return self._name == other
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __add__(self, other: str) -> BlobReference:
        return BlobReference(self._name + str(other), self._from_net)

    def __radd__(self, other: str) -> BlobReference:
        return BlobReference(str(other) + self._name, self._from_net)

    def Net(self) -> Net | None:  # noqa: N802
        return self._from_net

    def GetNameScope(self) -> str:  # noqa: N802
        return self._name[: self._name.rfind("/") + 1]

    def GetUnscopedName(self) -> str:  # noqa: N802
        return self._name[self._name.rfind("/") + 1:]

    def __getattr__(self, op_type: str):
        if op_type.startswith("__") or self._from_net is None or not has_schema(op_type):
            raise AttributeError(f"BlobReference has no attribute {op_type!r}")
        net = self._from_net

        def add(inputs=None, *args, **kwargs):
            inputs = [] if inputs is None else _as_list(inputs)
            return getattr(net, op_type)([self, *inputs], *args, **kwargs)

        return add


def ScopedBlobReference(name: str, *args, **kwargs) -> BlobReference:  # noqa: N802
    return BlobReference(ScopedName(name), *args, **kwargs)


def _as_list(x) -> list:
    if isinstance(x, str | BlobReference):
        return [x]
    return list(x)


def _rectify(blobs, net: Net | None = None) -> list[BlobReference]:
    """Strings get the current name scope; BlobReferences are kept (Caffe2's rule)."""
    if blobs is None:
        return []
    out = []
    for b in _as_list(blobs):
        if isinstance(b, BlobReference):
            out.append(b)
        elif isinstance(b, str | bytes):
            out.append(ScopedBlobReference(b.decode() if isinstance(b, bytes) else b, net))
        else:
            raise TypeError(f"a blob must be a str or BlobReference, got {type(b).__name__}")
    return out


def DeviceOption(  # noqa: N802
    device_type: int,
    device_id: int = 0,
    random_seed: int | None = None,
    node_name: str | None = None,
    numa_node_id: int | None = None,
    cuda_gpu_id: int | None = None,
    extra_info: Sequence[str] | None = None,
):
    """A ``caffe2_pb2.DeviceOption``; ``cuda_gpu_id`` is the old name of ``device_id``."""
    option = caffe2_pb2.DeviceOption(device_type=device_type)
    option.device_id = cuda_gpu_id if cuda_gpu_id is not None else device_id
    if random_seed is not None:
        option.random_seed = random_seed
    if node_name is not None:
        option.node_name = node_name
    if numa_node_id is not None:
        option.numa_node_id = numa_node_id
    if extra_info is not None:
        option.extra_info.extend(extra_info)
    return option


@contextlib.contextmanager
def DeviceScope(device_option, node_name: str | None = None) -> Iterator[None]:  # noqa: N802
    """Operators and fed blobs created inside use ``device_option`` unless given one."""
    option = caffe2_pb2.DeviceOption()
    if device_option is not None:
        option.CopyFrom(device_option)
    if node_name is not None:
        option.node_name = node_name
    stack = scope.device_stack()
    stack.append(option if device_option is not None or node_name else None)
    try:
        yield
    finally:
        stack.pop()


@contextlib.contextmanager
def NameScope(prefix: str | None, reset: bool = False) -> Iterator[None]:  # noqa: N802
    """Blob names given as strings inside get ``prefix/`` in front (nested scopes stack)."""
    old = scope.name_prefix()
    prefix = "" if prefix is None else str(prefix)
    if reset:
        new = prefix + "/" if prefix else ""
    else:
        new = old + prefix + "/" if prefix else old
    scope.set_name_prefix(new)
    try:
        yield
    finally:
        scope.set_name_prefix(old)


def CurrentNameScope() -> str:  # noqa: N802
    return scope.name_prefix()


def CurrentDeviceScope():  # noqa: N802
    return scope.current_device()


def CreateOperator(  # noqa: N802
    operator_type: str,
    inputs,
    outputs,
    name: str = "",
    control_input=None,
    device_option=None,
    arg=None,
    engine: str | None = None,
    debug_info: str | None = None,
    **kwargs: Any,
):
    """An ``OperatorDef``; nothing is checked until it runs.

    Keyword arguments become ``Argument`` messages by Python type: float -> ``f``,
    int/bool -> ``i``, str -> ``s``, lists -> the repeated fields.
    """
    op = caffe2_pb2.OperatorDef(type=operator_type, name=name)
    op.input.extend(str(b) for b in _rectify(inputs))
    op.output.extend(str(b) for b in _rectify(outputs))
    if control_input:
        op.control_input.extend(str(b) for b in _rectify(control_input))
    if device_option is None:
        device_option = scope.current_device()
    if device_option is not None:
        op.device_option.CopyFrom(device_option)
    if engine is not None:
        op.engine = engine
    if debug_info is not None:
        op.debug_info = debug_info
    if "random_seed" in kwargs:
        op.device_option.random_seed = kwargs.pop("random_seed")
    if arg is not None:
        op.arg.extend(arg if isinstance(arg, list | tuple) else [arg])
    for key, value in kwargs.items():
        if value is not None:
            op.arg.append(make_argument(key, value))
    return op


class GradientRegistry:
    """Caffe2's Python gradient registry facade."""

    RegisterGradient = staticmethod(register_gradient)

    @staticmethod
    def GetGradientForOp(op, g_output):  # noqa: N802
        """``(gradient_ops, g_input)``: arguments, device option and engine copied."""
        return GetGradientForOp(op, [None if g is None else str(g) for g in g_output])

    @staticmethod
    def GetBackwardPass(operators, ys, ys_generate_gradient=False):  # noqa: N802
        """``(gradient_ops, input_to_grad)`` for ``operators`` and outputs ``ys``."""
        if isinstance(ys, Mapping):
            ys_map = {str(k): None if v is None else str(v) for k, v in ys.items()}
        else:
            ys_map = {str(y): None for y in _as_list(ys)}
        return build_backward(operators, ys_map)


class Net:
    """A net under construction. ``net.Clip(inputs, outputs, **args)`` appends an operator."""

    _net_names_used: set[str] = set()

    def __init__(self, name_or_proto, inplace: bool = False) -> None:
        self._next_name_index = 0
        self._registered: set[str] = set()
        if isinstance(name_or_proto, caffe2_pb2.NetDef):
            self._net = caffe2_pb2.NetDef()
            self._net.CopyFrom(name_or_proto)
        elif isinstance(name_or_proto, Net):
            self._net = caffe2_pb2.NetDef()
            self._net.CopyFrom(name_or_proto.Proto())
        else:
            self._net = caffe2_pb2.NetDef(name=Net._unique_name(str(name_or_proto)))
        self._defined: set[str] = set(self._net.external_input)
        for op in self._net.op:
            self._defined.update(op.output)

    @staticmethod
    def _unique_name(base: str) -> str:
        name, k = base, 1
        while name in Net._net_names_used:
            name = f"{base}_{k}"
            k += 1
        Net._net_names_used.add(name)
        return name

    def Proto(self):  # noqa: N802
        return self._net

    def Name(self) -> str:  # noqa: N802
        return self._net.name

    def __str__(self) -> str:
        return self.Name()

    def BlobIsDefined(self, blob) -> bool:  # noqa: N802
        return str(blob) in self._defined

    def UsesBlob(self, blob) -> bool:  # noqa: N802
        blob = str(blob)
        return any(blob in op.input or blob in op.output for op in self._net.op)

    def GetBlobRef(self, blob_name: str) -> BlobReference:  # noqa: N802
        if not self.BlobIsDefined(blob_name):
            raise KeyError(f"net '{self.Name()}' does not define blob '{blob_name}'")
        return BlobReference(blob_name, self)

    def NextName(self, prefix: str | None = None, output_id: int | None = None) -> str:  # noqa: N802
        """An unused, unscoped name (the name scope is added when an operator uses it):
        ``<net>/<prefix>``, else ``<net>/<prefix>_2``, ``_3``, ... (``:<output_id>`` appended);
        without a prefix ``<net>_blob_<k>`` (Caffe2's rule)."""
        if not prefix:
            name = f"{self.Name()}_blob_{self._next_name_index}"
            self._next_name_index += 1
            return name
        base = f"{self.Name()}/{prefix}"
        suffix = "" if output_id is None else f":{output_id}"
        name, index = base + suffix, 2
        while self.BlobIsDefined(ScopedName(name)):
            name = f"{base}_{index}{suffix}"
            index += 1
        return name

    def NextBlob(self, prefix: str | None = None) -> BlobReference:  # noqa: N802
        """A blob name not yet defined or handed out by this net: ``prefix`` (name-scoped), else
        ``prefix_auto_0``, ``prefix_auto_1``, ... (Caffe2's rule)."""
        base = ScopedName(prefix or "unnamed")
        name, index = base, 0
        while name in self._registered or self.BlobIsDefined(name):
            name = f"{base}_auto_{index}"
            index += 1
        self._registered.add(name)
        return BlobReference(name, self)

    def NextScopedBlob(self, prefix: str = "unnamed") -> BlobReference:  # noqa: N802
        return self.NextBlob(prefix)

    def AddExternalInput(self, *inputs) -> BlobReference | list[BlobReference]:  # noqa: N802
        refs = []
        for b in inputs:
            for ref in _rectify(b, self):
                name = str(ref)
                if name in self._net.external_input:
                    raise ValueError(f"net '{self.Name()}' already has external input '{name}'")
                self._net.external_input.append(name)
                self._defined.add(name)
                refs.append(BlobReference(name, self))
        return refs[0] if len(refs) == 1 else refs

    AddExternalInputs = AddExternalInput

    def AddExternalOutput(self, *outputs) -> None:  # noqa: N802
        for b in outputs:
            for ref in _rectify(b, self):
                if str(ref) not in self._net.external_output:
                    self._net.external_output.append(str(ref))

    AddExternalOutputs = AddExternalOutput

    @property
    def external_inputs(self) -> list[BlobReference]:
        return [BlobReference(b, self) for b in self._net.external_input]

    @property
    def external_outputs(self) -> list[BlobReference]:
        return [BlobReference(b, self) for b in self._net.external_output]

    def _add_op(self, op_type: str, inputs, outputs=None, **kwargs):
        inputs = _rectify(inputs, self)
        for ref in inputs:
            if not self.BlobIsDefined(ref):
                self.AddExternalInput(BlobReference(str(ref), self))
        if outputs is None:
            outputs = [self.NextName(prefix=op_type)]
        elif isinstance(outputs, int):
            outputs = [self.NextName(prefix=op_type, output_id=i) for i in range(outputs)]
        outputs = _rectify(outputs, self)
        op = CreateOperator(op_type, inputs, outputs, **kwargs)
        self._net.op.append(op)
        self._defined.update(op.output)
        refs = tuple(BlobReference(name, self) for name in op.output)
        return refs[0] if len(refs) == 1 else refs

    def __getattr__(self, op_type: str):
        if op_type.startswith("__"):
            raise AttributeError(op_type)
        if not has_schema(op_type):
            import difflib

            close = difflib.get_close_matches(op_type, registered_types(), n=5, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise AttributeError(f"Method {op_type} is not a registered operator{hint}")

        def add(inputs, outputs=None, **kwargs):
            return self._add_op(op_type, inputs, outputs, **kwargs)

        add.__name__ = op_type
        return add

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(registered_types()))

    def AddGradientOperators(self, ys, skip: int = 0) -> dict[BlobReference, BlobReference]:  # noqa: N802
        """Append the backward pass for ``ys`` (a list: gradients 1.0 via ConstantFill; a dict:
        the given gradient blobs, None for automatic ones). Returns ``{blob: gradient blob}``."""
        if isinstance(ys, Mapping):
            ys_map = {str(k): None if v is None else str(v) for k, v in ys.items()}
        else:
            ys_map = {str(y): None for y in _as_list(ys)}
        grad_ops, input_to_grad = build_backward(list(self._net.op), ys_map, skip=skip)
        for op in grad_ops:
            self._net.op.append(op)
            self._defined.update(op.output)
        return {BlobReference(k, self): self._grad_ref(v) for k, v in input_to_grad.items()}

    def _grad_ref(self, grad):
        if isinstance(grad, GradientSlice):
            return GradientSlice(BlobReference(grad.indices, self),
                                 BlobReference(grad.values, self))
        return BlobReference(grad, self)

    def Clone(self, name: str, keep_schema: bool = True) -> Net:  # noqa: N802
        proto = caffe2_pb2.NetDef()
        proto.CopyFrom(self._net)
        proto.name = name
        return Net(proto)

    def RunAllOnGPU(self, gpu_id: int = 0) -> None:  # noqa: N802
        self._net.device_option.CopyFrom(DeviceOption(CUDA, gpu_id))
        for op in self._net.op:
            op.device_option.CopyFrom(DeviceOption(CUDA, gpu_id))

    def Ops(self) -> Sequence:  # noqa: N802
        return list(self._net.op)


# --- Caffe2's process-level names: DataType, GlobalInit, engines, device inference, Python ops --


class DataType:
    """``TensorProto.DataType`` values as attributes: ``core.DataType.FLOAT == 1``."""


for _name, _value in caffe2_pb2.TensorProto.DataType.items():
    setattr(DataType, _name, _value)


def GlobalInit(args) -> None:  # noqa: N802
    """Same as ``workspace.GlobalInit``: Caffe2's flags (``args[0]`` is the program name)."""
    from caffe2ops import workspace

    workspace.GlobalInit(args)


def IsOperator(op_type: str) -> bool:  # noqa: N802
    return has_schema(op_type)


_engine_prefs: dict[str, dict] = {"per_op": {}, "global": {}}


def _device_key(key, what: str) -> int:
    known = caffe2_pb2.DeviceType.values()
    if isinstance(key, bool) or not isinstance(key, int) or key not in known:
        raise TypeError(f"SetEnginePref: {what} keys must be caffe2_pb2 device types, got {key!r}")
    return key


def _engine_list(value, what: str) -> list[str]:
    if isinstance(value, str | bytes) or not all(isinstance(e, str) for e in value):
        raise TypeError(f"SetEnginePref: {what} must be a list of engine names, got {value!r}")
    return list(value)


def SetEnginePref(per_op_engine_pref, global_engine_pref) -> None:  # noqa: N802
    """Caffe2's engine preferences: ``{device_type: {op_type: [engines]}}`` and
    ``{device_type: [engines]}``; ``({}, {})`` clears them. Checked and kept (``GetEnginePref``);
    every caffe2ops operator has one implementation per device, so nothing else changes."""
    if not isinstance(per_op_engine_pref, Mapping) or not isinstance(global_engine_pref, Mapping):
        raise TypeError("SetEnginePref: expects two dicts (per-op preferences, global preferences)")
    per_op = {}
    for device, prefs in per_op_engine_pref.items():
        if not isinstance(prefs, Mapping):
            raise TypeError(f"SetEnginePref: per-op preferences for device {device!r} must be "
                            "a dict {op_type: [engines]}")
        per_op[_device_key(device, "per-op")] = {
            str(op): _engine_list(engines, f"engines for {op}") for op, engines in prefs.items()
        }
    global_prefs = {
        _device_key(device, "global"): _engine_list(engines, "global engines")
        for device, engines in global_engine_pref.items()
    }
    _engine_prefs["per_op"], _engine_prefs["global"] = per_op, global_prefs


def GetEnginePref() -> tuple[dict, dict]:  # noqa: N802
    """The preferences last given to :func:`SetEnginePref` (copies)."""
    return dict(_engine_prefs["per_op"]), dict(_engine_prefs["global"])


def _cpu_option():
    return caffe2_pb2.DeviceOption()


# Operators whose blobs live on another device than the operator (Caffe2's device inference).
_CROSS_DEVICE = {
    "CopyCPUToGPU": ("cpu", "op"),
    "CopyGPUToCPU": ("op", "cpu"),
    "EnsureCPUOutput": ("op", "cpu"),
    "CopyFromCPUInput": ("cpu", "op"),
}


def InferOpBlobDevices(op) -> tuple[list, list]:  # noqa: N802
    """``(input devices, output devices)``: the operator's device option for every blob, except
    for Caffe2's copy operators (``CopyCPUToGPU``, ``CopyGPUToCPU``, ``EnsureCPUOutput``,
    ``CopyFromCPUInput``) whose CPU side is CPU."""
    op_device = caffe2_pb2.DeviceOption()
    if op.HasField("device_option"):
        op_device.CopyFrom(op.device_option)
    if op.type in ("CopyCPUToGPU", "CopyGPUToCPU") and not op.HasField("device_option"):
        from caffe2ops.errors import OperatorError

        raise OperatorError(f"{op.type} op should have cuda device option")
    sides = _CROSS_DEVICE.get(op.type, ("op", "op"))

    def pick(side: str):
        option = caffe2_pb2.DeviceOption()
        option.CopyFrom(op_device if side == "op" else _cpu_option())
        return option

    return [pick(sides[0]) for _ in op.input], [pick(sides[1]) for _ in op.output]


def InferOpBlobDevicesAsDict(op) -> tuple[dict, dict]:  # noqa: N802
    """:func:`InferOpBlobDevices` as ``({input: DeviceOption}, {output: DeviceOption})``."""
    inputs, outputs = InferOpBlobDevices(op)
    return dict(zip(op.input, inputs, strict=True)), dict(zip(op.output, outputs, strict=True))


def InferOpDeviceAsBlobDevices(op) -> tuple[list, list]:  # noqa: N802
    op_device = op.device_option if op.device_option else caffe2_pb2.DeviceOption()
    return [op_device] * len(op.input), [op_device] * len(op.output)


def CreatePythonOperator(  # noqa: N802
    f, inputs, outputs, grad_f=None, pass_workspace: bool = False, python_func_type=None,
    *args, **kwargs,
):
    """A ``Python`` OperatorDef running ``f(inputs, outputs)`` (and ``grad_f`` for its gradient);
    see :mod:`caffe2ops.ops.python_op`."""
    from caffe2ops.runtime import python_functions

    if pass_workspace:
        kwargs["pass_workspace"] = True
    kwargs["token"] = python_functions.register(f, grad_f, python_func_type)
    return CreateOperator("Python", inputs, outputs, *args, **kwargs)


def _net_python(
    self, f, grad_f=None, python_func_type=None, pass_workspace: bool = False,
    grad_output_indices=None, grad_input_indices=None,
):
    """``net.Python(f, grad_f=...)(inputs, outputs, **kwargs)`` appends a ``Python`` operator.

    ``f`` and ``grad_f`` are functions ``(inputs, outputs)`` or builder tuples
    ``(func, args, kwargs)`` (built here, in this process).
    """
    from caffe2ops.runtime import python_functions

    if grad_f is not None and isinstance(f, tuple) != isinstance(grad_f, tuple):
        raise ValueError("A tuple has to be passed to both f and grad_f or neither.")
    core_kwargs: dict[str, Any] = {"token": python_functions.register(f, grad_f, python_func_type)}
    if pass_workspace:
        core_kwargs["pass_workspace"] = True

    def add(inputs, outputs=None, **kwargs):
        return self._add_op(
            "Python", inputs, outputs, grad_output_indices=list(grad_output_indices or []),
            grad_input_indices=list(grad_input_indices or []), **kwargs, **core_kwargs,
        )

    return add


Net.Python = _net_python


class ExecutionStep:
    """Caffe2's ``core.ExecutionStep``: nets (or substeps) run ``num_iter`` times."""

    _step_names_used: set[str] = set()

    def __init__(self, name: str | None, nets=None, num_iter: int | None = None) -> None:
        self._step = caffe2_pb2.ExecutionStep(name=name or self._next_name("step"))
        self._nets: dict[str, Net] = {}
        self._substeps: list[ExecutionStep] = []
        if nets is not None:
            for net in [nets] if isinstance(nets, Net) else nets:
                self.AddNet(net)
        if num_iter is not None:
            self._step.num_iter = num_iter

    @classmethod
    def _next_name(cls, base: str) -> str:
        name, k = base, 1
        while name in cls._step_names_used:
            name, k = f"{base}_{k}", k + 1
        cls._step_names_used.add(name)
        return name

    def Name(self) -> str:  # noqa: N802
        return self._step.name

    def __str__(self) -> str:
        return self._step.name

    def Proto(self):  # noqa: N802
        return self._step

    def HasNets(self) -> bool:  # noqa: N802
        return bool(self._step.network)

    def HasSubsteps(self) -> bool:  # noqa: N802
        return bool(self._step.substep)

    def Nets(self) -> list:  # noqa: N802
        return list(self._nets.values())

    def Substeps(self) -> list:  # noqa: N802
        return list(self._substeps)

    def get_net(self, name: str):
        return self._nets[name]

    def SetIter(self, num_iter: int) -> None:  # noqa: N802
        self._step.num_iter = num_iter

    def SetOnlyOnce(self, only_once: bool) -> None:  # noqa: N802
        self._step.only_once = only_once

    def SetShouldStopBlob(self, should_stop_blob) -> None:  # noqa: N802
        self._step.should_stop_blob = str(should_stop_blob)

    def SetConcurrentSubsteps(self, concurrent_substeps: bool) -> None:  # noqa: N802
        self._step.concurrent_substeps = concurrent_substeps

    def AddNet(self, net) -> ExecutionStep:  # noqa: N802
        if self._step.substep:
            raise ValueError("an ExecutionStep has either nets or substeps")
        name = net.Name() if isinstance(net, Net) else str(net)
        if name not in self._nets:
            self._nets[name] = net
            self._step.network.append(name)
        return self

    def AddSubstep(self, substep: ExecutionStep) -> ExecutionStep:  # noqa: N802
        if self._step.network:
            raise ValueError("an ExecutionStep has either nets or substeps")
        self._substeps.append(substep)
        self._step.substep.add().CopyFrom(substep.Proto())
        return self

    def _all_nets(self) -> list:
        nets = list(self._nets.values())
        for sub in self._substeps:
            nets.extend(sub._all_nets())
        return nets


class Plan:
    """Caffe2's ``core.Plan``: nets and the execution steps that run them."""

    def __init__(self, name_or_step) -> None:
        self._plan = caffe2_pb2.PlanDef()
        self._nets: dict[str, Net] = {}
        self._steps: list[ExecutionStep] = []
        if isinstance(name_or_step, ExecutionStep):
            self._plan.name = name_or_step.Name()
            self.AddStep(name_or_step)
        elif isinstance(name_or_step, str):
            self._plan.name = name_or_step
        else:
            raise ValueError("name_or_step must be a string or ExecutionStep")

    def __str__(self) -> str:
        return self._plan.name

    def Proto(self):  # noqa: N802
        return self._plan

    def AddNets(self, nets) -> None:  # noqa: N802
        for net in nets:
            if not isinstance(net, Net):
                raise TypeError(f"Plan.AddNets: expected core.Net objects, got {type(net)}")
            if net.Name() not in self._nets:
                self._nets[net.Name()] = net
                self._plan.network.add().CopyFrom(net.Proto())

    def Nets(self) -> list:  # noqa: N802
        return list(self._nets.values())

    def AddStep(self, step: ExecutionStep) -> None:  # noqa: N802
        if not step.HasNets() and not step.HasSubsteps():
            return
        self._plan.execution_step.add().CopyFrom(step.Proto())
        self._steps.append(step)
        self.AddNets([n for n in step._all_nets() if isinstance(n, Net)])

    def Steps(self) -> list:  # noqa: N802
        return list(self._steps)
