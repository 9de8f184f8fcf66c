"""``caffe2ops train``: the main job. Trains a similarity model on real handwritten digits with
the Caffe2 API (ModelHelper, brew, optimizer, regularizer), then shows what gradient clipping buys.

What it does, in order:

1. Loads the data (the 1 797 UCI optdigits images shipped with caffe2ops, or ``--data FILE.npz``
   with arrays ``X`` [N, F] and integer labels ``y`` [N]) and makes a fixed, seeded split
   (20 % held out).
2. Builds the model of :mod:`caffe2ops.tools.digits_model` (random Fourier features → FC →
   ThresholdedRelu → FC embedding; class proxies through Gather with max-norm; cosine similarity
   and CosineEmbeddingCriterion; global-norm gradient clipping; SGD; weight clipping) and trains it,
   printing loss, held-out accuracy (nearest proxy by cosine) and gradient norm per epoch.
3. Trains the same model at an aggressive learning rate twice, without and with gradient
   clipping, and compares them; every step's gradients go through
   ``clipping.clip_by_global_norm(..., nonfinite="raise")``, which names the first non-finite one.
4. Saves the trained model as ``init_net.pb`` + ``predict_net.pb`` (``mobile_exporter.Export``),
   reloads it with ``workspace.Predictor`` and checks that it gives the same embeddings bit for
   bit; with matplotlib (the ``plot`` extra) writes ``training.png``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import types
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from caffe2ops.tools import digits_model

DEFAULT_EPOCHS = 15
DEFAULT_COMPARE_EPOCHS = 10
DEFAULT_LR = 2.0
DEFAULT_AGGRESSIVE_LR = 8.0
TARGET_ACCURACY = 0.95


class TrainDataError(ValueError):
    """``--data`` names a file that is not a usable data set; the message says why."""


def caffe2_api() -> types.SimpleNamespace:
    """caffe2ops' Caffe2-compatible modules, as :mod:`digits_model` expects them."""
    from caffe2ops import brew, core, model_helper, optimizer, regularizer

    return types.SimpleNamespace(core=core, model_helper=model_helper, brew=brew,
                                 optimizer=optimizer, regularizer=regularizer)


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


@dataclass
class Dataset:
    X: np.ndarray  # float32 [N, F], scaled to [0, 1]
    y: np.ndarray  # int32 [N], 0..num_classes-1
    source: str

    @property
    def num_classes(self) -> int:
        return int(self.y.max()) + 1


def load_data(path: str | None = None) -> Dataset:
    """The shipped digits, or ``path`` (an ``.npz`` with ``X`` [N, F] numbers and ``y`` [N]
    integer labels 0..K-1, K ≥ 2). Features are divided by their largest absolute value."""
    if path is None:
        from caffe2ops.datasets import load_digits

        X, y = load_digits()
        return Dataset(X.astype(np.float32) / 16.0, y.astype(np.int32),
                       "UCI optdigits (1 797 8x8 images, shipped with caffe2ops)")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise TrainDataError(
            f"--data {path}: cannot read it as a NumPy .npz file ({exc})"
        ) from None
    with archive:
        missing = [k for k in ("X", "y") if k not in archive.files]
        if missing:
            raise TrainDataError(
                f"--data {path}: missing array(s) {', '.join(missing)} (found: "
                f"{', '.join(archive.files) or 'none'}); expected X [N, F] and y [N]"
            )
        X, y = archive["X"], archive["y"]
    if X.ndim != 2 or X.shape[0] < 2 or X.shape[1] < 1:
        raise TrainDataError(f"--data {path}: X must be 2-D [N, F] with N >= 2; got {X.shape}")
    if X.dtype.kind not in "iuf":
        raise TrainDataError(f"--data {path}: X must hold numbers; got dtype {X.dtype}")
    X = X.astype(np.float32)
    if not np.isfinite(X).all():
        raise TrainDataError(f"--data {path}: X holds NaN or infinite values")
    if y.shape != (X.shape[0],):
        raise TrainDataError(
            f"--data {path}: y must be 1-D with one label per row of X ({X.shape[0]}); got "
            f"shape {y.shape}"
        )
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            raise TrainDataError(f"--data {path}: y holds NaN or infinite labels")
        if not (y == np.round(y)).all():
            raise TrainDataError(f"--data {path}: y must hold integer class labels")
    elif y.dtype.kind not in "iu":
        raise TrainDataError(f"--data {path}: y must hold integer class labels; got {y.dtype}")
    if y.min() < 0:
        raise TrainDataError(f"--data {path}: labels must be 0..K-1; found {int(y.min())}")
    y = y.astype(np.int64)
    if int(y.max()) + 1 < 2 or len(np.unique(y)) < 2:
        raise TrainDataError(f"--data {path}: need at least 2 classes")
    scale = float(np.abs(X).max())
    if scale > 0:
        X = X / np.float32(scale)
    return Dataset(X, y.astype(np.int32), f"{path} ({X.shape[0]} rows, {X.shape[1]} features)")


