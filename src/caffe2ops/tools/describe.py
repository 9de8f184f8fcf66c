"""``caffe2ops ops`` and ``caffe2ops describe``: what the schemas say, as plain text or Markdown.

Everything printed comes from the registered :class:`~caffe2ops.runtime.schema.OpSchema`: inputs,
outputs, arguments (type, default, doc), in-place pairs, and the gradient operators, which are
found by asking the gradient registry for the gradient of a sample ``OperatorDef``. The example
of each operator is run when it is described, and its printed output is shown.
"""

from __future__ import annotations

import contextlib
import io
import re
from dataclasses import dataclass, field

import numpy as np

from caffe2ops import core, workspace
from caffe2ops.errors import OperatorError
from caffe2ops.ops._dispatch import reference_kernels
from caffe2ops.runtime.gradient import gradient_for_op
from caffe2ops.runtime.schema import (
    NO_GRADIENT,
    SHOULD_NOT_DO_GRADIENT,
    OpSchema,
    get_schema,
    registered_types,
)

_VALUES = np.array([[-1.5, -0.25, 0.0], [0.5, 1.0, 2.0]], dtype=np.float32)
_POSITIVE = np.array([[0.5, 1.0, 2.0], [4.0, 0.25, 8.0]], dtype=np.float32)


@dataclass
class Example:
    """Inputs (blob name -> array) and arguments of one runnable example."""

    inputs: dict[str, np.ndarray]
    args: dict = field(default_factory=dict)
    outputs: list[str] | None = None
    before: list[tuple[str, list[str], list[str]]] = field(default_factory=list)  # ops run first


def _f32(values) -> np.ndarray:
    return np.array(values, dtype=np.float32)


_INDICES, _LENGTHS = np.array([0, 1, 1], np.int64), np.array([1, 2], np.int32)
_TABLE = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=np.float32)
_ROWS = np.array([0, 2], np.int64)

