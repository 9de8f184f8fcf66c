"""Operator schemas and the registry of operator types.

A schema states what Caffe2's ``OPERATOR_SCHEMA`` stated: input/output counts, arguments with
their types and defaults, allowed and enforced in-place pairs, shape inference, doc text; plus the
kernel that runs it and the gradient maker that differentiates it.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from caffe2ops.errors import UnknownOperatorError

ARG_KINDS = ("float", "number", "int", "bool", "string", "floats", "ints", "strings")


@dataclass(frozen=True)
class Arg:
    """One operator argument: ``kind`` is one of :data:`ARG_KINDS`; ``default`` None = absent."""

    name: str
    kind: str
    default: Any = None
    doc: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ARG_KINDS:
            raise ValueError(f"argument kind must be one of {ARG_KINDS}, got {self.kind!r}")


class _NoGradient:
    """Marker: no gradient; asking for one yields nothing (Caffe2 NO_GRADIENT)."""

    def __repr__(self) -> str:
        return "NO_GRADIENT"


class _ShouldNotDoGradient:
    """Marker: asking for this operator's gradient is an error (Caffe2 SHOULD_NOT_DO_GRADIENT)."""

    def __repr__(self) -> str:
        return "SHOULD_NOT_DO_GRADIENT"


class _GradientNotRegistered:
    """Marker: Caffe2 registered no gradient maker at all; asking for one raises (Caffe2's
    ``GradientRegistry()->Has(type)`` enforcement). Gradient operators use it."""

    def __repr__(self) -> str:
        return "GRADIENT_NOT_REGISTERED"


NO_GRADIENT = _NoGradient()
SHOULD_NOT_DO_GRADIENT = _ShouldNotDoGradient()
GRADIENT_NOT_REGISTERED = _GradientNotRegistered()

# kernel(op, inputs, output_buffers) -> outputs. ``op`` is the operator instance (type, args).
Kernel = Callable[[Any, Sequence[Any], Sequence[Any]], Sequence[Any]]


@dataclass
class OpSchema:
    """What an operator type accepts and how it runs; see the module doc."""

    type: str
    kernel: Kernel
    num_inputs: tuple[int, int] = (1, 1)
    num_outputs: tuple[int, int] = (1, 1)
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    args: tuple[Arg, ...] = ()
    allow_inplace: frozenset[tuple[int, int]] = frozenset()
    enforce_inplace: frozenset[tuple[int, int]] = frozenset()
    infer: Callable[..., list] | None = None
    check_args: Callable[[str, dict], None] | None = None
    gradient: Any = NO_GRADIENT
    doc: str = ""
    arg_map: dict[str, Arg] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.arg_map = {a.name: a for a in self.args}
        self.allow_inplace = frozenset(self.allow_inplace) | frozenset(self.enforce_inplace)

    def input_name(self, i: int) -> str:
        return self.inputs[i] if i < len(self.inputs) else f"input {i}"

    def output_name(self, j: int) -> str:
        return self.outputs[j] if j < len(self.outputs) else f"output {j}"


_REGISTRY: dict[str, OpSchema] = {}
_DEVICE_RUNNERS: dict[int, Callable] = {}


def register_device_runner(device_type: int, runner: Callable) -> None:
    """``runner(op, inputs, outs)`` runs every operator whose device option is ``device_type``
    (CPU operators run their schema's kernel). ``caffe2ops.ops._dispatch`` registers CUDA's."""
    _DEVICE_RUNNERS[device_type] = runner


def device_runner(device_type: int) -> Callable:
    """The runner registered for ``device_type`` (KeyError if none)."""
    return _DEVICE_RUNNERS[device_type]


def register(schema: OpSchema, *aliases: str) -> OpSchema:
    """Register ``schema`` under its type and any aliases (same schema, other name)."""
    for name in (schema.type, *aliases):
        if name in _REGISTRY:
            raise ValueError(f"operator type {name!r} is registered twice")
        _REGISTRY[name] = schema
    return schema


def get_schema(op_type: str) -> OpSchema:
    """The schema of ``op_type``; an unknown type raises naming it and the closest names."""
    schema = _REGISTRY.get(op_type)
    if schema is None:
        close = difflib.get_close_matches(op_type, list(_REGISTRY), n=5, cutoff=0.5)
        hint = f"; closest registered: {', '.join(close)}" if close else ""
        raise UnknownOperatorError(f"unknown operator type {op_type!r}{hint}")
    return schema


def has_schema(op_type: str) -> bool:
    return op_type in _REGISTRY


def registered_types() -> list[str]:
    """Every registered operator type (aliases included), sorted."""
    return sorted(_REGISTRY)