def split(n: int, seed: int, test_fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """``(train, test)`` index arrays of a seeded permutation of ``range(n)``."""
    perm = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(n * test_fraction)))
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


class PairFeeder:
    """Per step: a batch of examples, each repeated ``1 + negatives`` times — once with its own
    class (pair label 1), then with distinct random other classes (pair label -1)."""

    def __init__(self, X, y, num_classes: int, negatives: int, batch_size: int, seed: int):
        self.X, self.y = X, y
        self.num_classes, self.batch_size = num_classes, batch_size
        self.negatives = min(negatives, num_classes - 1)
        self.rng = np.random.default_rng(seed)

    def epoch(self):
        order = self.rng.permutation(len(self.X))
        for start in range(0, len(order) - self.batch_size + 1, self.batch_size):
            yield self.batch(order[start:start + self.batch_size])

    def batch(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        n, k = len(idx), self.negatives
        labels = self.y[idx]
        # k distinct offsets in 1..K-1 per example: other classes, never the own one.
        offsets = np.argsort(self.rng.random((n, self.num_classes - 1)), axis=1)[:, :k] + 1
        negatives = (labels[:, None] + offsets) % self.num_classes
        return {
            "data": np.ascontiguousarray(np.concatenate([self.X[idx]] * (1 + k))),
            "proxy_index": np.concatenate([labels, negatives.T.reshape(-1)]).astype(np.int32),
            "pair_label": np.concatenate([np.ones(n), -np.ones(n * k)]).astype(np.int32),
        }


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    name: str
    lr: float
    clip_norm: float | None
    step_loss: list[float] = field(default_factory=list)
    step_grad_norm: list[float] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)
    first_nonfinite: tuple[int, str] | None = None
    seconds_in_net: float = 0.0
    examples: int = 0

    @property
    def final_accuracy(self) -> float:
        return self.epochs[-1]["accuracy"] if self.epochs else float("nan")

    @property
    def final_loss(self) -> float:
        return self.epochs[-1]["loss"] if self.epochs else float("nan")

    @property
    def examples_per_second(self) -> float:
        return self.examples / self.seconds_in_net if self.seconds_in_net else float("nan")


def nearest_proxy_accuracy(embedding: np.ndarray, proxies: np.ndarray, y: np.ndarray) -> float:
    """Share of rows whose most cosine-similar proxy is their own class."""
    e = embedding / np.maximum(np.linalg.norm(embedding, axis=1, keepdims=True), 1e-12)
    p = proxies / np.maximum(np.linalg.norm(proxies, axis=1, keepdims=True), 1e-12)
    return float(((e @ p.T).argmax(axis=1) == y).mean())


def _seed_init_net(net_proto, seed: int) -> None:
    from caffe2ops import core
    from caffe2ops.proto import caffe2_pb2

    option = core.DeviceOption(caffe2_pb2.CPU, random_seed=seed)
    net_proto.device_option.CopyFrom(option)
    for op in net_proto.op:
        op.device_option.CopyFrom(option)


