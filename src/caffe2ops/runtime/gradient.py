"""Gradient makers and the backward pass (Caffe2's ``GradientRegistry`` and ``IR``).

A gradient maker gets a :class:`GradientContext` and returns gradient ``OperatorDef``\\ s built
with ``ctx.op(...)``, naming forward blobs through ``ctx.I(i)`` / ``ctx.O(j)`` (so the builder
knows which blob versions the gradient reads) and gradient blobs through ``ctx.GO(j)`` /
``ctx.GI(i)``. As in Caffe2's ``GetGradientForOp``, every gradient op carries ``name`` (empty),
the forward op's device option (when set), its ``engine`` whenever the field is set (even to
""), its arguments (unless the maker sets ``copy_arguments = False``, as Caffe2's Pow maker
does), and ``is_gradient_op``; gradient blobs are named ``<blob>_grad``; a blob that several
operators read gets its gradient contributions summed with ``Sum``.
"""

from __future__ import annotations

import collections
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from caffe2ops.errors import OperatorError
from caffe2ops.proto import caffe2_pb2
from caffe2ops.runtime import scope
from caffe2ops.runtime.args import make_argument, parse_args
from caffe2ops.runtime.schema import NO_GRADIENT, SHOULD_NOT_DO_GRADIENT, get_schema

# A sparse gradient: the rows ``indices`` of a parameter with values ``values`` (Caffe2's
# ``core.GradientSlice``; ``caffe2ops.core.GradientSlice`` is this type).
GradientSlice = collections.namedtuple("GradientSlice", ["indices", "values"])


def grad_name(blob: str) -> str:
    return f"{blob}_grad"


def new_op(op_type: str, inputs: Sequence[str], outputs: Sequence[str]):
    """An OperatorDef as Caffe2's ``CreateOperatorDef``/``CreateOperator`` write it: ``name`` set
    (empty), so the serialized bytes carry the field."""
    return caffe2_pb2.OperatorDef(type=op_type, name="", input=list(inputs), output=list(outputs))


class GradientContext:
    """What a gradient maker sees of its forward operator."""

    def __init__(self, op_def, g_output: Sequence[str | None]) -> None:
        self.def_ = op_def
        self.g_output = list(g_output)
        self.g_input: list[str | None] = [None] * len(op_def.input)
        self.reads: list[tuple[str, int]] = []
        self._args: dict | None = None

    def I(self, i: int) -> str:  # noqa: E743, N802 - Caffe2's names
        self.reads.append(("input", i))
        return self.def_.input[i]

    def O(self, j: int) -> str:  # noqa: E743, N802
        self.reads.append(("output", j))
        return self.def_.output[j]

    def GO(self, j: int) -> str | None:  # noqa: N802
        g = self.g_output[j]
        if isinstance(g, GradientSlice):
            raise OperatorError(
                f"{self.def_.type}: the gradient of output '{self.def_.output[j]}' is sparse "
                f"(a GradientSlice); this operator's gradient needs a dense one"
            )
        return g

    def GI(self, i: int) -> str:  # noqa: N802
        name = grad_name(self.def_.input[i])
        self.g_input[i] = name
        return name

    def set_sparse(self, i: int, indices: str, values: str) -> None:
        """The gradient of input ``i`` is ``GradientSlice(indices, values)`` (Caffe2 SetSparse)."""
        self.g_input[i] = GradientSlice(indices, values)

    def set_dense(self, i: int, name: str) -> None:
        """The gradient of input ``i`` is the existing blob ``name`` (no op writes it)."""
        self.g_input[i] = name

    def arg(self, name: str):
        """A forward argument's value (defaults filled in, as the forward kernel saw it)."""
        if self._args is None:
            self._args = parse_args(get_schema(self.def_.type), self.def_.type, self.def_.arg)
        return self._args[name]

    def op(self, op_type: str, inputs: Sequence[str], outputs: Sequence[str], **kwargs):
        op = new_op(op_type, inputs, outputs)
        for key, value in kwargs.items():
            op.arg.append(make_argument(key, value))
        return op


Maker = Callable[[GradientContext], list]
_PYTHON_MAKERS: dict[str, Maker] = {}


def register_gradient(op_type: str) -> Callable[[Maker], Maker]:
    """Decorator registering a Python gradient maker for ``op_type`` (overrides the schema's)."""

    def deco(fn: Maker) -> Maker:
        _PYTHON_MAKERS[op_type] = fn
        return fn

    return deco


def _maker_for(op_type: str):
    if op_type in _PYTHON_MAKERS:
        return _PYTHON_MAKERS[op_type]
    return get_schema(op_type).gradient


@dataclass
class GradientResult:
    ops: list
    g_input: list
    reads: list


