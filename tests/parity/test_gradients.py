"""Gradient definitions: GetGradientForOp's OperatorDefs compared byte for byte with Caffe2's
(name, engine, device option, arguments, in-place forms), and whole backward passes
(AddGradientOperators NetDefs, then the gradients they compute)."""

from __future__ import annotations

import numpy as np
import pytest
from bounds import bound, departure_for, gradient_departure_for
from cases import CASES, operators
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
    """OperatorDefs of ``op_type`` from its first float32 case: plain, with engine "" and
    "X", a device option, a name, and each allowed in-place form."""
    case = next((c for c in CASES[op_type] if "float32" in c.desc), CASES[op_type][0])
    ins, outs = list(case.input_names), list(case.output_names)
    base = dict(case.args)
    out = [core.CreateOperator(op_type, ins, outs, **base),
           core.CreateOperator(op_type, ins, outs, engine="", **base),
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


def _def_departure(op_type, op):
    from cases import Case
    from runtime_args import args_of

    case = Case(op_type, tuple(range(len(op.input))), tuple(op.input), tuple(op.output),
                args_of(op))
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