class Trainer:
    """One training run in its own workspace: build, initialise, step, evaluate, export."""

    def __init__(self, name: str, cfg: digits_model.ModelConfig, data: Dataset,
                 train_idx: np.ndarray, test_idx: np.ndarray, batch_size: int, seed: int):
        from caffe2ops import workspace

        self.name, self.cfg, self.data = name, cfg, data
        self.test_idx = test_idx
        self.workspace_name = f"train:{name}"
        workspace.SwitchWorkspace(self.workspace_name, True)
        workspace.ResetWorkspace()
        api = caffe2_api()
        self.model, self.loss, self.grad_map = digits_model.build_training(api, cfg)
        self.inference = digits_model.build_inference(api, cfg)
        _seed_init_net(self.model.param_init_net.Proto(), seed)
        self.feeder = PairFeeder(data.X[train_idx], data.y[train_idx], data.num_classes,
                                 cfg.negatives, batch_size, seed + 1)
        self.grad_blobs = {
            str(p): str(g.values if hasattr(g, "values") else g)
            for p, g in self.grad_map.items() if p in set(self.model.GetParams())
        }
        first = self.feeder.batch(np.arange(min(batch_size, len(train_idx))))
        for key, value in first.items():
            workspace.FeedBlob(key, value)
        workspace.RunNetOnce(self.model.param_init_net)
        workspace.CreateNet(self.model.net)
        workspace.FeedBlob("data", data.X[test_idx])
        workspace.CreateNet(self.inference.net)
        self.step = 0

    def run_epochs(self, epochs: int, lr: float, clip_norm: float | None,
                   progress: bool = False) -> RunResult:
        from caffe2ops import clipping, workspace
        from caffe2ops.errors import OperatorError

        workspace.SwitchWorkspace(self.workspace_name)
        result = RunResult(self.name, lr, clip_norm)
        bar = _progress(epochs, self.name, progress)
        for epoch in range(1, epochs + 1):
            losses, norms = [], []
            for feeds in self.feeder.epoch():
                for key, value in feeds.items():
                    workspace.FeedBlob(key, value)
                start = time.perf_counter()
                workspace.RunNet(self.model.net)
                result.seconds_in_net += time.perf_counter() - start
                result.examples += self.feeder.batch_size
                self.step += 1
                loss = float(workspace.FetchBlob("loss").reshape(-1)[0])
                norm = float(workspace.FetchBlob("global_grad_norm").reshape(-1)[0])
                losses.append(loss)
                norms.append(norm)
                if result.first_nonfinite is None:
                    grads = {p: workspace.FetchBlob(g) for p, g in self.grad_blobs.items()}
                    try:
                        clipping.clip_by_global_norm(grads, math.inf, nonfinite="raise")
                    except OperatorError as exc:
                        result.first_nonfinite = (self.step, str(exc))
            result.step_loss += losses
            result.step_grad_norm += norms
            result.epochs.append({
                "epoch": epoch, "loss": float(np.mean(losses)), "accuracy": self.accuracy(),
                "grad_norm_mean": float(np.mean(norms)), "grad_norm_max": float(np.max(norms)),
            })
            if bar is not None:
                bar.set_postfix(loss=f"{result.epochs[-1]['loss']:.4f}",
                                acc=f"{result.epochs[-1]['accuracy']:.3f}")
                bar.update(1)
        if bar is not None:
            bar.close()
        return result

    def embed(self, X: np.ndarray) -> np.ndarray:
        from caffe2ops import workspace

        workspace.SwitchWorkspace(self.workspace_name)
        workspace.FeedBlob("data", np.ascontiguousarray(X, dtype=np.float32))
        workspace.RunNet(self.inference.net)
        return workspace.FetchBlob("embedding")

    def accuracy(self) -> float:
        from caffe2ops import workspace

        embedding = self.embed(self.data.X[self.test_idx])
        return nearest_proxy_accuracy(embedding, workspace.FetchBlob("proxies"),
                                      self.data.y[self.test_idx])

    def export(self, out_dir: str) -> tuple[str, str]:
        """Write ``init_net.pb`` and ``predict_net.pb`` (the embedding net and its weights,
        the proxies included) to ``out_dir``."""
        from caffe2ops import workspace
        from caffe2ops.predictor import mobile_exporter

        workspace.SwitchWorkspace(self.workspace_name)
        params = ["rff_w", "rff_b", *map(str, self.inference.GetParams()), "proxies"]
        init_net, predict_net = mobile_exporter.Export(workspace, self.inference.net, params)
        os.makedirs(out_dir, exist_ok=True)
        paths = os.path.join(out_dir, "init_net.pb"), os.path.join(out_dir, "predict_net.pb")
        for path, net in zip(paths, (init_net, predict_net), strict=True):
            with open(path, "wb") as f:
                f.write(net.SerializeToString())
        return paths


