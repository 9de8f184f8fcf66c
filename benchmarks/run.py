"""Benchmark the caffe2ops CPU kernels against NumPy, PyTorch and a plain copy (``make bench``).

For float32 inputs of 1e3, 1e5, 1e7 and 5e7 elements (``--quick``: 1e3, 1e5, 1e6) and 1 and 2
threads, every element-wise forward/gradient kernel writes into a preallocated, pre-faulted
output; each figure is the median of >= 7 timed runs after warm-up. Bandwidth counts bytes read
plus bytes written; "% copy" compares with the fastest plain copy measured at the same size and
thread count (np.copyto, a Numba parallel copy, torch ``copy_``). From 1e7 elements on, every
timed call starts with evicted caches (a read of 1.5x the last-level cache, untimed), so that
large sizes measure the memory-bound regime whatever the cache size. First-call (compile /
cache-load) costs are measured separately in fresh processes and never enter the steady-state
figures.

Writes ``benchmarks/results.json`` and prints Markdown tables. The rows call the adapters in
``OURS`` / ``NUMPY`` / ``TORCH`` below; point ``OURS`` at another API to benchmark it instead.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import os
import platform
import sys
import time
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bandwidth  # noqa: E402
from common import (  # noqa: E402
    cache_flusher,
    compile_times,
    fmt,
    fmt_time,
    markdown_table,
    max_threads,
    set_threads,
    timeit,
    timeit_many,
)

import caffe2ops as c2  # noqa: E402
from caffe2ops import kernels  # noqa: E402
from caffe2ops.kernels import cpu  # noqa: E402

HERE = Path(__file__).resolve().parent

# ---------------------------------------------------------------------------------------------
# Adapters. ``d`` holds the inputs (numpy: d.x, d.y_clip, d.y_relu, d.dy, d.s, d.label, d.dloss,
# d.out; scalars d.lo, d.hi, d.alpha, d.margin; torch views d.t.<same names>).

OURS = {  # the public functional API, as users call it
    "clip": lambda d: c2.clip(d.x, d.lo, d.hi, out=d.out),
    "clip_gradient": lambda d: c2.clip_gradient(d.y_clip, d.dy, d.lo, d.hi, out=d.out),
    "thresholded_relu": lambda d: c2.thresholded_relu(d.x, d.alpha, out=d.out),
    "thresholded_relu_gradient": lambda d: c2.thresholded_relu_gradient(d.y_relu, d.dy,
                                                                        out=d.out),
    "cos": lambda d: c2.cos(d.x, out=d.out),
    "cos_gradient": lambda d: c2.cos_gradient(d.x, d.dy, out=d.out),
    "cosine_embedding_criterion":
        lambda d: c2.cosine_embedding_criterion(d.s, d.label, d.margin, out=d.out),
    "cosine_embedding_criterion_gradient":
        lambda d: c2.cosine_embedding_criterion_gradient(d.s, d.label, d.dloss, d.margin,
                                                         out=d.out),
}

NUMPY = {
    "clip": lambda d: np.clip(d.x, d.lo, d.hi, out=d.out),
    "clip_gradient":
        lambda d: np.multiply(d.dy, (d.lo < d.y_clip) & (d.y_clip < d.hi), out=d.out),
    "thresholded_relu": lambda d: np.multiply(d.x, d.x > d.alpha, out=d.out),
    "thresholded_relu_gradient": lambda d: np.multiply(d.dy, d.y_relu > 0, out=d.out),
    "cos": lambda d: np.cos(d.x, out=d.out),
    "cos_gradient": lambda d: np.negative(
        np.multiply(np.sin(d.x, out=d.out), d.dy, out=d.out), out=d.out),
    "cosine_embedding_criterion": lambda d: (
        np.maximum(np.subtract(d.s, d.margin, out=d.out), 0, out=d.out),
        np.copyto(d.out, 1 - d.s, where=d.label == 1)),
    "cosine_embedding_criterion_gradient": lambda d: (
        np.multiply(d.dloss, d.s >= d.margin, out=d.out),
        np.copyto(d.out, -d.dloss, where=d.label == 1)),
}


def _torch_ops() -> dict:
    import torch

    aten = torch.ops.aten
    return {
        "clip": lambda d: torch.clamp(d.t.x, float(d.lo), float(d.hi), out=d.t.out),
        "clip_gradient": lambda d: aten.hardtanh_backward.grad_input(
            d.t.dy, d.t.y_clip, float(d.lo), float(d.hi), grad_input=d.t.out),
        "thresholded_relu": lambda d: aten.threshold.out(d.t.x, float(d.alpha), 0.0,
                                                         out=d.t.out),
        "thresholded_relu_gradient": lambda d: aten.threshold_backward.grad_input(
            d.t.dy, d.t.y_relu, 0.0, grad_input=d.t.out),
        "cos": lambda d: torch.cos(d.t.x, out=d.t.out),
        "cos_gradient": lambda d: torch.sin(d.t.x, out=d.t.out).mul_(d.t.dy).neg_(),
        "cosine_embedding_criterion": lambda d: torch.where(
            d.t.label == 1, 1 - d.t.s, (d.t.s - float(d.margin)).clamp_min_(0), out=d.t.out),
        "cosine_embedding_criterion_gradient": lambda d: torch.where(
            d.t.label == 1, -d.t.dloss, d.t.dloss * (d.t.s >= float(d.margin)), out=d.t.out),
    }


# bytes read + written per element (float32 data, int32 labels)
BYTES = {
    "clip": 8, "clip_gradient": 12, "thresholded_relu": 8, "thresholded_relu_gradient": 12,
    "cos": 8, "cos_gradient": 12, "cosine_embedding_criterion": 12,
    "cosine_embedding_criterion_gradient": 16,
}
BANDWIDTH_BOUND = [k for k in BYTES if k not in ("cos",)]


def make_data(n: int, rng: np.random.Generator) -> SimpleNamespace:
    import torch

    f = np.float32
    d = SimpleNamespace(lo=f(-0.5), hi=f(0.5), alpha=f(0.25), margin=f(0.1))
    d.x = rng.standard_normal(n, dtype=f)
    d.y_clip = np.clip(d.x, d.lo, d.hi)
    d.y_relu = np.where(d.x > d.alpha, d.x, f(0))
    d.dy = rng.standard_normal(n, dtype=f)
    d.s = rng.uniform(-1, 1, n).astype(f)
    d.label = np.where(rng.random(n) < 0.5, 1, -1).astype(np.int32)
    d.dloss = d.dy
    d.out = np.zeros(n, f)  # written once: pages faulted in before timing
    d.copy_dst = np.zeros(n, f)
    d.t = SimpleNamespace(**{k: torch.from_numpy(getattr(d, k)) for k in
                             ("x", "y_clip", "y_relu", "dy", "s", "label", "dloss", "out",
                              "copy_dst")})
    return d


#: From this size on every timed call starts with evicted caches (DRAM-bound regime).
FLUSH_FROM = 10**7


def bench_elementwise(sizes: list[int], threads: list[int], repeat: int,
                      log: list[str]) -> list[dict]:
    torch_ops = _torch_ops()
    rows = []
    rng = np.random.default_rng(0)
    flush = cache_flusher() if max(sizes) >= FLUSH_FROM else None
    for n in sizes:
        d = make_data(n, rng)
        numpy_t: dict[str, float] = {}
        setup = flush if n >= FLUSH_FROM else None
        for nt in threads:
            set_threads(nt)
            nbytes = 8 * n
            copies = timeit_many({
                "np.copyto": partial(np.copyto, d.copy_dst, d.x),
                "numba parallel copy": partial(bandwidth.copy, d.x, d.copy_dst),
                "torch copy_": partial(d.t.copy_dst.copy_, d.t.x),
            }, repeat, setup=setup)
            best = min(copies, key=copies.get)
            copy_bw = nbytes / copies[best] / 1e9
            rows.append({"op": "copy (reference)", "n": n, "threads": nt,
                         "cold_cache": setup is not None,
                         "time_s": copies[best], "gbps": copy_bw, "pct_copy": 100.0,
                         "copy_impl": best, "copy_times_s": copies})
            for name, ours in OURS.items():
                fns = {"ours": partial(ours, d), "torch": partial(torch_ops[name], d)}
                if name not in numpy_t:  # NumPy is single-threaded: time it once per size
                    fns["numpy"] = partial(NUMPY[name], d)
                t = timeit_many(fns, repeat, setup=setup)
                numpy_t.setdefault(name, t.get("numpy", 0.0))
                t_ours, t_torch = t["ours"], t["torch"]
                gbps = BYTES[name] * n / t_ours / 1e9
                rows.append({"op": name, "n": n, "threads": nt, "time_s": t_ours,
                             "cold_cache": setup is not None,
                             "gbps": gbps, "pct_copy": 100 * gbps / copy_bw,
                             "numpy_s": numpy_t[name], "torch_s": t_torch,
                             "ratio_torch": t_ours / t_torch})
            log.append(f"  elementwise n={n:.0e} threads={nt} done")
            print(log[-1], file=sys.stderr, flush=True)
        del d
    return rows


def bench_cosine_similarity(sizes: list[int], threads: list[int], repeat: int) -> list[dict]:
    import torch
    import torch.nn.functional as F

    rows = []
    rng = np.random.default_rng(1)
    dim = 64
    for size in sizes:
        n = max(1, size // dim)
        x = rng.standard_normal((n, dim), dtype=np.float32)
        y = rng.standard_normal((n, dim), dtype=np.float32)
        dz = rng.standard_normal(n, dtype=np.float32)
        z = np.zeros(n, np.float32)
        dx = np.zeros_like(x)
        dy = np.zeros_like(y)
        tx = torch.from_numpy(x).requires_grad_(True)
        ty = torch.from_numpy(y).requires_grad_(True)
        tdz = torch.from_numpy(dz)
        for nt in threads:
            set_threads(nt)
            with torch.no_grad():
                t = timeit_many({"ours": partial(c2.cosine_similarity, x, y, out=z),
                                 "torch": partial(F.cosine_similarity, tx, ty, dim=1)}, repeat)
            t_f, t_tf = t["ours"], t["torch"]
            tz = F.cosine_similarity(tx, ty, dim=1)
            t = timeit_many({
                "ours": partial(c2.cosine_similarity_gradient, x, y, dz, out=(dx, dy)),
                "torch": partial(torch.autograd.grad, tz, (tx, ty), tdz, retain_graph=True),
            }, repeat)
            t_g, t_tg = t["ours"], t["torch"]
            fb = (2 * n * dim + n) * 4
            gb = (4 * n * dim + n) * 4
            rows.append({"op": "cosine_similarity", "shape": [n, dim], "threads": nt,
                         "time_s": t_f, "gbps": fb / t_f / 1e9, "torch_s": t_tf,
                         "ratio_torch": t_f / t_tf})
            rows.append({"op": "cosine_similarity_gradient", "shape": [n, dim], "threads": nt,
                         "time_s": t_g, "gbps": gb / t_g / 1e9, "torch_s": t_tg,
                         "ratio_torch": t_g / t_tg, "torch_impl": "autograd backward"})
    return rows


def bench_sparse_normalize(threads: list[int], repeat: int, rows_: int = 240_000,
                           dim: int = 64, n_idx: int = 100_000) -> list[dict]:
    import torch

    rng = np.random.default_rng(2)
    orig = (rng.standard_normal((rows_, dim), dtype=np.float32) * 3).astype(np.float32)
    idx = rng.integers(0, rows_, n_idx, dtype=np.int64)
    table = orig.copy()
    tt = torch.from_numpy(orig.copy())
    torig = torch.from_numpy(orig)
    tidx = torch.from_numpy(idx)
    distinct = int(np.unique(idx).size)
    norm = np.float32(1.0)
    out = []
    for nt in threads:
        set_threads(nt)
        t_ours = timeit(lambda: c2.sparse_normalize(table, idx, norm, True), repeat,
                        setup=lambda: np.copyto(table, orig))
        t_torch = timeit(lambda: torch.embedding_renorm_(tt, tidx, 1.0, 2.0), repeat,
                         setup=lambda: tt.copy_(torig))
        out.append({"op": "sparse_normalize", "shape": [rows_, dim], "indices": n_idx,
                    "distinct_rows": distinct, "threads": nt, "time_s": t_ours,
                    "gbps": 2 * distinct * dim * 4 / t_ours / 1e9, "torch_s": t_torch,
                    "ratio_torch": t_ours / t_torch})
    return out


def _per_call(fn, repeat: int, number: int) -> float:
    """Median over ``repeat`` batches of the mean time of ``number`` back-to-back calls."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return float(np.median(times))