def gradient_for_op(op_def, g_output: Sequence[str | None]) -> GradientResult:
    """Gradient ops of one forward op; raises for SHOULD_NOT_DO_GRADIENT operators."""
    maker = _maker_for(op_def.type)
    if maker is SHOULD_NOT_DO_GRADIENT:
        raise OperatorError(f"One should not call gradient for operator {op_def.type}.")
    if maker is NO_GRADIENT or maker is None:
        return GradientResult([], [None] * len(op_def.input), [])
    if len(g_output) != len(op_def.output):
        raise OperatorError(
            f"{op_def.type}: {len(g_output)} output gradients given for "
            f"{len(op_def.output)} outputs"
        )
    ctx = GradientContext(op_def, g_output)
    ops = maker(ctx)
    copy_arguments = getattr(maker, "copy_arguments", True)
    for op in ops:
        op.is_gradient_op = True
        if op_def.HasField("device_option"):
            op.device_option.CopyFrom(op_def.device_option)
        if op_def.HasField("engine"):
            op.engine = op_def.engine
        if copy_arguments:
            op.arg.extend(op_def.arg)
    return GradientResult(ops, ctx.g_input, ctx.reads)


def GetGradientForOp(op_def, g_output):  # noqa: N802 - Caffe2's name
    """``(gradient_ops, g_input)`` for ``op_def`` given its output gradients, as Caffe2."""
    result = gradient_for_op(op_def, g_output)
    return result.ops, result.g_input


def _ir_op(op_type: str, inputs: Sequence[str], outputs: Sequence[str]):
    """The ops the backward pass itself adds (autogen ConstantFill, Sum) take the current
    ``DeviceScope``, as Caffe2's IR creates them with ``core.CreateOperator``."""
    op = new_op(op_type, inputs, outputs)
    device = scope.current_device()
    if device is not None:
        op.device_option.CopyFrom(device)
    return op


def build_backward(
    ops: Sequence, ys: Mapping[str, str | None], skip: int = 0
) -> tuple[list, dict[str, str]]:
    """The gradient ops of ``ops[skip:]`` for the outputs ``ys`` and ``{blob: gradient blob}``.

    ``ys`` maps each output to a given gradient blob, or None for an automatic
    ``ConstantFill(value=1.0)`` named ``<y>_autogen_grad``.
    """
    ops = list(ops)
    # Forward versions: each write of a blob makes a new version.
    version: dict[str, int] = defaultdict(int)
    in_versions, out_versions = [], []
    for op in ops:
        in_versions.append([version[b] for b in op.input])
        for b in op.output:
            version[b] += 1
        out_versions.append([version[b] for b in op.output])
    final = dict(version)

    grad_ops: list = []
    contributions: dict[tuple[str, int], list[tuple[str, object]]] = defaultdict(list)
    for y, given in ys.items():
        y = str(y)
        if given is None:
            fill = _ir_op("ConstantFill", [y], [f"{y}_autogen_grad"])
            fill.arg.append(make_argument("value", 1.0))
            grad_ops.append(fill)
            contributions[(y, final.get(y, 0))].append((fill.output[0], None))
        else:
            contributions[(y, final.get(y, 0))].append((str(given), None))

    input_to_grad: dict[str, str] = {}

    def finalize(key: tuple[str, int]) -> str | None:
        parts = contributions.pop(key, None)
        if not parts:
            return None
        blob = key[0]
        if len(parts) == 1:
            name = parts[0][0]
        elif any(isinstance(part, GradientSlice) for part, _ in parts):
            raise OperatorError(
                f"blob '{blob}' gets {len(parts)} gradient contributions and some are sparse "
                f"(GradientSlice); summing sparse gradients is not supported yet"
            )
        else:
            target = grad_name(blob)
            names = []
            for k, (part, producer) in enumerate(parts):
                if part == target and producer is not None:
                    op_def, j = producer
                    part = f"{target}_autosplit_{k}"
                    op_def.output[j] = part
                names.append(part)
            if target in names:  # Caffe2: Sum runs in place on its first input only
                k = names.index(target)
                names[0], names[k] = names[k], names[0]
            grad_ops.append(_ir_op("Sum", names, [target]))
            name = target
        input_to_grad[blob] = name
        return name

    for idx in range(len(ops) - 1, skip - 1, -1):
        op = ops[idx]
        g_output = [finalize((b, v)) for b, v in zip(op.output, out_versions[idx], strict=True)]
        if all(g is None for g in g_output):
            continue
        result = gradient_for_op(op, g_output)
        for kind, i in result.reads:
            blob = op.input[i] if kind == "input" else op.output[i]
            needed = in_versions[idx][i] if kind == "input" else out_versions[idx][i]
            if final.get(blob, 0) != needed:
                raise OperatorError(
                    f"{op.type} (operator #{idx}): its gradient needs {kind} '{blob}' as the "
                    f"forward operator saw it, but '{blob}' was overwritten in place (by this "
                    f"operator or a later one); run {op.type} out of place to differentiate it"
                )
        grad_ops.extend(result.ops)
        # Each input's gradient claims the gradient-op output that writes it; one blob feeding
        # two inputs of the op (CosineSimilarity(x, x)) has two outputs of the same name.
        unclaimed = [(gop, j) for gop in result.ops for j in range(len(gop.output))]
        for i, g in enumerate(result.g_input):
            if g is None:
                continue
            producer = next(((gop, j) for gop, j in unclaimed if gop.output[j] == g), None)
            if producer is not None:
                unclaimed.remove(producer)
            contributions[(op.input[i], in_versions[idx][i])].append((g, producer))
    for key in sorted(contributions, key=lambda k: -k[1]):
        finalize(key)
    return grad_ops, input_to_grad
