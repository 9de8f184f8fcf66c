"""Shared pieces of the training-module tests (model_helper, brew, optimizer, predictor)."""

from __future__ import annotations

import pytest

from caffe2ops.runtime.schema import has_schema


def requires_ops(*op_types: str):
    """Skip (naming them) while any of ``op_types`` is not registered yet."""
    missing = [t for t in op_types if not has_schema(t)]
    return pytest.mark.skipif(
        bool(missing), reason=f"operators not registered yet: {', '.join(missing)}"
    )


def op_types(net) -> list[str]:
    return [op.type for op in net.Proto().op]


def arg_names(op) -> list[str]:
    return [a.name for a in op.arg]


def arg_value(op, name: str):
    """The value of argument ``name`` of ``op``: its scalar field, else its list."""
    for a in op.arg:
        if a.name != name:
            continue
        for field in ("f", "i", "s"):
            if a.HasField(field):
                value = getattr(a, field)
                return value.decode() if field == "s" else value
        return list(a.floats) or list(a.ints) or [s.decode() for s in a.strings]
    raise KeyError(f"{op.type} has no argument {name!r}")
