"""Sparse lookups and sparse optimizers: caffe2ops against real Caffe2 1.5.0 and PyTorch.

Data (seed 0): a 1,000,000 x 64 float32 table; 100,000 random row indices (duplicates included)
in 10,000 bags of 10. Cases:

* SparseLengthsSum forward, and forward + gradient (SparseLengthsIndicesInGradientSumGradient,
  the GradientSlice values); PyTorch: ``nn.EmbeddingBag(mode="sum", sparse=True)`` forward, and
  forward + ``backward`` (its sparse gradient).
* SparseAdagrad and RowWiseSparseAdagrad updates of the table at the 100,000 indices; PyTorch:
  ``torch.optim.Adagrad`` and ``torch.optim.SparseAdam`` ``step()`` on the same sparse gradient.

caffe2ops runs its public functional API; Caffe2 runs the same operators in a net, timed inside
its own process (``caffe2.exec``), so no pipe transfer is counted. Same thread count everywhere
(caffe2ops kernels and ``torch.set_num_threads``; Caffe2's CPU operators are single-threaded).
Times are medians of ``--repeat`` calls.

Run standalone: ``python benchmarks/bench_sparse.py [--repeat N] [--no-caffe2]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import fmt_time, markdown_table, max_threads, set_threads  # noqa: E402

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


def bench_ours(data, repeat: int) -> dict[str, float]:
    import caffe2ops as c2
    from caffe2ops.ops._dispatch import load_kernels

    load_kernels()
    table, idx, lengths, dy, grad = data
    lr = np.array([-0.01], np.float32)
    moment = np.zeros_like(table)
    row_moment = np.zeros(ROWS, np.float32)
    out = {}
    out["sls"] = median_time(lambda: c2.sparse_lengths_sum(table, idx, lengths), repeat)
    out["sls+grad"] = median_time(
        lambda: (c2.sparse_lengths_sum(table, idx, lengths),
                 c2.sparse_lengths_sum_gradient(dy, lengths, idx)), repeat)
    out["sparse_adagrad"] = median_time(
        lambda: c2.sparse_adagrad(table, moment, idx, grad, lr), repeat)
    out["rowwise_adagrad"] = median_time(
        lambda: c2.rowwise_sparse_adagrad(table, row_moment, idx, grad, lr), repeat)
    return out


CAFFE2_CODE = """
import time, statistics
import numpy as np
r = np.random.RandomState(0)
ROWS, DIM, BAGS, BAG, repeat = feeds['sizes'].tolist()
workspace.FeedBlob('table', r.standard_normal((ROWS, DIM)).astype(np.float32))
workspace.FeedBlob('idx', r.randint(0, ROWS, size=BAGS * BAG).astype(np.int64))
workspace.FeedBlob('len', np.full(BAGS, BAG, np.int32))
workspace.FeedBlob('dy', r.standard_normal((BAGS, DIM)).astype(np.float32))
workspace.FeedBlob('grad', r.standard_normal((BAGS * BAG, DIM)).astype(np.float32))
workspace.FeedBlob('lr', np.array([-0.01], np.float32))
workspace.FeedBlob('mom', np.zeros((ROWS, DIM), np.float32))
workspace.FeedBlob('rmom', np.zeros(ROWS, np.float32))
nets = {}
def net(name, ops):
    n = core.Net(name)
    for op in ops:
        n.Proto().op.extend([op])
    workspace.CreateNet(n)
    nets[name] = n.Proto().name
C = core.CreateOperator
net('sls', [C('SparseLengthsSum', ['table', 'idx', 'len'], ['y'])])
net('sls+grad', [C('SparseLengthsSum', ['table', 'idx', 'len'], ['y']),
                 C('SparseLengthsIndicesInGradientSumGradient', ['dy', 'len', 'idx'], ['gv'])])
net('sparse_adagrad', [C('SparseAdagrad', ['table', 'mom', 'idx', 'grad', 'lr'],
                         ['table', 'mom'])])
