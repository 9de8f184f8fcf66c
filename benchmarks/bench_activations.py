"""Relu / Sigmoid / Tanh forward and forward+gradient in a created net: caffe2ops vs real Caffe2.

    .venv/bin/python benchmarks/bench_activations.py [--n 10000000] [--threads 1] [--repeat 5]

Both sides run the same two NetDefs (``Op(X) -> Y`` and ``Op(X) -> Y; OpGradient(Y, dY) -> dX``)
on the same float32 input with ``workspace.RunNet``, output blobs reused between runs; Caffe2 is
timed with ``time.perf_counter`` inside its own process (the parity harness's worker), so only
the net run enters either figure. PyTorch's ``torch.relu/sigmoid/tanh(out=)`` is shown for scale.
Prints median milliseconds per run and our speed-up over Caffe2.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "parity"))

import caffe2ops as c2  # noqa: E402
from caffe2ops import core, workspace  # noqa: E402
from caffe2ops.kernels import cpu  # noqa: E402

OPS = ("Relu", "Sigmoid", "Tanh")

NET_TIMING = """
import time
import numpy as np
times = {}
for op in OPS:
    fwd = core.Net("fwd_" + op)
    getattr(fwd, op)(["X"], ["Y"])
    both = core.Net("both_" + op)
    getattr(both, op)(["X"], ["Y"])
    getattr(both, op + "Gradient")(["Y", "dY"], ["dX"])
    for net in (fwd, both):
        workspace.CreateNet(net)
        for _ in range(2):
            workspace.RunNet(net.Name())
        samples = []
        for _ in range(REPEAT):
            t0 = time.perf_counter()
            workspace.RunNet(net.Name())
            samples.append(time.perf_counter() - t0)
        times[net.Name()] = float(np.median(samples))
"""


def _code(repeat: int) -> str:
    return NET_TIMING.replace("REPEAT", str(repeat)).replace("OPS", repr(OPS))


def ours(x, dy, repeat):
    workspace.SwitchWorkspace("bench_activations", True)
    workspace.ResetWorkspace()
    workspace.FeedBlob("X", x)
    workspace.FeedBlob("dY", dy)
    scope = {"core": core, "workspace": workspace}
    exec(compile(_code(repeat), "<bench>", "exec"), scope)
    return scope["times"]


def caffe2(x, dy, repeat, threads):
    from harness import Caffe2Worker

    worker = Caffe2Worker()
    try:
        code = (f"import torch\ntorch.set_num_threads({threads})\n"
                + "workspace.FeedBlob('X', feeds['X'])\nworkspace.FeedBlob('dY', feeds['dY'])\n"
                + _code(repeat) + "\nresult = times\n")
        return worker.exec(code, X=x, dY=dy)
    finally:
        worker.close()


def torch_times(x, repeat, threads):
    import torch

    torch.set_num_threads(threads)
    tx, ty = torch.from_numpy(x), torch.empty(x.shape)
    fns = {"Relu": lambda: torch.clamp_min(tx, 0, out=ty),
           "Sigmoid": lambda: torch.sigmoid(tx, out=ty), "Tanh": lambda: torch.tanh(tx, out=ty)}
    out = {}
    for op, fn in fns.items():
        fn()
        samples = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t0)
        out[op] = float(np.median(samples))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=10_000_000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    cpu.preload(dtypes=(np.float32,))  # Numba loaded before any timing
    c2.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    x = rng.uniform(-6, 6, args.n).astype(np.float32)
    dy = rng.standard_normal(args.n).astype(np.float32)
    mine = ours(x, dy, args.repeat)
    theirs = caffe2(x, dy, args.repeat, args.threads)
    scale = torch_times(x, args.repeat, args.threads)
    print(f"{args.n} float32, {args.threads} thread(s), load average {os.getloadavg()[0]:.1f}")
    print(f"{'net':26s} {'caffe2ops ms':>13s} {'Caffe2 ms':>10s} {'speed-up':>9s} {'torch ms':>9s}")
    for op in OPS:
        for kind in ("fwd", "both"):
            name = f"{kind}_{op}"
            label = f"{op}" if kind == "fwd" else f"{op} + {op}Gradient"
            t_torch = f"{scale[op] * 1e3:9.1f}" if kind == "fwd" else f"{'':9s}"
            print(f"{label:26s} {mine[name] * 1e3:13.1f} {theirs[name] * 1e3:10.1f} "
                  f"{theirs[name] / mine[name]:8.2f}x {t_torch}")


if __name__ == "__main__":
    main()
