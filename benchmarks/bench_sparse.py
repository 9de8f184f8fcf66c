"""Sparse lookups and sparse optimizers: caffe2ops against real Caffe2 1.5.0 and PyTorch.

Data (seed 0): a 1,000,000 x 64 float32 table; 100,000 random row indices (duplicates included)
in 10,000 bags of 10. Cases:

* SparseLengthsSum forward, and forward + gradient (SparseLengthsIndicesInGradientSumGradient,
  the GradientSlice values); PyTorch: ``nn.EmbeddingBag(mode="sum", sparse=True)`` forward, and
  forward + ``backward`` (its sparse gradient).
* SparseAdagrad and RowWiseSparseAdagrad updates of the table at the 100,000 indices; PyTorch:
  ``torch.optim.Adagrad`` and ``torch.optim.SparseAdam`` ``step()`` on the same sparse gradient.

Both runtimes run the same NetDefs (``workspace.RunNet``; output blobs are reused between runs
by both); Caffe2 is timed inside its own process (``caffe2.exec``), so no pipe transfer counts.
Same thread count everywhere (caffe2ops kernels and ``torch.set_num_threads``; Caffe2's CPU
operators are single-threaded).
caffe2ops and Caffe2 are timed in interleaved blocks (``--rounds`` x ``--block`` calls each);
PyTorch then runs the same rounds in a process of its own (see :func:`torch_in_subprocess`);
times are medians.

Run standalone: ``python benchmarks/bench_sparse.py [--rounds N] [--block N] [--threads N]
[--no-caffe2]``.
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
from common import CAFFE2_TIME_NET, fmt_time, markdown_table, max_threads, set_threads  # noqa: E402

ROWS, DIM, BAGS, BAG = 1_000_000, 64, 10_000, 10


def median_time(fn, repeat: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def make_data(seed: int = 0):
    r = np.random.RandomState(seed)
    table = r.standard_normal((ROWS, DIM)).astype(np.float32)
    idx = r.randint(0, ROWS, size=BAGS * BAG).astype(np.int64)
    lengths = np.full(BAGS, BAG, np.int32)
    dy = r.standard_normal((BAGS, DIM)).astype(np.float32)
    grad = r.standard_normal((BAGS * BAG, DIM)).astype(np.float32)
    return table, idx, lengths, dy, grad


def ours_cases(data) -> dict:
    """The NetDefs Caffe2 runs, through our workspace (``workspace.RunNet``)."""
    from caffe2ops import core, kernels, workspace

    kernels.load()
    table, idx, lengths, dy, grad = data
    blobs = {"table": table, "idx": idx, "len": lengths, "dy": dy, "grad": grad,
             "lr": np.array([-0.01], np.float32), "mom": np.zeros_like(table),
             "rmom": np.zeros(ROWS, np.float32)}
    for name, value in blobs.items():
        workspace.FeedBlob(name, value)
    cases = {}
    for case, ops in CASES.items():
        net = core.Net(f"bench_{case}")
        for op_type, ins, outs in ops:
            net.Proto().op.append(core.CreateOperator(op_type, ins, outs))
        workspace.CreateNet(net)
        name = net.Name()
        cases[case] = lambda name=name: workspace.RunNet(name)
    return cases


# case -> the operators of its net (type, inputs, outputs), for both runtimes
CASES = {
    "sls": [("SparseLengthsSum", ["table", "idx", "len"], ["y"])],
    "sls+grad": [("SparseLengthsSum", ["table", "idx", "len"], ["y"]),
                 ("SparseLengthsIndicesInGradientSumGradient", ["dy", "len", "idx"], ["gv"])],
    "sparse_adagrad": [("SparseAdagrad", ["table", "mom", "idx", "grad", "lr"],
                        ["table", "mom"])],
    "rowwise_adagrad": [("RowWiseSparseAdagrad", ["table", "rmom", "idx", "grad", "lr"],
                         ["table", "rmom"])],
}


# Inside the Caffe2 process: the data are made once and kept in `builtins` (each exec starts
# from a reset workspace); every exec feeds them, creates one net and times `block` runs.
CAFFE2_SETUP = """
import builtins
import numpy as np
r = np.random.RandomState(0)
ROWS, DIM, BAGS, BAG = feeds['sizes'].tolist()
builtins._sparse_bench = {
    'table': r.standard_normal((ROWS, DIM)).astype(np.float32),
    'idx': r.randint(0, ROWS, size=BAGS * BAG).astype(np.int64),
    'len': np.full(BAGS, BAG, np.int32),
    'dy': r.standard_normal((BAGS, DIM)).astype(np.float32),
    'grad': r.standard_normal((BAGS * BAG, DIM)).astype(np.float32),
    'lr': np.array([-0.01], np.float32),
    'mom': np.zeros((ROWS, DIM), np.float32),
    'rmom': np.zeros(ROWS, np.float32),
}
result = {}
"""

CAFFE2_RUN = """
import builtins, time
for k, v in builtins._sparse_bench.items():
    workspace.FeedBlob(k, v)