# Operators whose inputs the generic example (every input a small float32 matrix) does not fit.
EXAMPLES: dict[str, Example] = {
    "ClipTensorByScaling": Example({"input_tensor": _f32([3.0, -4.0]), "val": _f32([5.0])},
                                   {"threshold": 1.0}),
    "ConstantFill": Example({}, {"shape": [2, 3], "value": 1.0}),
    "CosineEmbeddingCriterion": Example({"S": _f32([0.9, 0.2, -0.5, 0.4]),
                                         "label": np.array([1, -1, 1, -1], np.int32)},
                                        {"margin": 0.1}),
    "CosineEmbeddingCriterionGradient": Example(
        {"S": _f32([0.9, 0.2, -0.5]), "label": np.array([1, -1, -1], np.int32),
         "dLoss": _f32([1.0, 1.0, 1.0])}, {"margin": 0.1}),
    "CosineSimilarityGradient": Example({"X": _VALUES, "Y": _POSITIVE, "dZ": _f32([1.0, 1.0])}),
    "Div": Example({"A": _VALUES, "B": _POSITIVE}),
    "DivGradient": Example({"dC": np.ones_like(_VALUES), "A": _VALUES, "B": _POSITIVE,
                            "C": _VALUES / _POSITIVE}),
    "EnsureClipped": Example({"param": _VALUES}, {"min": -1.0, "max": 1.0}, ["param"]),
    "Float16SparseNormalize": Example({"param": _f32([[3.0, 4.0], [0.375, 0.5], [6.0, 8.0]]),
                                       "indices": np.array([0, 1], np.int64)}, {}, ["param"]),
    "LpNormGradient": Example({"X": _VALUES, "dout": _f32([1.0])}, {"p": 2}),
    "Pow": Example({"X": _VALUES}, {"exponent": 2.0}),
    "PowGradient": Example({"X": _VALUES, "dY": np.ones_like(_VALUES)}, {"exponent": 2.0}),
    "SparseNormalize": Example({"param": _f32([[3.0, 4.0], [0.375, 0.5], [6.0, 8.0]]),
                                "indices": np.array([0, 1], np.int64)}, {}, ["param"]),
    "Sum": Example({"data_0": _VALUES, "data_1": _POSITIVE}),
    "FC": Example({"X": _VALUES, "W": _f32([[1.0, 0.0, -1.0], [0.5, 0.5, 0.5]]),
                   "b": _f32([0.0, 1.0])}),
    "Gather": Example({"DATA": _VALUES, "INDICES": np.array([1, 0, 1], np.int64)}),
    "GivenTensorFill": Example({}, {"values": [1.0, 2.0, 3.0, 4.0], "shape": [2, 2]}),
    "SparseLengthsSum": Example({"DATA": _VALUES, "INDICES": _INDICES, "LENGTHS": _LENGTHS}),
    "SparseLengthsMean": Example({"DATA": _VALUES, "INDICES": _INDICES, "LENGTHS": _LENGTHS}),
    "SparseLengthsWeightedSum": Example({"DATA": _VALUES, "SCALARS": _f32([1.0, 0.5, 2.0]),
                                         "INDICES": _INDICES, "LENGTHS": _LENGTHS}),
    "SparseLengthsIndicesInGradientSumGradient": Example(
        {"dY": _POSITIVE, "LENGTHS": _LENGTHS, "INDICES": _INDICES}),
    "SparseLengthsIndicesInGradientMeanGradient": Example(
        {"dY": _POSITIVE, "LENGTHS": _LENGTHS, "INDICES": _INDICES}),
    "SparseLengthsIndicesInGradientWeightedSumGradient": Example(
        {"SCALARS": _f32([1.0, 0.5, 2.0]), "dY": _POSITIVE, "LENGTHS": _LENGTHS,
         "INDICES": _INDICES}),
    "SparseLengthsIndicesInGradientWeightedSumWithMainInputGradient": Example(
        {"SCALARS": _f32([1.0, 0.5, 2.0]), "dY": _POSITIVE, "LENGTHS": _LENGTHS,
         "DATA": _VALUES, "INDICES": _INDICES}),
    "SparseToDense": Example({"INDICES": np.array([0, 2], np.int64), "VALUES": _VALUES}),
    "Adagrad": Example({"param": _VALUES, "moment": _POSITIVE, "grad": _POSITIVE,
                        "lr": _f32([0.1])}, {}, ["param", "moment"]),
    "Adam": Example({"param": _VALUES, "moment_1": _POSITIVE, "moment_2": _POSITIVE,
                     "grad": _POSITIVE, "lr": _f32([0.1]), "iter": np.array([0], np.int64)},
                    {}, ["param", "moment_1", "moment_2"]),
    "SparseAdagrad": Example({"param": _TABLE, "moment": np.ones_like(_TABLE),
                              "indices": _ROWS, "grad": _TABLE[:2], "lr": _f32([0.1])}),
    "RowWiseSparseAdagrad": Example({"param": _TABLE, "moment": _f32([1.0, 1.0, 1.0]),
                                     "indices": _ROWS, "grad": _TABLE[:2], "lr": _f32([0.1])}),
    "SparseAdam": Example({"param": _TABLE, "moment_1": np.zeros_like(_TABLE),
                           "moment_2": np.zeros_like(_TABLE), "indices": _ROWS,
                           "grad": _TABLE[:2], "lr": _f32([0.1]),
                           "iter": np.array([0], np.int64)}),
    "ScatterWeightedSum": Example({"X_0": _TABLE, "Weight_0": _f32([1.0]), "INDICES": _ROWS,
                                   "X_1": _TABLE[:2], "Weight_1": _f32([0.5])}),
    "WeightedSum": Example({"X0": _VALUES, "w0": _f32([0.5]), "X1": _POSITIVE,
                            "w1": _f32([2.0])}),
    "WeightedSumGradient": Example({"dY": _POSITIVE, "X0": _VALUES, "w0": _f32([0.5])}),
    "Iter": Example({"iter": np.array([0], np.int64)}),
    "AtomicIter": Example({"iter": np.array([0], np.int64)}, {}, ["iter"],
                          [("CreateMutex", [], ["mutex"])]),
    "LearningRate": Example({"input": np.array([5], np.int64)},
                            {"base_lr": -0.1, "policy": "step", "stepsize": 2, "gamma": 0.5}),
    "FCGradient": Example({"X": _VALUES, "W": _POSITIVE, "dY": _f32([[1.0, 1.0], [1.0, 1.0]])}),
    "AveragedLossGradient": Example({"X": _VALUES, "dSum": _f32([1.0])}),
    "SumElementsGradient": Example({"X": _VALUES, "dSum": _f32([1.0])}),
    "SquaredL2DistanceGradient": Example({"X": _VALUES, "Y": _POSITIVE,
                                          "dDistance": _f32([1.0, 1.0])}),
    "GivenTensorIntFill": Example({}, {"values": [1, 2, 3], "shape": [3]}),
    "GivenTensorInt64Fill": Example({}, {"values": [1, 2, 3], "shape": [3]}),
    "GivenTensorBoolFill": Example({}, {"values": [1, 0, 1], "shape": [3]}),
    "UniformFill": Example({}, {"shape": [2, 3], "min": -1.0, "max": 1.0}),
}
_ARGS: dict[str, dict] = {"Clip": {"min": -1.0, "max": 1.0}, "ClipGradient": {"min": -1.0,
                          "max": 1.0}, "ThresholdedRelu": {"alpha": 0.5}}


