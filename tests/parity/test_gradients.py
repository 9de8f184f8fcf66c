"""Gradient definitions: GetGradientForOp's OperatorDefs compared byte for byte with Caffe2's
(name, engine, device option, arguments, in-place forms), and whole backward passes
(AddGradientOperators NetDefs, then the gradients they compute)."""

from __future__ import annotations

import numpy as np
import pytest
from bounds import bound, departure_for, gradient_departure_for
from cases import CASES, Case, operators
from google.protobuf import text_format
from harness import Caffe2Error
from record import RECORDER, bits_equal, ulp_distance

from caffe2ops import core, workspace
from caffe2ops.proto import caffe2_pb2
from caffe2ops.runtime.schema import get_schema

# Caffe2 registers no gradient for these (asking raises there); ours answers "no gradient ops".
NO_GRADIENT_IN_CAFFE2 = "asking for a gradient Caffe2 never registered returns no ops"


def diff(ours, theirs) -> str:
    """Readable field-for-field difference of two OperatorDef lists."""
    a = [text_format.MessageToString(o, as_one_line=True) for o in ours]
    b = [text_format.MessageToString(o, as_one_line=True) for o in theirs]
    return "\n".join(f"ours:   {x}\ncaffe2: {y}" for x, y in zip(a, b, strict=False)) + (
        f"\n{len(a)} ops here, {len(b)} in Caffe2" if len(a) != len(b) else "")


def variants(op_type: str) -> list:
    """OperatorDefs of ``op_type``: one per distinct (inputs, arguments) of its float32 cases;
    for the first also engine "" and "X", a name, a device option, and each allowed in-place
    form."""
    float32 = [c for c in CASES[op_type] if "float32" in c.desc] or CASES[op_type][:1]
    distinct = {}
    for c in float32:
        distinct.setdefault((c.input_names, repr(sorted(c.args.items()))), c)
    out = [core.CreateOperator(op_type, list(c.input_names), list(c.output_names), **c.args)
           for c in distinct.values()]
    case = float32[0]
    ins, outs = list(case.input_names), list(case.output_names)
    base = dict(case.args)
    out += [core.CreateOperator(op_type, ins, outs, engine="", **base),
            core.CreateOperator(op_type, ins, outs, engine="X", name="fwd", **base),
            core.CreateOperator(op_type, ins, outs,
                                device_option=core.DeviceOption(caffe2_pb2.CPU, 0,
                                                                random_seed=7), **base)]
    for i, j in sorted(get_schema(op_type).allow_inplace):
        if i < len(ins) and j < len(outs):
            o = list(outs)
            o[j] = ins[i]
            out.append(core.CreateOperator(op_type, ins, o, **base))
    return out


@pytest.mark.parametrize("op_type", operators())
def test_get_gradient_for_op_defs_are_caffe2s(caffe2, op_type):
    rec = RECORDER.row(f"GetGradientForOp({op_type})")
    failures = []
    for op in variants(op_type):
        g_output = [f"{o}_grad" for o in op.output]
        try:
            ours = core.GradientRegistry.GetGradientForOp(op, g_output)
        except Exception as exc:
            ours = exc
        try:
            theirs = caffe2.gradient(op, g_output)
        except Caffe2Error as exc:
            theirs = exc
        label = text_format.MessageToString(op, as_one_line=True)
        if isinstance(ours, Exception) or isinstance(theirs, Exception):
            if isinstance(ours, Exception) and isinstance(theirs, Exception):
                rec.both_refuse += 1
            elif isinstance(theirs, Exception) and "GradientRegistry()->Has" in str(theirs) \
                    and ours[0] == []:
                rec.departures[NO_GRADIENT_IN_CAFFE2] += 1
            elif isinstance(theirs, Exception) and "did not pass schema checking" in str(theirs) \
                    and op_type == "Div":
                rec.departures[gradient_departure_for("Div", None).key] += 1
            else:
                failures.append(f"{label}: ours {ours!r:.200} / Caffe2 {theirs!s:.200}")
            continue
        (our_ops, our_g), (their_ops, their_g) = ours, theirs
        same = [o.SerializeToString() for o in our_ops] == \
            [t.SerializeToString() for t in their_ops]
        if same and list(our_g) == list(their_g):
            rec.cases += 1
            rec.bit_identical += 1
        elif _def_departure(op_type, op):
            rec.departures[_def_departure(op_type, op).key] += 1
        else:
            failures.append(f"{label}: g_input ours {our_g} / Caffe2 {their_g}\n"
                            + diff(our_ops, their_ops))
    rec.failures.extend(failures)
    assert not failures, "\n".join(failures)


