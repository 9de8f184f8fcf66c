"""The main job's training step: examples per second, caffe2ops vs real Caffe2 vs PyTorch eager.

The same model (``caffe2ops.tools.digits_model``: random Fourier features, FC, ThresholdedRelu,
FC, class proxies through Gather with max-norm, CosineSimilarity, CosineEmbeddingCriterion,
AveragedLoss, global-norm clipping, SGD with a step learning rate, weight clipping) and the same
batches (64 digits, each with 3 negative classes: 256 rows a step):

* caffe2ops: the training NetDef in a created net (``workspace.RunNet``);
* real Caffe2 1.5.0: the SAME NetDef bytes, through the parity harness's worker, timed inside the
  Caffe2 process (skipped with a note when ``.venv-caffe2`` is missing: ``make parity`` creates it);
* PyTorch eager: the same architecture and update written with torch ops and autograd
  (``torch.nn.utils.clip_grad_norm_``, ``torch.optim.SGD``, a row renorm of the touched proxies,
  ``clamp_`` of the weights).

Prints examples per second (original examples: 64 a step), the ratios, and where caffe2ops' time
goes (``workspace.BenchmarkNet`` per-operator times). Same thread count everywhere.

Run standalone: ``python benchmarks/bench_train.py [--steps N] [--threads T]``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BATCH = 64


def make_batches(steps: int, seed: int = 0):
    from caffe2ops.tools import train

    data = train.load_data(None)
    train_idx, _ = train.split(len(data.X), seed)
    feeder = train.PairFeeder(data.X[train_idx], data.y[train_idx], data.num_classes, 3, BATCH,
                              seed + 1)
    batches = []
    while len(batches) < steps:
        batches += list(feeder.epoch())
    return batches[:steps]


def build_caffe2ops(seed: int = 0):
    from caffe2ops import workspace
    from caffe2ops.tools import digits_model, train

    workspace.SwitchWorkspace("bench_train", True)
    workspace.ResetWorkspace()
    cfg = digits_model.ModelConfig()
    model, _, _ = digits_model.build_training(train.caffe2_api(), cfg)
    train._seed_init_net(model.param_init_net.Proto(), seed)
    return model, cfg


def caffe2ops_stepper(model, batches, first):
    """Set the net up (5 untimed warm-up steps); returns ``run(block) -> seconds``."""
    from caffe2ops import workspace

    for key, value in first.items():
        workspace.FeedBlob(key, value)
    workspace.RunNetOnce(model.param_init_net)
    workspace.CreateNet(model.net, overwrite=True)

    def run(block) -> float:
        start = time.perf_counter()
        for feeds in block:
            for key, value in feeds.items():
                workspace.FeedBlob(key, value)
            workspace.RunNet(model.net)
        return time.perf_counter() - start

    run(batches[:5])  # warm-up: kernels loaded, buffers allocated
    return run


CAFFE2_LOOP = """
import time
init = caffe2_pb2.NetDef.FromString(feeds['init'])
net = caffe2_pb2.NetDef.FromString(feeds['net'])
batches = feeds['batches']
for k, v in batches[0].items():
    workspace.FeedBlob(k, v)
workspace.RunNetOnce(init)
workspace.CreateNet(net)
for b in batches[:5]:
    for k, v in b.items():
        workspace.FeedBlob(k, v)
    workspace.RunNet(net.name)
start = time.perf_counter()
for b in batches:
    for k, v in b.items():
        workspace.FeedBlob(k, v)
    workspace.RunNet(net.name)
