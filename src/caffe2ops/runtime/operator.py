"""An operator instance: an ``OperatorDef`` checked against its schema, ready to run on blobs.

Construction verifies input/output counts and in-place pairs and parses the arguments, as
Caffe2's ``CreateOperator`` did; ``run`` reads the input blobs from a plain dict, hands the
output blobs that already exist to the kernel for reuse, and stores what it returns.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from caffe2ops.errors import BlobNotFoundError, OperatorError, SchemaError
from caffe2ops.runtime.args import check_unknown, parse_args
from caffe2ops.runtime.schema import device_runner, get_schema

CPU, CUDA = 0, 1


def verify(schema, op_def) -> None:
    """Caffe2's ``OpSchema::Verify``: counts and in-place pairs (raises :class:`SchemaError`)."""
    name = op_def.type
    n_in, n_out = len(op_def.input), len(op_def.output)
    lo, hi = schema.num_inputs
    if not lo <= n_in <= hi:
        want = f"{lo}" if lo == hi else f"{lo} to {hi}"
        raise SchemaError(f"{name}: expects {want} inputs, got {n_in} ({list(op_def.input)})")
    lo, hi = schema.num_outputs
    if not lo <= n_out <= hi:
        want = f"{lo}" if lo == hi else f"{lo} to {hi}"
        raise SchemaError(f"{name}: expects {want} outputs, got {n_out} ({list(op_def.output)})")
    for i, j in schema.enforce_inplace:
        if i < n_in and j < n_out and op_def.input[i] != op_def.output[j]:
            raise SchemaError(
                f"{name}: output {j} ('{op_def.output[j]}') must be the same blob as input {i} "
                f"('{op_def.input[i]}'): this operator works in place"
            )
    for i, in_name in enumerate(op_def.input):
        for j, out_name in enumerate(op_def.output):
            if in_name == out_name and (i, j) not in schema.allow_inplace:
                raise SchemaError(
                    f"{name}: input {i} and output {j} are both '{in_name}', but {name} "
                    f"cannot run in place on that pair"
                    + (f" (allowed pairs: {sorted(schema.allow_inplace)})"
                       if schema.allow_inplace else "")
                )


class Operator:
    """A verified operator ready to run; nets keep these between runs."""

    __slots__ = ("definition", "schema", "type", "inputs", "outputs", "args", "kernel", "device",
                 "__weakref__")  # per-instance state (a filler's RNG) is kept in weak maps

    def __init__(self, op_def) -> None:
        schema = get_schema(op_def.type)
        verify(schema, op_def)
        self.definition = op_def
        self.schema = schema
        self.type = op_def.type
        self.inputs = tuple(op_def.input)
        self.outputs = tuple(op_def.output)
        self.args = parse_args(schema, op_def.type, op_def.arg)
        check_unknown(schema, op_def)
        self.kernel = schema.kernel
        self.device = op_def.device_option.device_type if op_def.HasField("device_option") else CPU
        if self.device not in (CPU, CUDA):
            raise OperatorError(f"{self.type}: device type {self.device} is not supported")

    def run(self, blobs: MutableMapping[str, Any]) -> None:
        """Run once on the blobs of ``blobs`` (a name -> array mapping)."""
        try:
            inputs = [blobs[name] for name in self.inputs]
        except KeyError:
            missing = [n for n in self.inputs if n not in blobs]
            raise BlobNotFoundError(
                f"{self.type}: input blob '{missing[0]}' does not exist in the workspace"
            ) from None
        run = self.kernel if self.device == CPU else device_runner(self.device)
        results = run(self, inputs, [blobs.get(n) for n in self.outputs])
        for name, value in zip(self.outputs, results, strict=True):
            blobs[name] = value

    def __repr__(self) -> str:
        return f"Operator({self.type}, {list(self.inputs)} -> {list(self.outputs)})"
