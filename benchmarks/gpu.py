"""GPU benchmark (``make gpu-check``): caffe2ops' CUDA kernels against PyTorch CUDA and a
device-to-device copy, on one GPU, in one run. Designed to finish in < 5 minutes on an H100/H200.

Tables (Markdown):
1. every element-wise forward and gradient at 1e6, 1e8, 1e9 float32 elements (and float16 at
   1e6, 1e8): ours vs torch CUDA vs ``cupy`` device-to-device copy; GB/s counts bytes read +
   written; "% copy" = our bandwidth / copy bandwidth; "× torch" = our time / torch's time.
   Targets (contract §6): ≥ 90% of copy at ≥ 1e8 and ≤ 1.0× torch.
2. SparseNormalize vs ``torch.embedding_renorm_`` (same rows).
3. Global-norm clipping of 200 tensors vs ``torch.nn.utils.clip_grad_norm_(foreach=True)``.
4. A training step (FC-Relu-FC-SquaredL2Distance-AveragedLoss, gradients, SGD through
   WeightedSum) as a ``DeviceOption(CUDA)`` net vs the same model in torch CUDA eager.
5. Launch overhead at 1e3 elements: ``c2.<op>(cupy array)`` vs torch.

Every figure is the median of timed repetitions after a warm-up call (which compiles the kernel);
times from CUDA events. Without CuPy, torch CUDA or a GPU it prints why and exits 0.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np


def _require():
    try:
        import cupy
        import torch
    except ImportError as exc:
        return None, f"needs CuPy and torch: {exc}"
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1 or not torch.cuda.is_available():
            return None, "no CUDA device visible to CuPy and torch"
    except Exception as exc:
        return None, f"CUDA unavailable: {exc}"
    return (cupy, torch), None


def timed(cupy, fn, reps: int) -> float:
    """Median seconds of ``fn()`` over ``reps`` runs (after one warm-up), CUDA events."""
    fn()
    cupy.cuda.Device().synchronize()
    times = []
    for _ in range(reps):
        start, stop = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, stop) / 1e3)
    return statistics.median(times)


def _elementwise_rows(c2, cupy, torch, n: int, dtype, reps: int) -> list:
    rng = cupy.random.default_rng(0)
    x = (rng.standard_normal(n, dtype=cupy.float32) * 2).astype(dtype)
    y = c2.sigmoid(x)
    dy = rng.standard_normal(n, dtype=cupy.float32).astype(dtype)
    out = cupy.empty_like(x)
    tx, ty, tdy, tout = (torch.from_dlpack(a) for a in (x, y, dy, out))
    item = np.dtype(dtype).itemsize
    copy = timed(cupy, lambda: out.__setitem__(Ellipsis, x), reps)
    copy_bw = 2 * n * item / copy
    cases = [
        ("Clip", 2, lambda: c2.clip(x, -1, 1, out=out),
         lambda: torch.clamp(tx, -1, 1, out=tout)),
        ("ClipGradient", 3, lambda: c2.clip_gradient(y, dy, 0.25, 0.75, out=out),
         lambda: torch.mul(tdy, (ty > 0.25) & (ty < 0.75), out=tout)),
        ("ThresholdedRelu", 2, lambda: c2.thresholded_relu(x, 1.0, out=out),
         lambda: torch.nn.functional.threshold(tx, 1.0, 0.0)),
        ("Relu", 2, lambda: c2.relu(x, out=out), lambda: torch.relu(tx)),
        ("ReluGradient", 3, lambda: c2.relu_gradient(y, dy, out=out),
         lambda: torch.ops.aten.threshold_backward(tdy, ty, 0)),
        ("Sigmoid", 2, lambda: c2.sigmoid(x, out=out), lambda: torch.sigmoid(tx, out=tout)),
        ("SigmoidGradient", 3, lambda: c2.sigmoid_gradient(y, dy, out=out),
         lambda: torch.ops.aten.sigmoid_backward(tdy, ty)),
        ("Tanh", 2, lambda: c2.tanh(x, out=out), lambda: torch.tanh(tx, out=tout)),
        ("TanhGradient", 3, lambda: c2.tanh_gradient(y, dy, out=out),
         lambda: torch.ops.aten.tanh_backward(tdy, ty)),
        ("Cos", 2, lambda: c2.cos(x, out=out), lambda: torch.cos(tx, out=tout)),
        ("CosGradient", 3, lambda: c2.cos_gradient(x, dy, out=out),
         lambda: torch.mul(torch.neg(tdy), torch.sin(tx), out=tout)),
    ]
    rows = []
    for name, arrays, ours, theirs in cases:
        t_ours = timed(cupy, ours, reps)
        t_torch = timed(cupy, theirs, reps)
        bw = arrays * n * item / t_ours
        rows.append((name, np.dtype(dtype).name, n, bw / 1e9, 100 * bw / copy_bw,
                     t_ours / t_torch, arrays * n * item / t_torch / 1e9))
    return rows


def elementwise(cupy, torch, sizes, dtypes, reps):
    import caffe2ops as c2

    rows = []
    for dtype in dtypes:
        for n in sizes:
            rows += _elementwise_rows(c2, cupy, torch, n, dtype, reps)
            cupy.get_default_memory_pool().free_all_blocks()
    print("\n## Element-wise (GB/s = bytes read + written per second)\n")
    print("| op | dtype | n | ours GB/s | % copy | × torch time | torch GB/s |")
    print("|---|---|---|---|---|---|---|")
    for name, dt, n, bw, pct, ratio, tbw in rows:
        print(f"| {name} | {dt} | {n:.0e} | {bw:.0f} | {pct:.0f}% | {ratio:.2f} | {tbw:.0f} |")


def sparse_normalize(cupy, torch, reps):
    import caffe2ops as c2

    rows, dim, lookups = 1_000_000, 128, 100_000
    rng = np.random.default_rng(0)
    idx = rng.integers(0, rows, lookups)
    table = cupy.asarray(rng.standard_normal((rows, dim), dtype=np.float32))
    ttable = torch.from_dlpack(table)
    didx = cupy.asarray(idx)
    tidx = torch.from_dlpack(didx)
    t_ours = timed(cupy, lambda: c2.sparse_normalize(table, didx, norm=1.0), reps)
    with torch.no_grad():
        t_torch = timed(cupy, lambda: torch.embedding_renorm_(ttable, tidx, 1.0, 2.0), reps)
    print("\n## SparseNormalize vs torch.embedding_renorm_ "
          f"({rows} x {dim} float32, {lookups} lookups)\n")
    print("| ours ms | torch ms | × torch time |\n|---|---|---|")
    print(f"| {t_ours * 1e3:.3f} | {t_torch * 1e3:.3f} | {t_ours / t_torch:.2f} |")
    print("\n(ours includes the host-side index check and row plan: indices are copied to the "
          "host, checked and grouped, then uploaded)")


def global_norm(cupy, torch, reps):
    from caffe2ops.kernels.cuda import reductions

    rng = np.random.default_rng(0)
    shapes = [(int(rng.integers(1, 512)), int(rng.integers(1, 2048))) for _ in range(200)]
    arrays = [cupy.asarray(rng.standard_normal(s, dtype=np.float32)) for s in shapes]
    params = [torch.nn.Parameter(torch.from_dlpack(a.copy())) for a in arrays]
    for p in params:
        p.grad = p.detach().clone()

    def ours():
        total = reductions.total_norm(reductions.norms(arrays, 2.0), 2.0)
        reductions.scale_all(arrays, total, 1.0, 1e-6, arrays)

    t_ours = timed(cupy, ours, reps)
    t_torch = timed(cupy, lambda: torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True),
                    reps)
    numel = sum(a.size for a in arrays)
    print(f"\n## Global-norm clipping, 200 float32 tensors ({numel / 1e6:.1f}M elements)\n")
    print("| ours ms | torch ms | × torch time |\n|---|---|---|")
    print(f"| {t_ours * 1e3:.3f} | {t_torch * 1e3:.3f} | {t_ours / t_torch:.2f} |")


def training_step(cupy, torch, reps):
    from caffe2ops import core, workspace
    from caffe2ops.proto import caffe2_pb2

    batch, d_in, hidden, d_out = 512, 256, 512, 16
    rng = np.random.default_rng(0)
    cuda0 = core.DeviceOption(caffe2_pb2.CUDA, 0)
    init = {"x": rng.standard_normal((batch, d_in)), "label": rng.standard_normal((batch, d_out)),
            "w1": rng.standard_normal((hidden, d_in)) * 0.05, "b1": np.zeros(hidden),
            "w2": rng.standard_normal((d_out, hidden)) * 0.05, "b2": np.zeros(d_out),
            "one": np.ones(1), "neg_lr": np.full(1, -0.01)}
    workspace.ResetWorkspace()
    for name, value in init.items():
        workspace.FeedBlob(name, value.astype(np.float32), cuda0)
    net = core.Net("train")
    net.FC(["x", "w1", "b1"], "h")
    net.Relu("h", "r")
    net.FC(["r", "w2", "b2"], "y")
    net.SquaredL2Distance(["y", "label"], "dist")
    net.AveragedLoss("dist", "loss")
    net.AddGradientOperators(["loss"])
    for p in ("w1", "b1", "w2", "b2"):
        net.WeightedSum([p, "one", p + "_grad", "neg_lr"], p)
    net.RunAllOnGPU(0)
    workspace.CreateNet(net)
    t_ours = timed(cupy, lambda: workspace.RunNet(net.Name()), reps)

    model = torch.nn.Sequential(torch.nn.Linear(d_in, hidden), torch.nn.ReLU(),
                                torch.nn.Linear(hidden, d_out)).cuda()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    tx = torch.tensor(init["x"], dtype=torch.float32, device="cuda")
    tl = torch.tensor(init["label"], dtype=torch.float32, device="cuda")

    def torch_step():
        opt.zero_grad(set_to_none=True)
        loss = ((model(tx) - tl) ** 2).sum(1).mul(0.5).mean()
        loss.backward()
        opt.step()

    t_torch = timed(cupy, torch_step, reps)
    print(f"\n## Training step (MLP {d_in}-{hidden}-{d_out}, batch {batch}, SGD)\n")
    print("| ours ms | torch ms | ours examples/s | torch examples/s |\n|---|---|---|---|")
    print(f"| {t_ours * 1e3:.3f} | {t_torch * 1e3:.3f} | {batch / t_ours:.0f} | "
          f"{batch / t_torch:.0f} |")


def overhead(cupy, torch, reps):
    import caffe2ops as c2

    x = cupy.ones(1000, cupy.float32)
    tx = torch.from_dlpack(x)
    rows = []
    for name, ours, theirs in [("Clip", lambda: c2.clip(x, -1, 1), lambda: torch.clamp(tx, -1, 1)),
                               ("Relu", lambda: c2.relu(x), lambda: torch.relu(tx)),
                               ("Cos", lambda: c2.cos(x), lambda: torch.cos(tx))]:
        for fn in (ours, theirs):
            fn()
        cupy.cuda.Device().synchronize()
        per = []
        for fn in (ours, theirs):
            start = time.perf_counter()
            for _ in range(reps):
                fn()
            cupy.cuda.Device().synchronize()
            per.append((time.perf_counter() - start) / reps)
        rows.append((name, *per))
    print("\n## Launch overhead at 1e3 float32 (host time per call, µs)\n")
    print("| op | ours µs | torch µs |\n|---|---|---|")
    for name, a, b in rows:
        print(f"| {name} | {a * 1e6:.1f} | {b * 1e6:.1f} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1e6 and 1e7 only, fewer reps")
    args = parser.parse_args(argv)
    mods, reason = _require()
    if mods is None:
        print(f"benchmarks/gpu.py: skipped: {reason}")
        return 0
    cupy, torch = mods
    props = cupy.cuda.runtime.getDeviceProperties(0)
    print(f"# caffe2ops GPU benchmark: {props['name'].decode()}, CuPy {cupy.__version__}, "
          f"torch {torch.__version__}")
    sizes = (10**6, 10**7) if args.quick else (10**6, 10**8, 10**9)
    reps = 5 if args.quick else 10
    start = time.perf_counter()
    elementwise(cupy, torch, sizes, (np.float32,), reps)
    elementwise(cupy, torch, sizes[:2], (np.float16,), reps)
    sparse_normalize(cupy, torch, reps)
    global_norm(cupy, torch, reps)
    training_step(cupy, torch, reps)
    overhead(cupy, torch, 1000)
    print(f"\n(total {time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
