"""An OperatorDef's arguments as a plain dict (for matching departures)."""

from __future__ import annotations


def args_of(op) -> dict:
    out = {}
    for arg in op.arg:
        for field in ("f", "i", "s"):
            if arg.HasField(field):
                out[arg.name] = getattr(arg, field)
    return out