def example_for(schema: OpSchema, name: str) -> Example:
    """The example of operator ``name``: from :data:`EXAMPLES`, else one float32 matrix per
    required input (``X`` and ``dY``-like inputs alike)."""
    if name in EXAMPLES:
        return EXAMPLES[name]
    count = max(schema.num_inputs[0], min(len(schema.inputs), schema.num_inputs[1]))
    inputs = {schema.input_name(i): _VALUES if i == 0 else _POSITIVE for i in range(count)}
    return Example(inputs, dict(_ARGS.get(name, {})))


def _literal(a: np.ndarray) -> str:
    return f"np.array({a.tolist()!r}, dtype=np.{a.dtype.name})"


def _outputs(schema: OpSchema, ex: Example) -> list[str]:
    """The example's outputs: given, else the schema's, in place where the schema enforces it."""
    if ex.outputs:
        return ex.outputs
    names = list(ex.inputs)
    outputs = [schema.output_name(j) for j in range(schema.num_outputs[0])]
    for i, j in schema.enforce_inplace:
        if i < len(names) and j < len(outputs):
            outputs[j] = names[i]
    return outputs


# Operators that run a user's function: the example registers one.
CODE_EXAMPLES: dict[str, str] = {
    "Python": """import numpy as np
from caffe2ops import core, workspace

def double(inputs, outputs):
    outputs[0].feed(2 * inputs[0].data)

workspace.FeedBlob('X', np.array([1.0, -2.0], np.float32))
workspace.RunOperatorOnce(core.CreatePythonOperator(double, ['X'], ['Y']))
print('Y', workspace.FetchBlob('Y'))""",
    "PythonGradient": """import numpy as np
from caffe2ops import core, workspace

def square(inputs, outputs):
    outputs[0].feed(inputs[0].data ** 2)

def square_grad(inputs, outputs):  # inputs: X, Y, dY; outputs: dX
    outputs[0].feed(2 * inputs[0].data * inputs[2].data)

net = core.Net('python_gradient_example')
net.Python(square, grad_f=square_grad)(['X'], ['Y'])
net.AddGradientOperators(['Y'])              # ConstantFill, then PythonGradient
workspace.FeedBlob('X', np.array([1.0, -2.0], np.float32))
workspace.RunNetOnce(net)
print('X_grad', workspace.FetchBlob('X_grad'))""",
}


def example_code(name: str) -> str:
    """Python source that runs the example of ``name`` and prints its outputs."""
    if name in CODE_EXAMPLES:
        return CODE_EXAMPLES[name]
    schema = get_schema(name)
    ex = example_for(schema, name)
    outputs = _outputs(schema, ex)
    lines = ["import numpy as np", "from caffe2ops import core, workspace", ""]
    lines += [f"workspace.FeedBlob({k!r}, {_literal(v)})" for k, v in ex.inputs.items()]
    lines += [f"workspace.RunOperatorOnce(core.CreateOperator({t!r}, {i!r}, {o!r}))"
              for t, i, o in ex.before]
    inputs = [*[b for _, _, outs in ex.before for b in outs], *ex.inputs]
    args = "".join(f", {k}={v!r}" for k, v in ex.args.items())
    if name.endswith("Fill") and not name.startswith(("Given", "Constant")):
        args += ", device_option=core.DeviceOption(0, random_seed=1)"  # the same numbers
    lines.append(f"op = core.CreateOperator({name!r}, {inputs!r}, {outputs!r}{args})")
    lines.append("workspace.RunOperatorOnce(op)")
    lines += [f"print({o!r}, workspace.FetchBlob({o!r}))" for o in outputs]
    return "\n".join(lines)