def _args_of(op) -> dict:
    """An OperatorDef's arguments as a plain dict (to match departures)."""
    out = {}
    for arg in op.arg:
        for name in ("f", "i", "s"):
            if arg.HasField(name):
                out[arg.name] = getattr(arg, name)
    return out


def _def_departure(op_type, op):
    case = Case(op_type, tuple(range(len(op.input))), tuple(op.input), tuple(op.output),
                _args_of(op))
    if op_type == "Div":  # only the in-place-on-B form departs
        return None
    return gradient_departure_for(op_type, case)


DIFFERENTIABLE = [op for op in operators()
                  if callable(get_schema(op).gradient) and not op.endswith("Gradient")]


@pytest.mark.parametrize("op_type", DIFFERENTIABLE)
def test_backward_pass_netdef_and_gradients(caffe2, op_type):
    """AddGradientOperators on a one-op net: the same NetDef bytes, then the same gradients on
    every float32 case Caffe2 runs."""
    rec = RECORDER.row(f"AddGradientOperators({op_type})",
                       max(bound(op_type), bound(f"{op_type}Gradient")))
    failures = []
    for case in [c for c in CASES[op_type] if "float32" in c.desc]:
        float_outs = [o for o in case.output_names]
        net = core.Net(f"parity_{op_type}")
        net.Proto().op.append(core.CreateOperator(op_type, list(case.input_names),
                                                  list(case.output_names), **case.args))
        forward = net.Proto().SerializeToString()
        try:
            grads = net.AddGradientOperators(float_outs)
        except Exception as exc:
            ours = exc
        else:
            ours = net.Proto()
        try:
            theirs = caffe2.exec(
                "net = core.Net(caffe2_pb2.NetDef.FromString(feeds['net'].tobytes()))\n"
                "g = net.AddGradientOperators([str(y) for y in feeds['ys']])\n"
                "result = {'net': net.Proto(), 'grads': {str(k): str(v) for k, v in g.items()"
                " if not isinstance(v, core.GradientSlice)}}",
                net=np.frombuffer(forward, np.uint8), ys=np.array(float_outs))
        except Caffe2Error as exc:
            theirs = exc
        if isinstance(ours, Exception) or isinstance(theirs, Exception):
            if isinstance(ours, Exception) and isinstance(theirs, Exception):
                rec.both_refuse += 1
            else:
                failures.append(f"{case.desc}: ours {ours!s:.200} / Caffe2 {theirs!s:.200}")
            continue
        if ours.SerializeToString() != theirs["net"].SerializeToString():
            departure = gradient_departure_for(op_type, case)
            if departure is not None and op_type != "CosineSimilarity":
                rec.departures[departure.key] += 1
                continue
            failures.append(f"{case.desc}: NetDefs differ\n" + diff(ours.op, theirs["net"].op))
            continue
        feeds = dict(zip(case.input_names, case.inputs, strict=True))
        names = sorted({str(v) for v in grads.values()} | set(case.output_names))
        workspace.ResetWorkspace()
        for k, v in feeds.items():
            workspace.FeedBlob(k, v)
        try:
            workspace.RunNetOnce(ours)
            mine = {n: workspace.FetchBlob(n) for n in names}
        except Exception as exc:
            mine = exc
        try:
            other = caffe2.run_nets(ours, feeds, names)["outputs"]
        except Caffe2Error as exc:
            other = exc
        if isinstance(mine, Exception) or isinstance(other, Exception):
            if isinstance(mine, Exception) and isinstance(other, Exception):
                rec.both_refuse += 1
            elif isinstance(other, Exception):
                rec.departures["Caffe2 refuses the run (see the operator's row)"] += 1
            else:
                failures.append(f"{case.desc}: we refuse to run: {mine}")
            continue
        dist = max(ulp_distance(np.asarray(mine[n]), np.asarray(other[n])) for n in names)
        if all(bits_equal(np.asarray(mine[n]), np.asarray(other[n])) for n in names):
            rec.cases += 1
            rec.bit_identical += 1
        elif dist <= rec.bound:
            rec.cases += 1
            rec.max_ulp = max(rec.max_ulp, dist)
        elif departure_for(op_type, case) or departure_for(f"{op_type}Gradient", case):
            rec.departures["differs: see the operator's departures"] += 1
        elif op_type == "CosineSimilarity":
            rec.departures[gradient_departure_for(op_type, case).key] += 1
        else:
            failures.append(f"{case.desc}: gradients differ by {dist} ulp > {rec.bound}")
    rec.failures.extend(failures)
    assert not failures, "\n".join(failures)


