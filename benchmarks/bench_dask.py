"""caffe2ops.dask against the in-process calls: SparseNormalize and global-norm clipping.

Workloads (defaults are the issue's sizes; ``--quick`` divides them by 20):

* SparseNormalize (``use_max_norm=False``, so every repeat does the same work) of a 10M x 64
  float32 table (2.56 GB) with 1M random int64 indices. In process: ``c2.sparse_normalize`` in
  place. Dask: the table persisted in the workers in 128 MB row chunks;
  ``c2d.sparse_normalize(..., inplace=True)`` persisted (the touched chunks updated where they
  are, untouched ones passed through).
* Global-norm clipping of 1 GB of float32 gradients (16 arrays of 16.7M elements). In process:
  ``clipping.clip_by_global_norm`` (new output arrays). Dask: the arrays persisted in 128 MB
  chunks (Dask's guidance: chunks of about 100 MB); ``c2d.clip_by_global_norm`` persisted with
  its total norm.

Threads: in process ``caffe2ops.set_num_threads(T)``; Dask with 1 worker x T threads and with
T workers x 1 thread (``T`` = 2 here, the machine's cores), each worker's kernels on 1 thread, so
the total thread count is the same. Times are medians of ``--repeat`` runs after one warm-up
(data creation and persisting the inputs are outside the timings). Overhead = Dask time minus
in-process time, reported per task and per GB of input, with the peak resident memory of each
worker (VmHWM). Writes ``benchmarks/results_dask.json``.

Run alone: ``python benchmarks/bench_dask.py [--quick] [--repeat N]``; ``make bench`` runs it
at the end (``--no-dask`` skips it).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import fmt, fmt_time, markdown_table, max_threads  # noqa: E402

import caffe2ops as c2  # noqa: E402
from caffe2ops import clipping  # noqa: E402

TABLE_CHUNK_BYTES = 128 << 20
GRAD_CHUNK_BYTES = 128 << 20


def _median(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _peak_rss() -> int:
    with open("/proc/self/status") as f:
        return int(next(ln for ln in f if ln.startswith("VmHWM:")).split()[1]) * 1024


def _sizes(quick: bool) -> dict[str, int]:
    div = 20 if quick else 1
    return {"rows": 10_000_000 // div, "cols": 64, "indices": 1_000_000 // div,
            "grad_arrays": 16, "grad_elems": (1 << 30) // 4 // 16 // div}


def in_process(sz: dict[str, int], threads: int, repeat: int) -> dict[str, float]:
    c2.set_num_threads(threads)
    rng = np.random.default_rng(0)
    table = rng.random((sz["rows"], sz["cols"]), dtype=np.float32)
    idx = rng.integers(0, sz["rows"], sz["indices"])
    held = [table]  # dropped before the gradients are made
    t_sn = _median(lambda: c2.sparse_normalize(held[0], idx, 1.0, False), repeat)
    del table
    held.clear()
    grads = [rng.standard_normal(sz["grad_elems"], dtype=np.float32)
             for _ in range(sz["grad_arrays"])]
    limit = float(clipping.clip_by_global_norm(grads, np.inf)[1].total_norm) / 2

    def clip():
        out, st = clipping.clip_by_global_norm(grads, limit)
        return st.total_norm

    t_gn = _median(clip, repeat)
    return {"sparse_normalize_s": t_sn, "global_norm_s": t_gn}


def on_dask(sz: dict[str, int], workers: int, threads_per_worker: int, repeat: int) -> dict:
    import dask.array as da
    from distributed import Client, LocalCluster, wait

    import caffe2ops.dask as c2d

    cluster = LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker,
                           processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0",
                           memory_limit=0, silence_logs=40)
    client = Client(cluster)
    try:
        c2d.load_kernels_on_workers(client)
        client.run(c2.set_num_threads, 1)
        rows, cols = sz["rows"], sz["cols"]
        chunk_rows = max(1, TABLE_CHUNK_BYTES // (cols * 4))
        held = [da.random.default_rng(0).random((rows, cols), dtype=np.float32,
                                                chunks=(chunk_rows, cols)).persist()]
        wait(held[0])
        idx = np.random.default_rng(1).integers(0, rows, sz["indices"])
        probe = c2d.sparse_normalize(held[0], idx, 1.0, False)
        sn_tasks = len(probe.dask.layers[probe.name])
        del probe

        def sparse():
            # In place on the workers' chunks, as the in-process call updates its table.
            held[0] = c2d.sparse_normalize(held[0], idx, 1.0, False, inplace=True).persist()
            wait(held[0])

        t_sn = _median(sparse, repeat)
        held.clear()
        grad_chunk = max(1, GRAD_CHUNK_BYTES // 4)
        rng = da.random.default_rng(2)
        grads = [rng.standard_normal(sz["grad_elems"], dtype=np.float32, chunks=grad_chunk)
                 for _ in range(sz["grad_arrays"])]
        grads = client.persist(grads)
        wait(grads)
        total = float(c2d.compute(*c2d.clip_by_global_norm(grads, np.inf))[1].total_norm)
        out, st = c2d.clip_by_global_norm(grads, total / 2)
        base = set().union(*(set(g.dask.keys()) for g in grads))
        graph_keys = set().union(*(set(o.dask.keys()) for o in out)) | set(st.total_norm.dask)
        gn_tasks = len(graph_keys - base)

        def clip():
            out, st = c2d.clip_by_global_norm(grads, total / 2)
            done = client.persist([*out, st.total_norm])
            wait(done)

        t_gn = _median(clip, repeat)
        peaks = client.run(_peak_rss)
    finally:
        client.close()
        cluster.close()
    return {"sparse_normalize_s": t_sn, "sparse_normalize_tasks": sn_tasks,
            "global_norm_s": t_gn, "global_norm_tasks": gn_tasks,
            "peak_worker_rss_bytes": max(peaks.values())}


def main(quick: bool = False, repeat: int = 5) -> dict[str, Any]:
    sz = _sizes(quick)
    threads = max_threads()
    res: dict[str, Any] = {"sizes": sz, "threads": threads, "repeat": repeat,
                           "loadavg_at_start": os.getloadavg()}
    res["in_process"] = in_process(sz, threads, repeat)
    gc.collect()
    res["dask"] = {}
    for workers, tpw in ((1, threads), (threads, 1)):
        res["dask"][f"{workers}x{tpw}"] = on_dask(sz, workers, tpw, repeat)
    table_gb = sz["rows"] * sz["cols"] * 4 / 1e9
    grads_gb = sz["grad_arrays"] * sz["grad_elems"] * 4 / 1e9
    rows = []
    for what, key, gb in (("sparse_normalize", "sparse_normalize", table_gb),
                          ("clip_by_global_norm", "global_norm", grads_gb)):
        base = res["in_process"][f"{key}_s"]
        rows.append([f"{what}, in process ({threads} threads)", fmt_time(base), "", "", "",
                     ""])
        for name, d in res["dask"].items():
            t = d[f"{key}_s"]
            over = t - base
            tasks = d[f"{key}_tasks"]
            rows.append([f"{what}, Dask {name.replace('x', ' worker(s) x ')} thread(s)",
                         fmt_time(t), fmt(100 * over / base, ".0f") + " %",
                         fmt_time(over / tasks) + f" ({tasks} tasks)",
                         fmt_time(over / gb), fmt(d["peak_worker_rss_bytes"] / 1e6, ".0f")])
    print(f"\n## caffe2ops.dask (table {table_gb:.2f} GB, gradients {grads_gb:.2f} GB)\n")
    print(markdown_table(["workload", "time", "Dask overhead", "overhead per task",
                          "overhead per GB", "peak worker MB"], rows))
    return res


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="sizes / 20 (smoke run)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", default=str(HERE / "results_dask.json"))
    args = ap.parse_args()
    out = main(args.quick, args.repeat)
    Path(args.json).write_text(json.dumps(out, indent=1, default=float) + "\n")
    print(f"\nwrote {args.json}")