def run_example(name: str) -> str:
    """Run the example of ``name`` in a scratch workspace; what it printed.

    >>> print(run_example("Cos"))
    Y [[ 0.0707372  0.9689124  1.       ]
     [ 0.87758255  0.5403023  -0.41614684]]
    """
    code = example_code(name)
    previous = workspace.CurrentWorkspace()
    workspace.SwitchWorkspace("caffe2ops_describe", True)
    workspace.ResetWorkspace()
    buffer = io.StringIO()
    try:
        # The reference kernels make the printed digits the same with or without Numba.
        with contextlib.redirect_stdout(buffer), np.printoptions(precision=8, suppress=False), \
                reference_kernels():
            exec(compile(code, f"<example of {name}>", "exec"), {})
    finally:
        workspace.ResetWorkspace()
        workspace.SwitchWorkspace(previous)
    return buffer.getvalue().rstrip()


def _sample_def(schema: OpSchema, name: str):
    ex = example_for(schema, name)
    outputs = _outputs(schema, ex)
    inputs = [*[b for _, _, outs in ex.before for b in outs], *ex.inputs]
    return core.CreateOperator(name, inputs, outputs, **ex.args)


def gradient_text(name: str) -> str:
    """Which operators the gradient registry emits for ``name`` (or why there are none).

    >>> gradient_text("Clip")
    'ClipGradient(Y, Y_grad) -> (X_grad)'
    """
    try:
        return _gradient_text(name)
    except OperatorError as exc:
        return f"asking for it raises: {exc}"


def _gradient_text(name: str) -> str:
    schema = get_schema(name)
    if schema.gradient is SHOULD_NOT_DO_GRADIENT:
        return "none: asking for it raises (SHOULD_NOT_DO_GRADIENT)"
    if schema.gradient is NO_GRADIENT or schema.gradient is None:
        return "none (NO_GRADIENT)"
    op_def = _sample_def(schema, name)
    result = gradient_for_op(op_def, [f"{o}_grad" for o in op_def.output])
    if not result.ops:
        routed = ", ".join(f"{i} <- {g}" for i, g in zip(op_def.input, result.g_input,
                                                           strict=True) if g)
        return f"no operator: the output gradient is passed through ({routed})"
    return "; ".join(f"{g.type}({', '.join(g.input)}) -> ({', '.join(g.output)})"
                     for g in result.ops)


def inplace_text(schema: OpSchema) -> str:
    pairs = []
    for i, j in sorted(schema.allow_inplace):
        rule = "enforced" if (i, j) in schema.enforce_inplace else "allowed"
        pairs.append(f"{schema.input_name(i)} -> {schema.output_name(j)} {rule}")
    return "; ".join(pairs) if pairs else "none (outputs must be new blobs)"


def devices_text(schema: OpSchema) -> str:
    devices = getattr(schema, "devices", None)
    if devices:
        return ", ".join(devices)
    return "CPU (NumPy reference kernel, fused Numba kernel where one exists); " \
           "DeviceOption(CUDA) is refused in this version"


def count_text(lo: int, hi: int) -> str:
    if lo == hi:
        return str(lo)
    return f"{lo} or more" if hi >= 1 << 20 else f"{lo} to {hi}"


def first_sentence(doc: str) -> str:
    """The doc's first sentence, without RST markup.

    >>> first_sentence("Clip ``x`` to ``[min, max]``: y = x. Then more.")
    'Clip x to [min, max]: y = x.'
    """
    text = plain(" ".join(doc.split()))
    return text.split(". ")[0].rstrip(".:") + "."