IN_PLACE_NETS = [
    # (name, forward ops as (type, inputs, outputs, args), differentiated output, feeds)
    ("Div(A, B) -> A", [("Div", ["A", "B"], ["A"], {})], "A", True),
    ("Scale(A) -> A", [("Scale", ["A"], ["A"], {"scale": 3.0})], "A", True),
    ("Clip(A) -> A", [("Clip", ["A"], ["A"], {"min": -1.0, "max": 2.5})], "A", True),
    ("Sum(A, B) -> A", [("Sum", ["A", "B"], ["A"], {})], "A", True),
    ("Copy(A) -> C; Pow(C) -> C", [("Copy", ["A"], ["C"], {}),
                                  ("Pow", ["C"], ["C"], {"exponent": 2.0})], "C", False),
    ("Mul(A, B) -> A", [("Mul", ["A", "B"], ["A"], {})], "A", False),
    ("Log(B) -> B", [("Log", ["B"], ["B"], {})], "B", False),
]


@pytest.mark.parametrize("name,ops,y,same", IN_PLACE_NETS, ids=[n[0] for n in IN_PLACE_NETS])
def test_in_place_backward_passes(caffe2, name, ops, y, same):
    """In-place forward ops: where Caffe2's gradient is right, the same NetDef and numbers;
    where Caffe2 silently reads an overwritten blob, ours raises (README) and the run records
    Caffe2's wrong answer next to the right one."""
    rec = RECORDER.row("AddGradientOperators, in-place nets")
    feeds = {"A": np.array([-2.0, 3.0], np.float32), "B": np.array([2.0, 4.0], np.float32)}
    net = core.Net("parity_in_place")
    for op_type, ins, outs, args in ops:
        net.Proto().op.append(core.CreateOperator(op_type, ins, outs, **args))
    forward = net.Proto().SerializeToString()
    theirs = caffe2.exec(
        "net = core.Net(caffe2_pb2.NetDef.FromString(feeds['net']))\n"
        "g = net.AddGradientOperators([feeds['y']])\n"
        "for k, v in feeds['blobs'].items():\n"
        "    workspace.FeedBlob(k, v)\n"
        "workspace.RunNetOnce(net)\n"
        "result = {'net': net.Proto(),\n"
        "          'grads': {str(k): workspace.FetchBlob(str(v)) for k, v in g.items()}}",
        net=forward, y=y, blobs=feeds)
    if not same:
        with pytest.raises(Exception, match="overwritten in place"):
            net.AddGradientOperators([y])
        rec.departures["ours raises where Caffe2 reads an overwritten blob"] += 1
        return
    grads = net.AddGradientOperators([y])
    assert net.Proto().SerializeToString() == theirs["net"].SerializeToString(), \
        diff(net.Proto().op, theirs["net"].op)
    workspace.ResetWorkspace()
    for k, v in feeds.items():
        workspace.FeedBlob(k, v)
    workspace.RunNetOnce(net.Proto())
    for k, v in grads.items():
        got, want = workspace.FetchBlob(str(v)), theirs["grads"][str(k)]
        assert bits_equal(got, want), f"{name}: gradient of {k}: {got} vs Caffe2 {want}"
    rec.cases += 1
    rec.bit_identical += 1
