"""The real-Caffe2 side of the parity harness: one long-lived process in ``.venv-caffe2``.

Runs under Python 3.8 with PyPI's ``torch==1.5.0`` (which ships Caffe2's CPU runtime); it never
imports caffe2ops. It reads requests from stdin and writes replies to stdout, each a 4-byte
big-endian length and a pickle (protocol 4) of plain Python values, NumPy arrays travelling as
``("__ndarray__", npy bytes)`` so that NumPy 1.18 here and NumPy 2 on the other side agree.

Requests are dicts with a ``cmd``:

* ``run_ops``: ``ops`` (OperatorDef bytes, list), ``feeds`` ({name: value}), ``fetch`` (names);
  resets the workspace, feeds, runs each op once, returns ``{"outputs": {name: array}}``.
* ``run_nets``: ``init`` (NetDef bytes or None), ``net`` (NetDef bytes), ``feeds``, ``fetch``,
  ``iters`` (int), ``fetch_every`` (names fetched after every iteration, optional); runs the init
  net once, creates the net, runs it ``iters`` times.
* ``run_cases``: ``cases``, a list of ``{"ops", "feeds", "fetch"}`` as in ``run_ops``, each run
  after its own reset; returns ``{"results": [{"outputs": ...} or {"error": "..."}]}`` so that
  many small cases cost one round trip and one refusal does not stop the others.
* ``gradient``: ``op`` (OperatorDef bytes), ``g_output`` (list of names or None); returns
  ``{"ops": [bytes], "g_input": [...]}`` from ``core.GradientRegistry.GetGradientForOp``.
  Caffe2 reads a 2-character gradient name as an ``(indices, values)`` pair (a sparse
  gradient), so such names are refused here with a message instead.
* ``exec``: ``code`` (Python source), ``feeds``; the code runs with ``core``, ``workspace``,
  ``np``, ``caffe2_pb2`` and ``feeds`` in scope after a workspace reset, and sets ``result``
  (a dict of plain values, arrays, NetDef/OperatorDef messages (sent as bytes)).
* ``ping``, ``quit``.

Every reply is ``{"ok": True, ...}`` or ``{"ok": False, "error": "<type>: <message>"}``.
"""

import io
import os
import pickle
import struct
import sys
import traceback

os.environ.setdefault("GLOG_minloglevel", "3")

import numpy as np  # noqa: E402
from caffe2.proto import caffe2_pb2  # noqa: E402
from caffe2.python import core, workspace  # noqa: E402

workspace.GlobalInit(["caffe2", "--caffe2_log_level=3"])


def encode(value):
    if isinstance(value, np.ndarray):
        buf = io.BytesIO()
        np.save(buf, value, allow_pickle=value.dtype == object)
        return ("__ndarray__", buf.getvalue())
    if isinstance(value, np.generic):
        return encode(np.asarray(value))
    if hasattr(value, "SerializeToString"):
        return ("__proto__", type(value).__name__, value.SerializeToString())
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(encode(v) for v in value)
    if isinstance(value, core.BlobReference):
        return str(value)
    if hasattr(value, "indices") and hasattr(value, "values") and hasattr(value, "_fields"):
        return ("__slice__", str(value.indices), str(value.values))
    return value


def decode(value):
    if isinstance(value, tuple) and len(value) == 2 and value[0] == "__ndarray__":
        return np.load(io.BytesIO(value[1]), allow_pickle=True)
    if isinstance(value, dict):
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def feed_all(feeds):
    for name, value in (feeds or {}).items():
        workspace.FeedBlob(name, value)


def fetch_all(names):
    return {name: workspace.FetchBlob(name) for name in names}


def cmd_run_ops(req):
    workspace.ResetWorkspace()
    feed_all(req.get("feeds"))
    for op_bytes in req["ops"]:
        workspace.RunOperatorOnce(caffe2_pb2.OperatorDef.FromString(op_bytes))
    return {"outputs": fetch_all(req.get("fetch", []))}


def cmd_run_nets(req):
    workspace.ResetWorkspace()
    feed_all(req.get("feeds"))
    if req.get("init"):
        workspace.RunNetOnce(caffe2_pb2.NetDef.FromString(req["init"]))
    net = caffe2_pb2.NetDef.FromString(req["net"])
    workspace.CreateNet(net, overwrite=True)
    every = req.get("fetch_every") or []
    history = {name: [] for name in every}
    for _ in range(int(req.get("iters", 1))):
        workspace.RunNet(net.name)
        for name in every:
            history[name].append(workspace.FetchBlob(name))
    return {"outputs": fetch_all(req.get("fetch", [])), "history": history}


def cmd_run_cases(req):
    results = []
    for case in req["cases"]:
        try:
            results.append(cmd_run_ops(case))
        except Exception as exc:
            results.append({"error": f"{type(exc).__name__}: {exc}".split("\nframe #0")[0]})
    return {"results": results}


def cmd_gradient(req):
    short = [g for g in req["g_output"] if isinstance(g, str) and len(g) == 2]
    if short:
        raise ValueError(f"gradient names {short} have 2 characters: Caffe2's GetGradientForOp "
                         "would unpack them as (indices, values); use longer names")
    op = caffe2_pb2.OperatorDef.FromString(req["op"])
    ops, g_input = core.GradientRegistry.GetGradientForOp(op, req["g_output"])
    return {"ops": [o.SerializeToString() for o in ops], "g_input": encode(list(g_input))}


def cmd_exec(req):
    workspace.ResetWorkspace()
    scope = {"core": core, "workspace": workspace, "np": np, "caffe2_pb2": caffe2_pb2,
             "feeds": req.get("feeds") or {}}
    exec(compile(req["code"], "<parity exec>", "exec"), scope)
    return {"result": scope.get("result")}


COMMANDS = {"run_ops": cmd_run_ops, "run_nets": cmd_run_nets, "run_cases": cmd_run_cases,
            "gradient": cmd_gradient,
            "exec": cmd_exec, "ping": lambda req: {"pong": True}}


def read_message(stream):
    head = stream.read(4)
    if len(head) < 4:
        return None
    (size,) = struct.unpack(">I", head)
    return pickle.loads(stream.read(size))


def write_message(stream, message):
    data = pickle.dumps(message, protocol=4)
    stream.write(struct.pack(">I", len(data)))
    stream.write(data)
    stream.flush()


def main():
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # anything Caffe2 prints must not corrupt the channel
    while True:
        req = read_message(stdin)
        if req is None or req.get("cmd") == "quit":
            return
        req = decode(req)
        try:
            reply = COMMANDS[req["cmd"]](req)
            reply = dict(encode(reply), ok=True)
        except Exception as exc:  # the error travels back; the worker keeps serving
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                     "traceback": traceback.format_exc()}
        write_message(stdout, reply)


if __name__ == "__main__":
    main()