import json
ops = json.loads(feeds['ops'].tobytes().decode())
net = core.Net('bench_' + feeds['case'].tobytes().decode())
net.Proto().op.extend([core.CreateOperator(t, i, o) for t, i, o in ops])
""" + CAFFE2_TIME_NET


def caffe2_worker():
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "parity"))
    try:
        from harness import Caffe2Worker

        worker = Caffe2Worker()
    except Exception as exc:  # no .venv-caffe2: say so, report the rest
        print(f"(real Caffe2 not available: {exc})")
        return None
    worker.exec(CAFFE2_SETUP, sizes=np.array([ROWS, DIM, BAGS, BAG], np.int64))
    return worker


def torch_cases(data) -> dict:
    import torch

    table, idx, lengths, dy, grad = data
    bag = torch.nn.EmbeddingBag(ROWS, DIM, mode="sum", sparse=True)
    with torch.no_grad():
        bag.weight.copy_(torch.from_numpy(table))
    tidx = torch.from_numpy(idx)
    offsets = torch.arange(0, BAGS * BAG, BAG, dtype=torch.int64)
    tdy = torch.from_numpy(dy)

    def fwd():
        with torch.no_grad():
            return bag(tidx, offsets)

    def fwd_bwd():
        bag.weight.grad = None
        bag(tidx, offsets).backward(tdy)

    with torch.sparse.check_sparse_tensor_invariants(enable=False):
        sparse_grad = torch.sparse_coo_tensor(tidx[None, :], torch.from_numpy(grad),
                                              (ROWS, DIM))
    param = torch.nn.Parameter(torch.from_numpy(table.copy()))
    cases = {"sls": fwd, "sls+grad": fwd_bwd}
    for name, opt in (("sparse_adagrad", torch.optim.Adagrad([param], lr=0.01)),
                      ("rowwise_adagrad", torch.optim.SparseAdam([param], lr=0.01))):
        def step(opt=opt):
            param.grad = sparse_grad
            opt.step()

        cases[name] = step
    return cases


#: Seconds of idling before each block: PyTorch's OpenMP workers spin-wait after a parallel
#: region (about 0.2 s by default) and would otherwise steal the cores from whoever runs next.
IDLE = 0.3


def interleaved(contenders: dict, worker, rounds: int, block: int) -> dict:
    """Per case: ``rounds`` rounds of a block of ``block`` timed calls of each contender in
    turn (then Caffe2 when ``worker``), so a slow spell of a shared machine hits all alike."""
    samples: dict = {}
    for case in CASES:
        got: dict[str, list[float]] = {"caffe2": []}
        for who, cases in contenders.items():
            got[who] = []
            cases[case]()  # warm-up (compilation, first-touch pages)
        for _ in range(rounds):
            for who, cases in contenders.items():
                time.sleep(IDLE)
                for _ in range(block):
                    t0 = time.perf_counter()
                    cases[case]()
                    got[who].append(time.perf_counter() - t0)
            if worker is not None:
                time.sleep(IDLE)
                ops = np.frombuffer(json.dumps(CASES[case]).encode(), np.uint8)
                res = worker.exec(CAFFE2_RUN, case=np.frombuffer(case.encode(), np.uint8),
                                  ops=ops, block=np.array([block]))
                got["caffe2"] += list(res["times"])
        samples[case] = {k: (statistics.median(v) if v else None) for k, v in got.items()}
    return samples


def torch_in_subprocess(threads: int, rounds: int, block: int) -> dict:
    """PyTorch in a process of its own: its OpenMP runtime and allocations, in the same process
    as our kernels, slowed them by up to 2x in this benchmark (measured), which would flatter
    PyTorch."""
    import subprocess

    out = subprocess.run(
        [sys.executable, __file__, "--torch-only", "--threads", str(threads),
         "--rounds", str(rounds), "--block", str(block)],
        check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--block", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="default: all (NUMBA_NUM_THREADS)")
    ap.add_argument("--no-caffe2", action="store_true")
    ap.add_argument("--torch-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    threads = args.threads or max_threads()
    data = make_data()
    if args.torch_only:
        set_threads(threads)
        res = interleaved({"torch": torch_cases(data)}, None, args.rounds, args.block)
        print(json.dumps({case: r["torch"] for case, r in res.items()}))
        return
    from caffe2ops import kernels

    kernels.set_num_threads(threads)  # (common.set_threads would import torch here)
    worker = None if args.no_caffe2 else caffe2_worker()
    try:
        res = interleaved({"ours": ours_cases(data)}, worker, args.rounds, args.block)
    finally:
        if worker is not None:
            worker.close()
    del data
    for case, t in torch_in_subprocess(threads, args.rounds, args.block).items():
        res[case]["torch"] = t
    labels = {"sls": ("SparseLengthsSum", "EmbeddingBag fwd"),
              "sls+grad": ("SparseLengthsSum + gradient", "EmbeddingBag fwd+bwd"),
              "sparse_adagrad": ("SparseAdagrad", "optim.Adagrad (sparse)"),
              "rowwise_adagrad": ("RowWiseSparseAdagrad", "optim.SparseAdam")}
    rows = []
    for key, (label, peer) in labels.items():
        r = res[key]
        ours, c2t, tt = r["ours"], r["caffe2"], r["torch"]
        rows.append([label, fmt_time(ours), fmt_time(c2t),
                     f"{c2t / ours:.2f}x" if c2t else "–", f"{fmt_time(tt)} ({peer})",
                     f"{tt / ours:.2f}x"])
    print(f"{ROWS:,} x {DIM} float32 table, {BAGS * BAG:,} lookups in {BAGS:,} bags; "
          f"{threads} thread(s); median of {args.rounds} x {args.block} interleaved calls")
    print(markdown_table(["case", "caffe2ops", "Caffe2 1.5.0", "Caffe2 / ours", "torch",
                          "torch / ours"], rows))


if __name__ == "__main__":
    main()