def _progress(total: int, name: str, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=name, unit="epoch", leave=False, file=sys.stderr)


def check_reload(paths: tuple[str, str], X: np.ndarray, expected: np.ndarray) -> bool:
    """Whether ``workspace.Predictor`` on the saved nets gives ``expected`` bit for bit."""
    from caffe2ops import workspace

    with open(paths[0], "rb") as f:
        init_net = f.read()
    with open(paths[1], "rb") as f:
        predict_net = f.read()
    got = workspace.Predictor(init_net, predict_net).run({"data": X})[0]
    return got.dtype == expected.dtype and got.shape == expected.shape and bool(
        (got.view(np.uint8) == expected.view(np.uint8)).all()
    )


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------


def epoch_table(result: RunResult) -> str:
    lines = ["| epoch | loss | held-out accuracy | grad norm (mean) | grad norm (max) |",
             "|---:|---:|---:|---:|---:|"]
    for row in result.epochs:
        lines.append(
            f"| {row['epoch']} | {row['loss']:.4f} | {row['accuracy']:.4f} | "
            f"{row['grad_norm_mean']:.4f} | {row['grad_norm_max']:.4g} |"
        )
    return "\n".join(lines)


def comparison_table(runs: Sequence[RunResult]) -> str:
    lines = ["| run | learning rate | clipping | first-step grad norm | max grad norm | "
             "final loss | held-out accuracy | first non-finite gradient |",
             "|---|---:|---|---:|---:|---:|---:|---|"]
    for r in runs:
        clip = "none" if r.clip_norm is None else f"global L2 norm ≤ {r.clip_norm:g}"
        nonfinite = "none" if r.first_nonfinite is None else (
            f"step {r.first_nonfinite[0]}: {r.first_nonfinite[1].split(' (shape')[0]}"
        )
        lines.append(
            f"| {r.name} | {r.lr:g} | {clip} | {r.step_grad_norm[0]:.4g} | "
            f"{max(r.step_grad_norm):.4g} | {r.final_loss:.4f} | {r.final_accuracy:.4f} | "
            f"{nonfinite} |"
        )
    return "\n".join(lines)


