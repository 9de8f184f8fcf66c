"""Draw a net as a graph of operators and blobs, like Caffe2's ``net_drawer``.

Operators are green boxes labelled ``Type (op#i)``; blobs are octagons. A blob written again (in
place, or by a later operator) gets a new node, so the graph stays acyclic: node ids are the blob
name plus its version (``X0``, ``X1``) and the label is the name. :func:`to_dot` gives Graphviz
DOT text without any dependency; :func:`GetPydotGraph` gives a ``pydot.Dot`` (pydot needed);
:func:`write_graph` writes ``.dot`` always and ``.svg`` / ``.png`` through Graphviz's ``dot``.

>>> from caffe2ops import core
>>> net = core.Net("tiny"); _ = net.Clip(["X"], ["X"], min=0.0)
>>> print(to_dot(net))
digraph "tiny" {
  rankdir=LR;
  "Clip (op#0)" [shape=box, color="#0F9D58", style=filled, fontcolor="#FFFFFF"];
  "X0" [shape=octagon, label="X"];
  "X1" [shape=octagon, label="X"];
  "X0" -> "Clip (op#0)";
  "Clip (op#0)" -> "X1";
}
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

OP_STYLE = {"shape": "box", "color": "#0F9D58", "style": "filled", "fontcolor": "#FFFFFF"}
BLOB_STYLE = {"shape": "octagon"}


class GraphvizNotFoundError(OSError):
    """SVG or PNG output was asked for but Graphviz's ``dot`` program is not installed."""


@dataclass
class Graph:
    """Nodes (id -> (label, kind)) in insertion order, and edges between node ids."""

    name: str
    nodes: dict[str, tuple[str, str]] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)
    ops: list = field(default_factory=list)  # (node id, OperatorDef, index)


def _operators_and_name(operators_or_net, name: str | None):
    proto = operators_or_net.Proto() if hasattr(operators_or_net, "Proto") else operators_or_net
    if hasattr(proto, "op") and hasattr(proto, "external_input"):
        return list(proto.op), name or proto.name or "unnamed"
    return list(proto), name or "unnamed"


def op_label(op, op_id: int) -> str:
    """Caffe2's op node name: ``name/Type (op#i)`` or ``Type (op#i)``."""
    return f"{op.name}/{op.type} (op#{op_id})" if op.name else f"{op.type} (op#{op_id})"


def build_graph(operators_or_net, name: str | None = None) -> Graph:
    """The graph of a ``NetDef``, a ``core.Net`` or a list of ``OperatorDef``."""
    operators, name = _operators_and_name(operators_or_net, name)
    graph = Graph(name)
    current: dict[str, str] = {}
    versions: dict[str, int] = defaultdict(int)
    for op_id, op in enumerate(operators):
        op_node = op_label(op, op_id)
        graph.nodes[op_node] = (op_node, "op")
        graph.ops.append((op_node, op, op_id))
        for blob in op.input:
            if blob not in current:
                current[blob] = f"{blob}{versions[blob]}"
                graph.nodes[current[blob]] = (blob, "blob")
            graph.edges.append((current[blob], op_node))
        for blob in op.output:
            if blob in current:
                versions[blob] += 1
            current[blob] = f"{blob}{versions[blob]}"
            graph.nodes[current[blob]] = (blob, "blob")
            graph.edges.append((op_node, current[blob]))
    return graph


def _quote(text: str) -> str:
    return json.dumps(text)


def _attrs(style: dict) -> str:
    return ", ".join(f"{k}={_quote(v) if not v.isalnum() else v}" for k, v in style.items())


def to_dot(operators_or_net, name: str | None = None, rankdir: str = "LR") -> str:
    """Graphviz DOT text of the net (see the module doc for the drawing)."""
    graph = build_graph(operators_or_net, name)
    lines = [f"digraph {_quote(graph.name)} {{", f"  rankdir={rankdir};"]
    for node_id, (label, kind) in graph.nodes.items():
        if kind == "op":
            lines.append(f"  {_quote(node_id)} [{_attrs(OP_STYLE)}];")
        else:
            lines.append(f"  {_quote(node_id)} [{_attrs(BLOB_STYLE)}, label={_quote(label)}];")
    lines += [f"  {_quote(a)} -> {_quote(b)};" for a, b in graph.edges]
    return "\n".join(lines + ["}"]) + "\n"


def GetOpNodeProducer(append_output: bool, **kwargs) -> Callable:  # noqa: N802 - Caffe2's name
    """Caffe2's factory of pydot op nodes (``append_output`` adds the output names)."""
    import pydot

    def producer(op, op_id):
        name = op_label(op, op_id)
        if append_output:
            name += "".join("\n" + o for o in op.output)
        return pydot.Node(name, **kwargs)

    return producer


def GetBlobNodeProducer(**kwargs) -> Callable:  # noqa: N802
    import pydot

    def producer(node_name, label):
        return pydot.Node(node_name, label=label, **kwargs)

    return producer


def _pydot():
    try:
        import pydot
    except ImportError:
        raise ImportError("GetPydotGraph needs pydot (pip install pydot); to_dot() gives the "
                          "same graph as DOT text without it") from None
    return pydot


def GetPydotGraph(  # noqa: N802
    operators_or_net, name: str | None = None, rankdir: str = "LR",
    op_node_producer: Callable | None = None, blob_node_producer: Callable | None = None,
):
    """The net as a ``pydot.Dot``, as Caffe2's ``net_drawer.GetPydotGraph`` returned it."""
    pydot = _pydot()
    op_node_producer = op_node_producer or GetOpNodeProducer(False, **OP_STYLE)
    blob_node_producer = blob_node_producer or GetBlobNodeProducer(**BLOB_STYLE)
    graph = build_graph(operators_or_net, name)
    dot = pydot.Dot(_quote(graph.name), graph_type="digraph", rankdir=rankdir)
    made = {}
    for op_node, op, op_id in graph.ops:
        made[op_node] = op_node_producer(op, op_id)
    for node_id, (label, kind) in graph.nodes.items():
        if kind == "blob":
            made[node_id] = blob_node_producer(_quote(node_id), label=_quote(label))
        dot.add_node(made[node_id])
    for a, b in graph.edges:
        dot.add_edge(pydot.Edge(made[a], made[b]))
    return dot


def write_graph(operators_or_net, path: str, rankdir: str = "LR") -> str:
    """Write the drawing to ``path`` (``.dot``, ``.svg`` or ``.png``); a one-line summary."""
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if ext not in ("dot", "gv", "svg", "png"):
        raise ValueError(f"draw: the output must end in .dot, .svg or .png; got {path!r}")
    dot_text = to_dot(operators_or_net, rankdir=rankdir)
    graph = build_graph(operators_or_net)
    summary = (f"wrote {path}: {len(graph.ops)} operators, "
               f"{sum(k == 'blob' for _, k in graph.nodes.values())} blob nodes")
    if ext in ("dot", "gv"):
        with open(path, "w", encoding="utf-8") as f:
            f.write(dot_text)
        return summary
    program = shutil.which("dot")
    if program is None:
        raise GraphvizNotFoundError(
            f"draw: writing {ext.upper()} needs Graphviz's `dot` program, which is not installed "
            f"(e.g. `apt-get install graphviz`); write a .dot file instead, it needs nothing")
    subprocess.run([program, f"-T{ext}", "-o", path], input=dot_text.encode(), check=True,
                   capture_output=True)
    return summary