def plain(text: str) -> str:
    """RST markup removed: ````code```` -> code, ``:func:`f``` -> f."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"\1", text)
    text = re.sub(r"(?<![\w)])\*(\w+)\*(?![\w(])", r"\1", text.replace("``", "").replace("\\ ", ""))
    return text.replace("`", "")


def _slots(schema: OpSchema, kind: str) -> str:
    """``kind`` ("inputs" or "outputs") with their count and names, optional ones marked."""
    lo, hi = getattr(schema, f"num_{kind}")
    declared = getattr(schema, kind)
    name_of = schema.input_name if kind == "inputs" else schema.output_name
    names = [name_of(i) + (" (optional)" if i >= lo else "")
             for i in range(min(max(lo, len(declared)), hi))]
    return f"{kind} ({count_text(lo, hi)}): {', '.join(names) or 'none'}"


def describe(name: str) -> str:
    """Plain-text description of operator ``name`` (``caffe2ops describe NAME``)."""
    schema = get_schema(name)
    alias = f" (alias of {schema.type})" if schema.type != name else ""
    lines = [f"{name}{alias}", "", plain(" ".join(schema.doc.split())), ""]
    lines += [_slots(schema, "inputs"), _slots(schema, "outputs")]
    lines.append("arguments:" if schema.args else "arguments: none")
    for a in schema.args:
        default = "absent" if a.default is None else repr(a.default)
        lines.append(f"  {a.name}: {a.kind}, default {default}" + (f" - {plain(a.doc)}"
                                                                   if a.doc else ""))
    lines.append(f"in place: {inplace_text(schema)}")
    lines.append(f"gradient: {gradient_text(name)}")
    lines.append(f"devices: {devices_text(schema)}")
    lines += ["", *_example_lines(name, "  ")]
    return "\n".join(lines)


def _example_lines(name: str, indent: str) -> list[str]:
    try:
        printed = run_example(name)
    except OperatorError as exc:
        first = str(exc).splitlines()[0]
        return [f"example: none written for {name} yet (the generic one fails: {first})"]
    return ["example:", *(indent + s for s in example_code(name).splitlines()), "", "prints:",
            *(indent + s for s in printed.splitlines())]


def list_ops(name: str | None = None) -> str:
    """``caffe2ops ops [NAME]``: every registered operator (or the one named) with its doc
    line, in plain text."""
    names = [get_schema(name) and name] if name else registered_types()
    out = []
    for n in names:
        schema = get_schema(n)
        alias = f" (alias of {schema.type})" if schema.type != n else ""
        out.append(f"{n}{alias}: {first_sentence(schema.doc)}")
    return "\n".join(out)


def _cell(text: str) -> str:
    """Text for a Markdown table cell (a ``|`` would end the cell)."""
    return text.replace("|", "\\|")


def markdown_all() -> str:
    """``docs/operators.md``: every registered operator described from its schema."""
    names = registered_types()
    parts = [
        "# Operators",
        "",
        "Generated from the operator schemas by `caffe2ops describe --all --markdown`; do not edit "
        "by hand (a test fails when this file is out of date).",
        "",
        "| operator | summary |",
        "|---|---|",
    ]
    parts += [f"| [{n}](#{n.lower()}) | {_cell(first_sentence(get_schema(n).doc))} |"
              for n in names]
    for n in names:
        schema = get_schema(n)
        parts += ["", f"## {n}", ""]
        if schema.type != n:
            parts += [f"Alias of [{schema.type}](#{schema.type.lower()}).", ""]
        parts += [plain(" ".join(schema.doc.split())), ""]
        parts += [f"- {_slots(schema, 'inputs')}", f"- {_slots(schema, 'outputs')}"]
        parts.append(f"- in place: {inplace_text(schema)}")
        parts.append(f"- gradient: {gradient_text(n)}")
        parts.append(f"- devices: {devices_text(schema)}")
        if schema.args:
            parts += ["", "| argument | type | default | meaning |", "|---|---|---|---|"]
            for a in schema.args:
                default = "absent" if a.default is None else f"`{a.default!r}`"
                parts.append(f"| `{a.name}` | {a.kind} | {default} | {_cell(plain(a.doc))} |")
        try:
            printed = run_example(n)
        except OperatorError as exc:
            parts += ["", f"No example written for {n} yet (the generic one fails: "
                      f"{str(exc).splitlines()[0]})."]
            continue
        parts += ["", "```python", example_code(n), "```", "", "prints", "", "```",
                  printed, "```"]
    return "\n".join(parts) + "\n"