result = {'seconds': time.perf_counter() - start}
"""


def caffe2_stepper(model, threads: int):
    """``(run(block) -> seconds, close)`` for real Caffe2 (each block starts from the init net,
    with 5 untimed warm-up steps), or None without ``.venv-caffe2``."""
    sys.path.insert(0, str(ROOT / "tests" / "parity"))
    try:
        from harness import Caffe2Worker
    except ImportError:
        return None
    try:
        worker = Caffe2Worker()
    except FileNotFoundError as exc:
        print(f"real Caffe2: skipped ({exc})")
        return None
    init = model.param_init_net.Proto().SerializeToString()
    net = model.net.Proto().SerializeToString()

    def run(block) -> float:
        worker.exec(f"import torch; torch.set_num_threads({threads})")
        return float(worker.exec(CAFFE2_LOOP, init=init, net=net, batches=block)["seconds"])

    return run, worker.close


def torch_stepper(cfg, batches, threads: int, seed: int = 0):
    """The same model in PyTorch eager (5 untimed warm-up steps); returns ``run(block)``."""
    import torch

    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(seed)
    D, H, E, K = cfg.rff_dim, cfg.hidden, cfg.embed, cfg.num_classes
    rff_w = torch.randn(D, cfg.num_features, generator=g) * cfg.rff_scale
    rff_b = torch.rand(D, generator=g) * 2 * math.pi
    w1 = (torch.rand(H, D, generator=g) * 2 - 1).mul_(math.sqrt(3 / D)).requires_grad_()
    b1 = torch.zeros(H, requires_grad=True)
    w2 = (torch.randn(E, H, generator=g) * cfg.embed_init_std).requires_grad_()
    b2 = torch.zeros(E, requires_grad=True)
    proxies = (torch.randn(K, E, generator=g) * cfg.proxy_init_std).requires_grad_()
    params = [w1, b1, w2, b2, proxies]
    opt = torch.optim.SGD(params, lr=cfg.base_lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.lr_stepsize, gamma=cfg.lr_gamma)
    scale = math.sqrt(2.0 / D)

    def step(b):
        x = torch.from_numpy(b["data"])
        idx = torch.from_numpy(b["proxy_index"]).long()
        label = torch.from_numpy(b["pair_label"])
        feats = torch.cos(torch.nn.functional.linear(x, rff_w, rff_b)) * scale
        h = torch.nn.functional.linear(feats, w1, b1)
        h = torch.where(h > cfg.alpha, h, torch.zeros((), dtype=h.dtype))
        e = torch.nn.functional.linear(h, w2, b2)
        p = proxies[idx]
        s = (e * p).sum(1) / torch.sqrt((e * e).sum(1).clamp_min(1e-12)
                                        * (p * p).sum(1).clamp_min(1e-12))
        loss = torch.where(label == 1, 1 - s, (s - cfg.margin).clamp_min(0)).mean()
        opt.zero_grad(set_to_none=False)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.clip_norm)
        opt.step()
        sched.step()
        with torch.no_grad():
            rows = torch.unique(idx)
            norms = proxies[rows].norm(dim=1, keepdim=True)
            proxies[rows] *= torch.where(norms > cfg.max_norm, cfg.max_norm / (norms + 1e-12),
                                         torch.ones_like(norms))
            w1.clamp_(-cfg.weight_clip, cfg.weight_clip)

    def run(block) -> float:
        start = time.perf_counter()
        for b in block:
            step(b)
        return time.perf_counter() - start

    run(batches[:5])
    return run


def per_operator_times(model) -> list[tuple[str, float]]:
    from caffe2ops import workspace

    times = workspace.BenchmarkNet(model.net.Proto().name, 5, 50, True)
    ops = [op.type for op in model.net.Proto().op]
    totals: dict[str, float] = {}
    for op_type, ms in zip(ops, times[1:], strict=False):
        totals[op_type] = totals.get(op_type, 0.0) + float(ms)
    return sorted(totals.items(), key=lambda kv: -kv[1])


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=240)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    from caffe2ops import kernels

    threads = args.threads or kernels.get_max_threads()
    kernels.set_num_threads(threads)
    kernels.load()
    batches = make_batches(args.steps)
    model, cfg = build_caffe2ops()
    # The contenders take turns in rounds (a block of steps each), so that a slow spell of a
    # noisy machine hits all of them alike; each reports the median time per step over rounds.
    # A pause before each block lets the previous contender's thread pools stop spinning
    # (OpenBLAS workers busy-wait for about 0.1 s after a GEMM and would slow the next one).
    runners = {"ours": caffe2ops_stepper(model, batches, batches[0])}
    caffe2 = caffe2_stepper(model, threads)
    runners["torch"] = torch_stepper(cfg, batches, threads)
    if caffe2 is not None:
        runners["caffe2"] = caffe2[0]
    size = max(1, len(batches) // args.rounds)
    per_step: dict[str, list[float]] = {name: [] for name in runners}
    try:
        for r in range(args.rounds):
            block = batches[r * size:(r + 1) * size]
            for name, run in runners.items():
                time.sleep(0.3)  # the last contender's spinning BLAS/OpenMP threads go idle
                per_step[name].append(run(block) / len(block))
    finally:
        if caffe2 is not None:
            caffe2[1]()
    med = {name: statistics.median(v) for name, v in per_step.items()}
    ours = med["ours"]
    theirs = med.get("caffe2")
    torch_s = med["torch"]
    rows = [("caffe2ops (RunNet)", ours), ("real Caffe2 1.5.0, same NetDef", theirs),
            ("PyTorch eager, same model", torch_s)]
    print(f"\n### Training step of the main job ({args.rounds} rounds of {size} steps of {BATCH} "
          f"examples, contenders in turn; median per step; {threads} threads)\n")
    print("| contender | examples/s | ms/step | caffe2ops time / contender's |")
    print("|---|---:|---:|---:|")
    for name, sec in rows:
        if sec is None:
            print(f"| {name} | skipped | | |")
            continue
        print(f"| {name} | {BATCH / sec:,.0f} | {1e3 * sec:.3f} | {ours / sec:.2f} |")
    print("\nWhere caffe2ops' time goes (workspace.BenchmarkNet, ms per step, summed by type):\n")
    print("| operator type | ms |")
    print("|---|---:|")
    for op_type, ms in per_operator_times(model)[:15]:
        print(f"| {op_type} | {ms:.4f} |")
    return {"rounds": args.rounds, "steps_per_round": size, "threads": threads,
            "caffe2ops_s_per_step": ours, "caffe2_s_per_step": theirs,
            "torch_s_per_step": torch_s, "per_round": per_step}


if __name__ == "__main__":
    main()
