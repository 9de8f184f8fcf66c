"""The seed operators inside a created net: caffe2ops against real Caffe2 1.5.0, same NetDef.

Each case is one operator in a net made once (``workspace.CreateNet``) and run with
``workspace.RunNet``, as a Caffe2 training loop runs it; both sides get the same seeded data.
Caffe2 runs in its own Python 3.8 process (``tests/parity/harness.py``; ``.venv-caffe2``, made by
``make .venv-caffe2/.installed``) and times its runs there, so no pipe transfer counts. Same
thread count on both sides (Caffe2's CPU element-wise operators are single-threaded). The two
sides run in interleaved rounds so that a slow spell of a shared machine hits both alike.
Run: ``python benchmarks/bench_caffe2.py [--rounds R] [--block B] [--threads T]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CAFFE2_TIME_NET, fmt_time, markdown_table, max_threads  # noqa: E402

N = 10_000_000
ROWS, DIM = 156_250, 64  # CosineSimilarity: 1e7 elements per input
TABLE, INDICES = 1_000_000, 100_000  # SparseNormalize: a 1M x 64 table, 100k indices

#: case -> (operator type, inputs, outputs, arguments)
CASES = {
    "Clip": ("Clip", ["x"], ["y"], {"min": -0.5, "max": 0.5}),
    "ClipGradient": ("ClipGradient", ["yc", "dy"], ["dx"], {"min": -0.5, "max": 0.5}),
    "ThresholdedRelu": ("ThresholdedRelu", ["x"], ["y"], {"alpha": 0.25}),
    "ThresholdedReluGradient": ("ThresholdedReluGradient", ["yt", "dy"], ["dx"], {}),
    "Cos": ("Cos", ["x"], ["y"], {}),
    "CosGradient": ("CosGradient", ["x", "dy"], ["dx"], {}),
    "CosineEmbeddingCriterion": ("CosineEmbeddingCriterion", ["s", "label"], ["loss"],
                                 {"margin": 0.1}),
    "CosineEmbeddingCriterionGradient": ("CosineEmbeddingCriterionGradient",
                                         ["s", "label", "dy"], ["ds"], {"margin": 0.1}),
    "CosineSimilarity": ("CosineSimilarity", ["a", "b"], ["z"], {}),
    "CosineSimilarityGradient": ("CosineSimilarityGradient", ["a", "b", "dz"], ["da", "db"], {}),
    "SparseNormalize": ("SparseNormalize", ["table", "idx", "tgrad"], ["table"],
                        {"use_max_norm": True, "norm": 1.0}),
}

# The data, made from one seed on both sides (the Caffe2 process runs this code too).
MAKE_DATA = """
import numpy as np
def make_data(n, rows, dim, table, indices):
    r = np.random.RandomState(0)
    x = (r.standard_normal(n) * 2).astype(np.float32)
    s = r.uniform(-1, 1, n).astype(np.float32)
    return {
        'x': x, 'dy': r.standard_normal(n).astype(np.float32),
        'yc': np.clip(x, -0.5, 0.5), 'yt': np.where(x > 0.25, x, 0).astype(np.float32),
        's': s, 'label': np.where(r.uniform(size=n) < 0.5, 1, -1).astype(np.int32),
        'a': r.standard_normal((rows, dim)).astype(np.float32),
        'b': r.standard_normal((rows, dim)).astype(np.float32),
        'dz': r.standard_normal(rows).astype(np.float32),
        'table': (r.standard_normal((table, dim)) * 0.3).astype(np.float32),
        'idx': r.randint(0, table, size=indices).astype(np.int64),
        'tgrad': np.zeros((indices, dim), np.float32),
    }
"""

CAFFE2_SETUP = MAKE_DATA + """
import builtins
builtins._op_bench = make_data(*feeds['sizes'].tolist())
result = {}
"""

CAFFE2_RUN = """
import builtins, json, time
spec = json.loads(feeds['spec'].tobytes().decode())
op_type, ins, outs, args = spec
for k in set(ins) | set(outs):
    if k in builtins._op_bench:
        workspace.FeedBlob(k, builtins._op_bench[k])