net('rowwise_adagrad', [C('RowWiseSparseAdagrad', ['table', 'rmom', 'idx', 'grad', 'lr'],
                          ['table', 'rmom'])])
result = {}
for name, proto_name in nets.items():
    for _ in range(2):
        workspace.RunNet(proto_name)
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        workspace.RunNet(proto_name)
        samples.append(time.perf_counter() - t0)
    result[name] = statistics.median(samples)
"""


def bench_caffe2(repeat: int) -> dict[str, float] | None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "parity"))
    try:
        from harness import Caffe2Worker

        worker = Caffe2Worker()
    except Exception as exc:  # no .venv-caffe2: say so, report the rest
        print(f"(real Caffe2 not available: {exc})")
        return None
    try:
        sizes = np.array([ROWS, DIM, BAGS, BAG, repeat], np.int64)
        return worker.exec(CAFFE2_CODE, sizes=sizes)
    finally:
        worker.close()


def bench_torch(data, repeat: int) -> dict[str, float]:
    import torch

    table, idx, lengths, dy, grad = data
    bag = torch.nn.EmbeddingBag(ROWS, DIM, mode="sum", sparse=True)
    with torch.no_grad():
        bag.weight.copy_(torch.from_numpy(table))
    tidx = torch.from_numpy(idx)
    offsets = torch.arange(0, BAGS * BAG, BAG, dtype=torch.int64)
    tdy = torch.from_numpy(dy)
    out = {}
    with torch.no_grad():
        out["sls"] = median_time(lambda: bag(tidx, offsets), repeat)

    def fwd_bwd():
        bag.weight.grad = None
        bag(tidx, offsets).backward(tdy)

    out["sls+grad"] = median_time(fwd_bwd, repeat)
    sparse_grad = torch.sparse_coo_tensor(tidx[None, :], torch.from_numpy(grad), (ROWS, DIM))
    param = torch.nn.Parameter(torch.from_numpy(table.copy()))
    for name, opt in (("sparse_adagrad", torch.optim.Adagrad([param], lr=0.01)),
                      ("sparse_adam", torch.optim.SparseAdam([param], lr=0.01))):
        def step(opt=opt):
            param.grad = sparse_grad
            opt.step()

        out[name] = median_time(step, repeat)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--threads", type=int, default=0, help="default: all (NUMBA_NUM_THREADS)")
    ap.add_argument("--no-caffe2", action="store_true")
    args = ap.parse_args()
    threads = args.threads or max_threads()
    set_threads(threads)
    data = make_data()
    ours = bench_ours(data, args.repeat)
    torch_t = bench_torch(data, args.repeat)
    del data
    caffe2_t = None if args.no_caffe2 else bench_caffe2(args.repeat)
    rows = []
    labels = {"sls": "SparseLengthsSum", "sls+grad": "SparseLengthsSum + gradient",
              "sparse_adagrad": "SparseAdagrad", "rowwise_adagrad": "RowWiseSparseAdagrad"}
    for key, label in labels.items():
        c2t = caffe2_t.get(key) if caffe2_t else None
        tt = torch_t.get(key if key != "rowwise_adagrad" else "sparse_adam")
        peer = "" if key != "rowwise_adagrad" else " (SparseAdam)"
        rows.append([label, fmt_time(ours[key]), fmt_time(c2t),
                     f"{c2t / ours[key]:.2f}x" if c2t else "–", fmt_time(tt) + peer,
                     f"{tt / ours[key]:.2f}x"])
    print(f"{ROWS:,} x {DIM} float32 table, {BAGS * BAG:,} lookups in {BAGS:,} bags; "
          f"{threads} thread(s); median of {args.repeat}")
    print(markdown_table(["case", "caffe2ops", "Caffe2 1.5.0", "Caffe2 / ours", "torch",
                          "torch / ours"], rows))


if __name__ == "__main__":
    main()