def bench_overhead(repeat: int) -> list[dict]:
    """Call overhead on 1e3 float32 (contract: c2 call <= 10 us, RunOperatorOnce <= 50 us, one
    operator inside RunNet <= 20 us) and the start-up cost of ``import caffe2ops`` (<= 0.5 s)."""
    import subprocess

    import torch

    from caffe2ops import core, workspace

    x = np.random.default_rng(3).standard_normal(1000).astype(np.float32)
    out = np.empty_like(x)
    tx, tout = torch.from_numpy(x), torch.from_numpy(out)
    c2.clip(x, -0.5, 0.5, out=out)
    rows = [
        {"what": "c2.clip(x, -0.5, 0.5, out=out), 1e3 float32", "limit_s": 10e-6,
         "time_s": _per_call(lambda: c2.clip(x, -0.5, 0.5, out=out), repeat, 2000)},
        {"what": "c2.cos(x, out=out), 1e3 float32", "limit_s": 10e-6,
         "time_s": _per_call(lambda: c2.cos(x, out=out), repeat, 2000)},
        {"what": "np.clip(x, -0.5, 0.5, out=out) (for scale)", "limit_s": None,
         "time_s": _per_call(lambda: np.clip(x, -0.5, 0.5, out=out), repeat, 2000)},
        {"what": "torch.clamp(x, -0.5, 0.5, out=out) (for scale)", "limit_s": None,
         "time_s": _per_call(lambda: torch.clamp(tx, -0.5, 0.5, out=tout), repeat, 2000)},
    ]
    old = workspace.CurrentWorkspace()
    workspace.SwitchWorkspace("bench_overhead", True)
    workspace.ResetWorkspace()
    try:
        workspace.FeedBlob("x", x)
        op = core.CreateOperator("Clip", ["x"], ["y"], min=-0.5, max=0.5)
        workspace.RunOperatorOnce(op)
        rows.append({"what": "workspace.RunOperatorOnce(Clip), 1e3 float32", "limit_s": 50e-6,
                     "time_s": _per_call(lambda: workspace.RunOperatorOnce(op), repeat, 1000)})
        net = core.Net("bench_overhead_net")
        n_ops = 20
        for i in range(n_ops):
            net.Clip(["x"], [f"y{i}"], min=-0.5, max=0.5)
        workspace.CreateNet(net, overwrite=True)
        workspace.RunNet(net.Name())
        per_net = _per_call(lambda: workspace.RunNet(net.Name()), repeat, 200)
        rows.append({"what": f"one Clip inside RunNet ({n_ops} ops), 1e3 float32",
                     "limit_s": 20e-6, "time_s": per_net / n_ops})
    finally:
        workspace.ResetWorkspace()
        workspace.SwitchWorkspace(old)
    code = ("import time; t = time.perf_counter(); import caffe2ops; "
            "print(time.perf_counter() - t)")
    imports = [float(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                    text=True, check=True).stdout) for _ in range(5)]
    rows.append({"what": "import caffe2ops (fresh process)", "limit_s": 0.5,
                 "time_s": float(np.median(imports))})
    return rows


