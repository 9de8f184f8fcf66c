"""A created net: its operators verified once and kept, then run as often as asked."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from caffe2ops.runtime.operator import Operator


def _add_context(exc: BaseException, text: str) -> None:
    if hasattr(exc, "add_note"):
        exc.add_note(text)


class NetInstance:
    """Operators of a ``NetDef`` instantiated once; ``run`` executes them in order."""

    __slots__ = ("name", "definition", "operators")

    def __init__(self, net_def) -> None:
        self.name = net_def.name
        self.definition = net_def
        operators = []
        for idx, op_def in enumerate(net_def.op):
            try:
                operators.append(Operator(op_def))
            except Exception as exc:
                _add_context(exc, f"while creating net '{self.name}', operator #{idx}")
                raise
        self.operators = tuple(operators)

    def run(self, blobs: MutableMapping[str, Any]) -> None:
        op = None
        try:
            for op in self.operators:
                op.run(blobs)
        except Exception as exc:
            idx = self.operators.index(op)
            _add_context(exc, f"while running net '{self.name}', operator #{idx} ({op.type})")
            raise


def final_outputs(net_def) -> list[str]:
    """Blobs the net writes that no later operator reads, in the order they are first written."""
    read_later: set[str] = set()
    outputs: list[str] = []
    for op in reversed(net_def.op):
        outputs += [b for b in op.output if b not in read_later and b not in outputs]
        read_later.update(op.input)
    return outputs[::-1]


def free_inputs(net_def) -> list[str]:
    """Blobs the net reads before any of its operators writes them, in first-read order."""
    written: set[str] = set()
    inputs: list[str] = []
    for op in net_def.op:
        inputs += [b for b in op.input if b not in written and b not in inputs]
        written.update(op.output)
    return inputs
