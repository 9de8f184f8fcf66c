"""FC forward + backward: caffe2ops vs PyTorch (``nn.functional.linear`` + autograd) vs real Caffe2.

    .venv/bin/python benchmarks/bench_fc.py [--m 4096 --k 512 --n 512] [--threads N] [--repeat 7]

One step is ``Y = FC(X, W, b)`` then ``FCGradient(X, W, dY) -> dW, db, dX``:

* caffe2ops, functional: ``c2.fc(..., out=)`` and ``c2.fc_gradient(..., out=)`` into reused buffers;
* caffe2ops, runtime: a created net of FC + FCGradient run with ``workspace.RunNet`` (output blobs
  reused between runs, as Caffe2 does);
* PyTorch: ``F.linear(x, w, b)`` then ``y.backward(dy)``, ``.grad`` set to None before each step
  (as ``optimizer.zero_grad()`` does);
* real Caffe2 1.5.0 (``.venv-caffe2``, through the parity harness's worker): the same NetDef,
  timed with ``time.perf_counter`` inside the Caffe2 process so the pipe never enters the figure.

The BLAS thread count is fixed for all three through ``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS``
/ ``MKL_NUM_THREADS`` (set before NumPy loads) and ``torch.set_num_threads``. Prints the median
milliseconds per step, GFLOP/s (6·M·K·N flops per step) and the ratios to caffe2ops.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--m", type=int, default=4096)
    p.add_argument("--k", type=int, default=512)
    p.add_argument("--n", type=int, default=512)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--no-caffe2", action="store_true", help="skip real Caffe2")
    return p.parse_args()


ARGS = _parse() if __name__ == "__main__" else None
if ARGS is not None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests" / "parity"))

from common import timeit_many  # noqa: E402

import caffe2ops as c2  # noqa: E402
from caffe2ops import core, workspace  # noqa: E402

CAFFE2_CODE = """
import time
import torch
torch.set_num_threads(int(feeds["threads"]))
for name in ("X", "W", "b", "dY"):
    workspace.FeedBlob(name, feeds[name])
net = core.Net("bench_fc")
net.FC(["X", "W", "b"], ["Y"])
net.FCGradient(["X", "W", "dY"], ["dW", "db", "dX"])
workspace.CreateNet(net)
for _ in range(3):
    workspace.RunNet(net.Name())
number = max(1, int(feeds["number"]))
samples = []
for _ in range(int(feeds["repeat"])):
    t0 = time.perf_counter()
    for _ in range(number):
        workspace.RunNet(net.Name())
    samples.append((time.perf_counter() - t0) / number)
result = {"samples": samples, "Y": workspace.FetchBlob("Y"), "dW": workspace.FetchBlob("dW"),
          "db": workspace.FetchBlob("db"), "dX": workspace.FetchBlob("dX")}
"""


def data(m: int, k: int, n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"X": rng.standard_normal((m, k), np.float32),
            "W": rng.standard_normal((n, k), np.float32) * np.float32(k ** -0.5),
            "b": rng.standard_normal(n, np.float32),
            "dY": rng.standard_normal((m, n), np.float32)}


def ours_functional(d):
    x, w, b, dy = d["X"], d["W"], d["b"], d["dY"]
    y = np.empty((x.shape[0], w.shape[0]), np.float32)
    bufs = (np.empty_like(w), np.empty_like(b), np.empty_like(x))

    def step():
        c2.fc(x, w, b, out=y)
        c2.fc_gradient(x, w, dy, out=bufs)

    return step, lambda: (y, *bufs)


def ours_runtime(d):
    workspace.SwitchWorkspace("bench_fc", True)
    workspace.ResetWorkspace()
    for name, value in d.items():
        workspace.FeedBlob(name, value)
    net = core.Net("bench_fc")
    net.FC(["X", "W", "b"], ["Y"])
    net.FCGradient(["X", "W", "dY"], ["dW", "db", "dX"])
    workspace.CreateNet(net)
    name = net.Name()
    return (lambda: workspace.RunNet(name),
            lambda: tuple(workspace.FetchBlob(b) for b in ("Y", "dW", "db", "dX")))


def torch_autograd(d, threads):
    import torch
    import torch.nn.functional as F  # noqa: N812

    torch.set_num_threads(threads)
    x = torch.from_numpy(d["X"]).requires_grad_(True)
    w = torch.from_numpy(d["W"].copy()).requires_grad_(True)
    b = torch.from_numpy(d["b"].copy()).requires_grad_(True)
    dy = torch.from_numpy(d["dY"])
    out = {}

    def step():
        x.grad = w.grad = b.grad = None
        y = F.linear(x, w, b)
        y.backward(dy)
        out["y"] = y

    return step, lambda: (out["y"].detach().numpy(), w.grad.numpy(), b.grad.numpy(),
                          x.grad.numpy())


def caffe2_times(d, threads, repeat, number):
    from harness import Caffe2Worker

    worker = Caffe2Worker()
    try:
        res = worker.exec(CAFFE2_CODE, threads=np.int64(threads), repeat=np.int64(repeat),
                          number=np.int64(number), **d)
    finally:
        worker.close()
    return float(np.median(res["samples"])), (res["Y"], res["dW"], res["db"], res["dX"])


def max_rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def main() -> None:
    args = ARGS
    c2.set_num_threads(args.threads)
    d = data(args.m, args.k, args.n)
    flops = 6.0 * args.m * args.k * args.n
    f_step, f_out = ours_functional(d)
    r_step, r_out = ours_runtime(d)
    t_step, t_out = torch_autograd(d, args.threads)
    times = timeit_many({"caffe2ops c2.fc/fc_gradient": f_step,
                         "caffe2ops RunNet(FC, FCGradient)": r_step,
                         "torch F.linear + backward": t_step}, repeat=args.repeat)
    results = {name: (t, None) for name, t in times.items()}
    reference = f_out()
    if not args.no_caffe2:
        number = max(1, int(0.2 / max(times["caffe2ops RunNet(FC, FCGradient)"], 1e-6)))
        try:
            t, outs = caffe2_times(d, args.threads, args.repeat, number)
            results["Caffe2 1.5.0 RunNet (in-process timing)"] = (t, outs)
        except FileNotFoundError as exc:
            print(f"(real Caffe2 skipped: {exc})")
    print(f"FC forward+backward, X {args.m}x{args.k}, W {args.n}x{args.k}, float32, "
          f"{args.threads} thread(s), load average {os.getloadavg()[0]:.1f}")
    base = times["caffe2ops c2.fc/fc_gradient"]
    print(f"{'implementation':42s} {'ms/step':>9s} {'GFLOP/s':>9s} {'vs ours':>8s} "
          f"{'max rel diff':>13s}")
    others = {"caffe2ops RunNet(FC, FCGradient)": r_out(), "torch F.linear + backward": t_out()}
    for name, (t, outs) in results.items():
        outs = outs if outs is not None else others.get(name, reference)
        diff = max(max_rel(o, r) for o, r in zip(outs, reference, strict=True))
        print(f"{name:42s} {t * 1e3:9.3f} {flops / t / 1e9:9.1f} {t / base:8.2f}x {diff:13.2e}")


if __name__ == "__main__":
    main()
