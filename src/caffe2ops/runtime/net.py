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