def run_caffe2_bench(threads: int) -> Any:
    """bench_caffe2.py in a process of its own: the seed operators in a created net, ours vs
    real Caffe2 1.5.0 (skipped with a note when ``.venv-caffe2`` is missing)."""
    import subprocess
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        proc = subprocess.run([sys.executable, str(HERE / "bench_caffe2.py"), "--threads",
                               str(threads), "--json", f.name], capture_output=True, text=True)
        print("\n" + proc.stdout.strip())
        if proc.returncode:
            print(proc.stderr[-2000:], file=sys.stderr)
            return {"error": f"bench_caffe2.py exited {proc.returncode}"}
        text = Path(f.name).read_text()
    return json.loads(text) if text.strip() else None


#: The model-level benchmarks, each run as a script of its own (its own BLAS/torch thread set-up
#: and worker processes) with ``--threads``: the flag that skips it, and its title.
SCRIPTS = {"bench_fc.py": ("--no-fc", "FC forward + backward"),
           "bench_sparse.py": ("--no-sparse", "sparse lookups and optimizers"),
           "bench_train.py": ("--no-train", "the main job's training step")}


def run_script_bench(script: str, threads: int) -> dict:
    """``benchmarks/<script> --threads N`` in a process of its own; its tables are printed and
    kept (with the exit status) for ``results.json``."""
    import subprocess

    print(f"\n## {SCRIPTS[script][1]} (`benchmarks/{script}`)", flush=True)
    proc = subprocess.run([sys.executable, str(HERE / script), "--threads", str(threads)],
                          capture_output=True, text=True)
    print(proc.stdout.strip(), flush=True)
    if proc.returncode:
        print(proc.stderr[-2000:], file=sys.stderr)
    return {"returncode": proc.returncode, "stdout": proc.stdout}