def plot_runs(runs: Sequence[RunResult], path: str) -> bool:
    """Loss and gradient norm per step of each run in one PNG; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, (ax_loss, ax_norm) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    for r in runs:
        clip = "no clipping" if r.clip_norm is None else f"clipping at {r.clip_norm:g}"
        label = f"{r.name}: lr {r.lr:g}, {clip}; held-out accuracy {r.final_accuracy:.3f}"
        steps = np.arange(1, len(r.step_loss) + 1)
        ax_loss.plot(steps, r.step_loss, label=label, linewidth=0.8)
        ax_norm.plot(steps, r.step_grad_norm, label=label, linewidth=0.8)
    ax_loss.set_ylabel("training loss (AveragedLoss)")
    ax_norm.set_ylabel("global gradient L2 norm (before clipping)")
    ax_norm.set_yscale("log")
    ax_norm.set_xlabel("step")
    for r in runs:
        if r.clip_norm is not None:
            ax_norm.axhline(r.clip_norm, color="grey", linestyle="--", linewidth=0.8)
            break
    ax_loss.legend(fontsize=8)
    ax_loss.set_title("caffe2ops train: what gradient clipping buys")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", metavar="FILE.npz", help="train on X [N, F] and y [N] from "
                        "this file instead of the shipped digits")
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=DEFAULT_LR, help="SGD base learning rate")
    parser.add_argument("--clip-norm", type=float, default=1.0,
                        help="global gradient-norm threshold")
    parser.add_argument("--aggressive-lr", type=float, default=DEFAULT_AGGRESSIVE_LR,
                        help="learning rate of the clipping comparison")
    parser.add_argument("--compare-epochs", type=int, default=DEFAULT_COMPARE_EPOCHS,
                        help="epochs of each comparison run (default: %(default)s)")
    parser.add_argument("--no-compare", action="store_true", help="skip the comparison runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--out", metavar="DIR", default="train-output",
                        help="where the model and the plot go (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars, short output")


def run(args: argparse.Namespace, out=None) -> int:
    """The main job; returns the exit status (1 if the digits model misses 95 %)."""
    out = out or sys.stdout
    if args.epochs < 1 or args.batch_size < 1:
        print("caffe2ops train: --epochs and --batch-size must be at least 1", file=sys.stderr)
        return 2
    try:
        data = load_data(args.data)
    except TrainDataError as exc:
        print(f"caffe2ops train: {exc}", file=sys.stderr)
        return 2
    train_idx, test_idx = split(len(data.X), args.seed)
    batch_size = min(args.batch_size, len(train_idx))
    progress = not args.quiet and sys.stderr.isatty()
    cfg = digits_model.ModelConfig(
        num_classes=data.num_classes, num_features=data.X.shape[1], base_lr=args.lr,
        clip_norm=args.clip_norm,
    )
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=out))
    print(f"data: {data.source}; {len(train_idx)} training / {len(test_idx)} held-out rows, "
          f"{data.num_classes} classes; seed {args.seed}", file=out)
    say("model: " + ", ".join(f"{k}={v}" for k, v in cfg.as_dict().items()))

    main_trainer = Trainer("main", cfg, data, train_idx, test_idx, batch_size, args.seed)
    main_run = main_trainer.run_epochs(args.epochs, args.lr, args.clip_norm, progress)
    print(f"\n## Training (lr {args.lr:g}, gradient clipping at global norm {args.clip_norm:g})"
          f"\n\n{epoch_table(main_run)}\n", file=out)
    print(f"held-out nearest-proxy accuracy: {main_run.final_accuracy:.4f}; "
          f"{main_run.examples_per_second:,.0f} training examples/s in RunNet", file=out)

    paths = main_trainer.export(args.out)
    from caffe2ops.net_drawer import write_graph

    print(write_graph(main_trainer.model.net.Proto(), os.path.join(args.out, "train_net.dot"))
          + " (the training net: `dot -Tsvg` draws it)", file=out)
    test_X = data.X[test_idx]
    reloaded = check_reload(paths, test_X, main_trainer.embed(test_X))
    print(f"model saved: {paths[0]}, {paths[1]}; reloaded with workspace.Predictor: "
          f"{'same embeddings bit for bit' if reloaded else 'EMBEDDINGS DIFFER'}", file=out)

    runs = [main_run]
    if not args.no_compare:
        epochs = args.compare_epochs
        for name, clip in (("no clipping", None), ("clipping", args.clip_norm)):
            cfg_cmp = digits_model.ModelConfig(
                num_classes=data.num_classes, num_features=data.X.shape[1],
                base_lr=args.aggressive_lr, clip_norm=clip,
            )
            trainer = Trainer(f"aggressive, {name}", cfg_cmp, data, train_idx,
                              test_idx, batch_size, args.seed)
            runs.append(trainer.run_epochs(epochs, args.aggressive_lr, clip, progress))
        print(f"\n## What clipping buys (lr {args.aggressive_lr:g}, {epochs} epochs each)\n\n"
              f"{comparison_table(runs)}\n", file=out)
    if plot_runs(runs, os.path.join(args.out, "training.png")):
        print(f"plot: {os.path.join(args.out, 'training.png')}", file=out)
    else:
        print("plot: skipped (install the plot extra: pip install 'caffe2ops[plot]')", file=out)
    ok = reloaded and (args.data is not None or main_run.final_accuracy >= TARGET_ACCURACY)
    if args.data is None and main_run.final_accuracy < TARGET_ACCURACY:
        print(f"FAILED: held-out accuracy {main_run.final_accuracy:.4f} is below "
              f"{TARGET_ACCURACY:.2f}", file=out)
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="caffe2ops train", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
