"""``caffe2ops plot``: an operator and its derivative over a range, kinks marked.

The function is the operator run on a float64 ramp; the derivative is what the operator's
gradient operators (from the gradient registry, exactly as ``AddGradientOperators`` would emit
them) give for ``dY = 1``. Kinks and jumps are found in the sampled curves (a jump of the
derivative or of the function between neighbouring samples) and named after the argument they
sit on (``min``, ``alpha``, ...) when one is that close. Element-wise operators of one input are
plottable; operators with several inputs have a 1-D slice in :data:`SLICES` or are refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from caffe2ops import core, workspace
from caffe2ops.runtime.schema import NO_GRADIENT, SHOULD_NOT_DO_GRADIENT, get_schema


class NotPlottableError(ValueError):
    """The operator has no 1-D picture (several inputs, a reduction, no gradient)."""


@dataclass
class Slice:
    """Vary input ``vary``; one curve per value of ``fixed`` (other input name -> values)."""

    vary: int
    fixed: dict[str, tuple] = field(default_factory=dict)
    dtypes: dict[str, str] = field(default_factory=dict)


SLICES = {
    "CosineEmbeddingCriterion": Slice(0, {"label": (1, -1)}, {"label": "int32"}),
}


@dataclass
class Curve:
    label: str
    y: np.ndarray
    dy: np.ndarray


@dataclass
class Curves:
    title: str
    x_name: str
    gradient_ops: list[str]
    x: np.ndarray
    curves: list[Curve]
    kinks: list[tuple[float, str]]


def _refuse(name: str, why: str) -> NotPlottableError:
    return NotPlottableError(
        f"plot: {name} is not plottable: {why}. plot draws element-wise operators of one input "
        f"(e.g. Clip, ThresholdedRelu, Cos) and the slices defined for {', '.join(SLICES)}")


def _check_plottable(name: str, args: dict) -> Slice:
    schema = get_schema(name)
    if schema.gradient in (NO_GRADIENT, SHOULD_NOT_DO_GRADIENT, None):
        forward = name[: -len("Gradient")] if name.endswith("Gradient") else None
        hint = f"it is a gradient operator (plot {forward})" if forward else \
            "it has no gradient operator to differentiate it"
        raise _refuse(name, hint)
    if name in SLICES:
        return SLICES[name]
    if schema.num_inputs[0] != 1:
        raise _refuse(name, f"it takes {schema.num_inputs[0]} inputs and no 1-D slice is defined")
    if schema.infer is not None:
        from caffe2ops.runtime.args import parse_args

        op = core.CreateOperator(name, ["X"], ["Y"], **args)
        out = schema.infer([((5,), np.dtype(np.float64))], parse_args(schema, name, op.arg))
        if not out or out[0] is None or tuple(out[0][0]) != (5,):
            raise _refuse(name, "its output is not element-wise (a reduction or a reshape)")
    return Slice(0)


def _threshold_args(name: str, args: dict) -> dict[str, float]:
    """Float arguments (given, or defaults) that may sit on a kink."""
    values = {}
    for a in get_schema(name).args:
        value = args.get(a.name, a.default)
        if a.kind in ("float", "number") and isinstance(value, int | float) \
                and not isinstance(value, bool) and math.isfinite(value):
            values[a.name] = float(value)
    return values


def default_range(name: str, args: dict) -> tuple[float, float]:
    """Two units beyond the outermost threshold argument, at least [-3, 3]."""
    points = list(_threshold_args(name, args).values()) + [-1.0, 1.0]
    return min(points) - 2.0, max(points) + 2.0


def _evaluate(name: str, args: dict, slice_: Slice, x: np.ndarray, fixed: dict):
    schema = get_schema(name)
    count = max(schema.num_inputs[0], slice_.vary + 1, len(fixed) + 1)
    inputs = [schema.input_name(i) for i in range(count)]
    output = schema.output_name(0)
    op = core.CreateOperator(name, inputs, [output], **args)
    grad_ops, g_input = core.GradientRegistry.GetGradientForOp(op, [f"{output}_grad"])
    previous = workspace.CurrentWorkspace()
    workspace.SwitchWorkspace("caffe2ops_plot", True)
    workspace.ResetWorkspace()
    try:
        for i, blob in enumerate(inputs):
            if i == slice_.vary:
                workspace.FeedBlob(blob, x)
            else:
                value = np.full(x.shape, fixed[blob], dtype=slice_.dtypes.get(blob, "float64"))
                workspace.FeedBlob(blob, value)
        workspace.RunOperatorOnce(op)
        y = workspace.FetchBlob(output)
        workspace.FeedBlob(f"{output}_grad", np.ones_like(y))
        workspace.RunOperatorsOnce(grad_ops)
        dy = workspace.FetchBlob(g_input[slice_.vary])
    finally:
        workspace.ResetWorkspace()
        workspace.SwitchWorkspace(previous)
    return y, dy, [g.type for g in grad_ops]


def find_kinks(x: np.ndarray, y: np.ndarray, dy: np.ndarray, named: dict[str, float]):
    """``[(x, label)]`` where the derivative or the function jumps between two samples.

    >>> x = np.linspace(-2, 2, 401)
    >>> find_kinks(x, np.abs(x), np.sign(x), {})
    [(0.0, 'kink')]
    >>> x = np.linspace(-1, 1, 4)  # 0 falls between two samples
    >>> find_kinks(x, np.maximum(x, 0), (x > 0).astype(float), {})
    [(0.0, 'kink')]
    """
    h = float(x[1] - x[0])
    span = float(np.nanmax(dy) - np.nanmin(dy)) if np.isfinite(dy).any() else 0.0
    slope = float(np.nanmax(np.abs(dy))) if np.isfinite(dy).any() else 0.0
    jumps_d = np.abs(np.diff(dy)) > max(1e-3, 0.05 * span)
    jumps_y = np.abs(np.diff(y)) > 10 * h * max(1.0, slope)
    found: list[tuple[float, str]] = []
    for i in np.flatnonzero(jumps_d | jumps_y):
        lo, hi = float(x[i]), float(x[i + 1])
        at = (lo + hi) / 2
        label = "jump" if jumps_y[i] else "kink"
        for arg, value in named.items():
            if abs(value - at) <= h:
                at, label = value, f"{arg} = {value:g}"
                break
        else:  # the roundest number between the two samples (0 for Relu)
            at = next(r for r in (round(at, d) for d in range(13)) if lo <= r <= hi)
        if not found or abs(found[-1][0] - at) > 1.5 * h:
            found.append((round(at, 12), label))
    return found


def curves(name: str, args: dict | None = None, x_range: tuple[float, float] | None = None,
           points: int = 2001) -> Curves:
    """The sampled function and derivative of ``name`` (see the module doc).

    >>> c = curves("Clip", {"min": -1.0, "max": 1.0}, (-2, 2), 401)
    >>> c.gradient_ops, c.kinks
    (['ClipGradient'], [(-1.0, 'min = -1'), (1.0, 'max = 1')])
    """
    args = dict(args or {})
    slice_ = _check_plottable(name, args)
    if points < 3:
        raise ValueError(f"plot: --points must be at least 3; got {points}")
    a, b = x_range or default_range(name, args)
    if not a < b:
        raise ValueError(f"plot: the range must have A < B; got {a} {b}")
    x = np.linspace(a, b, points)
    combos = [dict(zip(slice_.fixed, values, strict=True))
              for values in zip(*slice_.fixed.values(), strict=True)] or [{}]
    drawn, ops = [], []
    for fixed in combos:
        y, dy, ops = _evaluate(name, args, slice_, x, fixed)
        label = ", ".join(f"{k} = {v}" for k, v in fixed.items()) or name
        drawn.append(Curve(label, y, dy))
    named = _threshold_args(name, args)
    kinks = sorted({k for c in drawn for k in find_kinks(x, c.y, c.dy, named)})
    shown = ", ".join(f"{k}={v!r}" for k, v in args.items())
    x_name = get_schema(name).input_name(slice_.vary)
    return Curves(f"{name}({shown})" if shown else name, x_name, ops, x, drawn, kinks)


def _matplotlib():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plot needs matplotlib, which is not installed: "
                          "pip install 'caffe2ops[plot]'") from None
    return Figure, FigureCanvasAgg


def plot(name: str, args: dict | None = None, x_range: tuple[float, float] | None = None,
         path: str = "plot.png", points: int = 2001) -> str:
    """Draw :func:`curves` to the PNG ``path``; a one-line summary of what was drawn."""
    figure_class, canvas_class = _matplotlib()
    c = curves(name, args, x_range, points)
    fig = figure_class(figsize=(7.5, 6.0), layout="constrained")
    canvas_class(fig)
    top, bottom = fig.subplots(2, 1, sharex=True)
    for curve in c.curves:
        top.plot(c.x, curve.y, label=curve.label)
        bottom.plot(c.x, curve.dy, label=curve.label)
    grad = " + ".join(c.gradient_ops) or "pass-through"
    top.set_title(c.title)
    top.set_ylabel(get_schema(name).output_name(0))
    bottom.set_ylabel(f"derivative, from {grad}")
    bottom.set_xlabel(c.x_name)
    for axis in (top, bottom):
        axis.grid(True, alpha=0.3)
        for at, _label in c.kinks:
            axis.axvline(at, color="tab:red", linestyle="--", linewidth=0.8)
    for at, label in c.kinks:
        top.annotate(label, (at, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -12),
                     textcoords="offset points", color="tab:red", fontsize=8)
    if len(c.curves) > 1:
        top.legend()
    fig.savefig(path, dpi=110)
    kinks = ", ".join(f"{at:g} ({label})" for at, label in c.kinks) or "none"
    return (f"wrote {path}: {c.title} and its derivative from {grad} on "
            f"[{c.x[0]:g}, {c.x[-1]:g}]; kinks and jumps at {kinks}")