def run_clipping_bench(threads: list[int], quick: bool) -> Any:
    path = HERE / "bench_clipping.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("bench_clipping", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    if not hasattr(mod, "main"):
        return None
    params = inspect.signature(mod.main).parameters
    kwargs: dict[str, Any] = {}
    if "threads" in params:
        kwargs["threads"] = tuple(threads)
    if quick and "repeat" in params:
        kwargs["repeat"] = 7
    if quick and "warmup" in params:
        kwargs["warmup"] = 1
    return mod.main(**kwargs)


def run_dask_bench(quick: bool) -> Any:
    spec = importlib.util.spec_from_file_location("bench_dask", HERE / "bench_dask.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main(quick=quick)


def _sizes_text(n: int) -> str:
    return f"{n:.0e}".replace("e+0", "e")


def _machine_facts() -> dict[str, Any]:
    cpu.load()
    return {"cpu_model": cpu.cpuinfo("model name") or platform.processor(),
            "cores": os.cpu_count(),
            "llc_bytes": cpu.llc_bytes(), "streaming_store_min_bytes": cpu.STREAMING_MIN_BYTES,
            "threading_layer": kernels.threading_layer()}


def print_tables(res: dict) -> None:
    ew = res["elementwise"]
    m = res["machine"]
    nt = m.get("streaming_store_min_bytes", 1 << 62)
    print(f"\nMachine: {m.get('cpu_model')}, {m.get('cores')} cores, LLC "
          f"{m.get('llc_bytes', 0) / 2**20:.0f} MiB, numba threading layer "
          f"{m.get('threading_layer')}, streaming stores "
          + ("off" if nt >= 1 << 61 else f"from {nt / 2**20:.0f} MiB touched")
          + f"; Python {m['python']}, NumPy {m['numpy']}, torch {m.get('torch')}")
    print("\n## Element-wise kernels (float32; time per call, median; n >= 1e7: caches evicted "
          "before each call)\n")
    head = ["op", "n", "thr", "ours", "GB/s", "% copy", "NumPy", "PyTorch", "ours/PyTorch"]
    body = []
    for r in ew:
        body.append([r["op"], _sizes_text(r["n"]), r["threads"], fmt_time(r["time_s"]),
                     fmt(r["gbps"], ".1f"), fmt(r["pct_copy"], ".0f"),
                     fmt_time(r.get("numpy_s")), fmt_time(r.get("torch_s")),
                     fmt(r.get("ratio_torch"), ".2f")])
    print(markdown_table(head, body))
    print("\n## Row kernels (float32)\n")
    body = []
    for r in res["cosine_similarity"] + res["sparse_normalize"]:
        shape = "x".join(str(s) for s in r["shape"])
        if "indices" in r:
            shape += f", {r['indices']} idx ({r['distinct_rows']} distinct)"
        body.append([r["op"], shape, r["threads"], fmt_time(r["time_s"]), fmt(r["gbps"], ".1f"),
                     fmt_time(r["torch_s"]), fmt(r["ratio_torch"], ".2f")])
    print(markdown_table(["op", "shape", "thr", "ours", "GB/s", "PyTorch", "ours/PyTorch"],
                         body))
    ct = res.get("compile")
    if ct:
        print("\n## First call (fresh process; serial + parallel kernel, float32)\n")
        ops = list(ct["cold"]["per_op_s"])
        body = [[op, fmt(ct["cold"]["per_op_s"][op] * 1e3, ".0f"),
                 fmt(ct["warm"]["per_op_s"][op] * 1e3, ".1f")] for op in ops]
        print(markdown_table(["operator", "cold cache (ms)", "warm cache (ms)"], body))
        w = ct["warm"]
        print(f"\nOnce per process (warm): import numba + kernel module "
              f"{w['import_numba_and_module_s'] * 1e3:.0f} ms, numba context set-up "
              f"{w['numba_context_init_s'] * 1e3:.0f} ms (cold: "
              f"{ct['cold']['numba_context_init_s'] * 1e3:.0f} ms).")
    print("\n## Call overhead and start-up\n")
    body = [[r["what"], fmt_time(r["time_s"]),
             "-" if r["limit_s"] is None else fmt_time(r["limit_s"])] for r in res["overhead"]]
    print(markdown_table(["call", "time (median)", "contract limit"], body))
    print("\n## Contract targets (n >= 1e7, max threads)\n")
    body = [[t["target"], t["detail"], "met" if t["met"] else "NOT met"]
            for t in res["targets"]]
    print(markdown_table(["target", "measured", "status"], body))


def check_targets(res: dict, nt: int) -> list[dict]:
    out = []
    big = [r for r in res["elementwise"] if r["n"] >= 10**7 and r["threads"] == nt
           and r["op"] != "copy (reference)"]
    for r in big:
        name = f"{r['op']} n={_sizes_text(r['n'])}"
        if r["op"] in BANDWIDTH_BOUND:
            met = r["pct_copy"] >= 70 and r["ratio_torch"] <= 1.0
            out.append({"target": f"{name}: >= 70% copy and <= 1.0x PyTorch",
                        "detail": f"{r['pct_copy']:.0f}% copy, {r['ratio_torch']:.2f}x",
                        "met": bool(met)})
        else:
            out.append({"target": f"{name}: <= 1.0x PyTorch",
                        "detail": f"{r['ratio_torch']:.2f}x ({r['pct_copy']:.0f}% copy)",
                        "met": bool(r["ratio_torch"] <= 1.0)})
    for r in res.get("overhead", []):
        if r["limit_s"] is not None:
            out.append({"target": f"{r['what']} <= {fmt_time(r['limit_s'])}",
                        "detail": fmt_time(r["time_s"]), "met": bool(r["time_s"] <= r["limit_s"])})
    for r in res["sparse_normalize"]:
        if r["threads"] == nt:
            out.append({"target": "sparse_normalize faster than torch.embedding_renorm_",
                        "detail": f"{fmt_time(r['time_s'])} vs {fmt_time(r['torch_s'])} "
                                  f"({r['ratio_torch']:.2f}x)",
                        "met": bool(r["ratio_torch"] < 1.0)})
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="sizes 1e3, 1e5, 1e6 only (smoke run)")
    ap.add_argument("--repeat", type=int, default=7, help="timed runs per figure (>= 7)")
    ap.add_argument("--no-compile", action="store_true", help="skip the first-call measurement")
    ap.add_argument("--no-clipping", action="store_true", help="skip bench_clipping.py")
    ap.add_argument("--no-dask", action="store_true", help="skip bench_dask.py")
    ap.add_argument("--no-caffe2", action="store_true",
                    help="skip bench_caffe2.py (the real-Caffe2 column; needs .venv-caffe2)")
    for flag, title in SCRIPTS.values():
        ap.add_argument(flag, action="store_true", help=f"skip {title}")
    ap.add_argument("--json", default=str(HERE / "results.json"), help="output file")
    args = ap.parse_args(argv)
    repeat = max(7, args.repeat)
    sizes = [10**3, 10**5, 10**6] if args.quick else [10**3, 10**5, 10**7, 5 * 10**7]
    threads = [t for t in (1, 2) if t <= max_threads()]
    t_start = time.perf_counter()
    log: list[str] = []
    res: dict[str, Any] = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "python": platform.python_version(), "numpy": np.__version__,
                    "max_threads": max_threads()},
        "quick": args.quick, "repeat": repeat, "loadavg_at_start": os.getloadavg(),
    }
    res["machine"].update(_machine_facts())
    if os.getloadavg()[0] > 0.5:
        print(f"warning: load average {os.getloadavg()[0]:.2f}: other processes compete for "
              "the CPUs; 2-thread figures will be noisy", file=sys.stderr)
    try:
        import numba
        import torch

        res["machine"].update(numba=numba.__version__, torch=torch.__version__)
    except ImportError:  # pragma: no cover
        pass
    if not args.no_compile:
        print("measuring first-call costs (fresh processes, cold then warm cache)...",
              file=sys.stderr, flush=True)
        res["compile"] = compile_times("float32")
    cpu.preload(dtypes=(np.float32,))  # compile/load outside every timing
    res["elementwise"] = bench_elementwise(sizes, threads, repeat, log)
    res["cosine_similarity"] = bench_cosine_similarity(
        [s for s in sizes if s <= 10**7], threads, repeat)
    res["sparse_normalize"] = bench_sparse_normalize(threads, repeat)
    res["overhead"] = bench_overhead(repeat)
    res["targets"] = check_targets(res, max(threads)) if not args.quick else []
    res["wall_s"] = time.perf_counter() - t_start
    print_tables(res)
    if not args.no_clipping:
        try:
            clip_res = run_clipping_bench(threads, args.quick)
        except Exception as exc:  # keep the kernel results even if that script breaks
            clip_res = {"error": repr(exc)}
            print(f"\nbench_clipping failed: {exc!r}", file=sys.stderr)
        if clip_res is not None:
            res["clipping"] = clip_res
    if not args.no_caffe2 and not args.quick:
        res["caffe2"] = run_caffe2_bench(max(threads))
    if not args.quick:
        for script, (flag, _) in SCRIPTS.items():
            if not getattr(args, flag[2:].replace("-", "_")):
                res[script.removesuffix(".py")] = run_script_bench(script, max(threads))
    if not args.no_dask and importlib.util.find_spec("distributed") is not None:
        try:
            res["dask"] = run_dask_bench(args.quick)
        except Exception as exc:  # keep the other results even if that script breaks
            res["dask"] = {"error": repr(exc)}
            print(f"\nbench_dask failed: {exc!r}", file=sys.stderr)
    res["wall_s"] = time.perf_counter() - t_start
    Path(args.json).write_text(json.dumps(res, indent=1, default=float) + "\n")
    print(f"\nwrote {args.json} ({res['wall_s']:.0f} s)")
    return res


if __name__ == "__main__":
    main()