net = core.Net('bench_' + op_type)
net.Proto().op.extend([core.CreateOperator(op_type, ins, outs, **args)])
""" + CAFFE2_TIME_NET

#: Seconds of idling before each block (as in bench_sparse.py).
IDLE = 0.3


def _ours():
    """A function per case that runs its created net in our workspace."""
    from caffe2ops import core, kernels, workspace

    kernels.load()
    scope: dict = {}
    exec(MAKE_DATA, scope)
    data = scope["make_data"](N, ROWS, DIM, TABLE, INDICES)
    runners = {}
    for case, (op_type, ins, outs, args) in CASES.items():
        def run(op_type=op_type, ins=ins, outs=outs, args=args):
            for k in set(ins) | set(outs):
                if k in data:
                    workspace.FeedBlob(k, data[k])
            net = core.Net("bench_" + op_type)
            net.Proto().op.extend([core.CreateOperator(op_type, ins, outs, **args)])
            workspace.CreateNet(net, True)
            workspace.RunNet(net.Proto().name)
            return lambda: workspace.RunNet(net.Proto().name)

        runners[case] = run
    return runners


def _caffe2_worker():
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "parity"))
    try:
        from harness import Caffe2Worker

        worker = Caffe2Worker()
    except Exception as exc:  # no .venv-caffe2: say so
        print(f"(real Caffe2 not available: {exc}; make .venv-caffe2/.installed builds it)")
        return None
    worker.exec(CAFFE2_SETUP, sizes=np.array([N, ROWS, DIM, TABLE, INDICES], np.int64))
    return worker


def measure(rounds: int, block: int, threads: int) -> dict | None:
    """Per case: median seconds per run, ours and Caffe2's (None without ``.venv-caffe2``)."""
    from caffe2ops import kernels

    kernels.set_num_threads(threads)
    worker = _caffe2_worker()
    if worker is None:
        return None
    results = {}
    try:
        for case, make in _ours().items():
            spec = np.frombuffer(json.dumps(CASES[case]).encode(), np.uint8)
            ours_run = make()
            got: dict[str, list[float]] = {"ours": [], "caffe2": []}
            for _ in range(rounds):
                time.sleep(IDLE)
                for _ in range(block):
                    t0 = time.perf_counter()
                    ours_run()
                    got["ours"].append(time.perf_counter() - t0)
                time.sleep(IDLE)
                res = worker.exec(CAFFE2_RUN, spec=spec, block=np.array([block]))
                got["caffe2"] += list(res["times"])
            results[case] = {k: statistics.median(v) for k, v in got.items()}
    finally:
        worker.close()
    return results


def table(results: dict, threads: int) -> str:
    rows = [[case, fmt_time(r["ours"]), fmt_time(r["caffe2"]), f"{r['ours'] / r['caffe2']:.2f}"]
            for case, r in results.items()]
    return (f"Inside a created net, float32, 1e7 elements ({ROWS} x {DIM} for CosineSimilarity, "
            f"{INDICES} indices into {TABLE} x {DIM} for SparseNormalize), {threads} thread(s):\n\n"
            + markdown_table(["operator", "caffe2ops", "real Caffe2 1.5.0", "ours / Caffe2"],
                             rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--block", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="default: all (NUMBA_NUM_THREADS)")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    threads = args.threads or max_threads()
    results = measure(args.rounds, args.block, threads)
    if results is None:
        return
    print(table(results, threads))
    slower = [c for c, r in results.items() if r["ours"] >= r["caffe2"]]
    print("\nevery operator faster than real Caffe2" if not slower
          else f"\nnot faster than real Caffe2: {', '.join(slower)}")
    if args.json:
        Path(args.json).write_text(json.dumps({"threads": threads, "results": results}, indent=1))


if __name__ == "__main__":
    main()
