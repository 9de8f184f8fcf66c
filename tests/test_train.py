"""The main job (``caffe2ops train``): data checks, a short run that learns, the saved model
reloading bit for bit, and the clipping comparison on a fixed seed."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from caffe2ops import workspace
from caffe2ops.tools import digits_model, train


@pytest.fixture(autouse=True)
def _back_to_default_workspace():
    yield
    workspace.SwitchWorkspace("default")


def _args(tmp_path, **kw):
    parser = argparse.ArgumentParser()
    train.add_arguments(parser)
    args = parser.parse_args(["--quiet", "-o", str(tmp_path)])
    for key, value in kw.items():
        setattr(args, key, value)
    return args


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def test_shipped_digits_and_split_are_fixed():
    data = train.load_data(None)
    assert data.X.shape == (1797, 64) and data.X.dtype == np.float32
    assert data.X.min() == 0.0 and data.X.max() == 1.0 and data.num_classes == 10
    tr, te = train.split(len(data.X), seed=0)
    assert len(te) == 359 and len(tr) == 1438 and not set(tr) & set(te)
    tr2, te2 = train.split(len(data.X), seed=0)
    assert (tr == tr2).all() and (te == te2).all()


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"X": np.zeros((4, 3))}, "missing array(s) y"),
        ({"y": np.zeros(4, np.int64)}, "missing array(s) X"),
        ({"X": np.zeros((4, 3)), "y": np.array([0, 1, np.nan, 1])}, "NaN or infinite labels"),
        ({"X": np.array([["a", "b"]] * 4), "y": np.array([0, 1, 0, 1])}, "X must hold numbers"),
        ({"X": np.zeros((4, 3)), "y": np.array([0.5, 1, 0, 1])}, "integer class labels"),
        ({"X": np.zeros((4, 3)), "y": np.array([0, 1, 0])}, "one label per row of X (4)"),
        ({"X": np.zeros(4), "y": np.array([0, 1, 0, 1])}, "X must be 2-D"),
        ({"X": np.zeros((4, 3)), "y": np.array([0, 0, 0, 0])}, "at least 2 classes"),
        ({"X": np.full((4, 3), np.inf), "y": np.array([0, 1, 0, 1])}, "X holds NaN"),
        ({"X": np.zeros((4, 3)), "y": np.array([0, -1, 0, 1])}, "labels must be 0..K-1"),
    ],
)
def test_malformed_data_files_get_a_clear_error(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(train.TrainDataError, match="--data .*bad.npz") as info:
        train.load_data(str(path))
    assert message in str(info.value)


def test_unreadable_data_file_and_cli_exit_code(tmp_path, capsys):
    path = tmp_path / "not.npz"
    path.write_bytes(b"not a numpy file")
    with pytest.raises(train.TrainDataError, match="cannot read it"):
        train.load_data(str(path))
    assert train.run(_args(tmp_path, data=str(path))) == 2
    assert "cannot read it" in capsys.readouterr().err


def test_pair_feeder_rows():
    data = train.load_data(None)
    feeder = train.PairFeeder(data.X[:100], data.y[:100], 10, 3, 8, seed=1)
    batch = next(feeder.epoch())
    assert batch["data"].shape == (32, 64)
    idx, label = batch["proxy_index"], batch["pair_label"]
    assert (label[:8] == 1).all() and (label[8:] == -1).all()
    own = idx[:8]
    for j in range(1, 4):
        assert (idx[8 * j:8 * (j + 1)] != own).all()  # negatives are other classes
        np.testing.assert_array_equal(batch["data"][8 * j:8 * (j + 1)], batch["data"][:8])
    negatives = idx[8:].reshape(3, 8).T
    assert all(len(set(row)) == 3 for row in negatives)  # distinct per example


# --------------------------------------------------------------------------------------------
# The model uses every seed operator in its role
# --------------------------------------------------------------------------------------------


def test_training_net_uses_each_seed_operator_in_its_role():
    workspace.SwitchWorkspace("test_train_roles", True)
    model, _, grad_map = digits_model.build_training(train.caffe2_api(),
                                                     digits_model.ModelConfig())
    types = [op.type for op in model.net.Proto().op]
    for op_type in ("FC", "Cos", "ThresholdedRelu", "Gather", "CosineSimilarity",
                    "CosineEmbeddingCriterion", "AveragedLoss", "LpNorm", "ClipTensorByScaling",
                    "SparseNormalize", "EnsureClipped", "SparseToDense"):
        assert op_type in types, op_type
    assert type(grad_map["proxies"]).__name__ == "GradientSlice"
    # MaxNorm and weight clipping run after the parameter updates.
    last_update = max(i for i, t in enumerate(types) if t in ("WeightedSum", "ScatterWeightedSum"))
    assert types.index("SparseNormalize") > last_update
    assert types.index("EnsureClipped") > last_update
    # The features below StopGradient get no gradient: their FC's dX is not computed.
    fc_grads = {op.input[0]: list(op.output) for op in model.net.Proto().op
                if op.type == "FCGradient"}
    assert fc_grads["rff_fixed_features"] == ["hidden_w_grad", "hidden_b_grad"]
    assert len(fc_grads["hidden_act"]) == 3


def test_drop_unread_input_gradients_keeps_what_is_read():
    from caffe2ops import core
    from caffe2ops.proto import caffe2_pb2

    net = caffe2_pb2.NetDef()
    net.op.extend([core.CreateOperator("FCGradient", ["x", "w", "dy"], ["dw", "db", "dx"]),
                   core.CreateOperator("FCGradient", ["x2", "w2", "dx"], ["dw2", "db2", "dx2"]),
                   core.CreateOperator("Copy", ["dx"], ["dx_copy"])])
    assert digits_model.drop_unread_input_gradients(net) == ["dx2"]
    assert [list(op.output) for op in net.op][:2] == [["dw", "db", "dx"], ["dw2", "db2"]]


# --------------------------------------------------------------------------------------------
# A short run
# --------------------------------------------------------------------------------------------


def test_short_run_learns_saves_and_reloads(tmp_path, capsys):
    """Through the command line: it learns, and the saved nets give the same embeddings in
    ``workspace.Predictor`` (checked by the job) and in ``caffe2ops run``."""
    from caffe2ops.tools.cli import main

    status = main(["train", "--quiet", "--epochs", "6", "--no-compare", "-o", str(tmp_path)])
    out = capsys.readouterr().out
    assert "same embeddings bit for bit" in out
    init, predict = tmp_path / "init_net.pb", tmp_path / "predict_net.pb"
    accuracy = float(out.split("held-out nearest-proxy accuracy: ")[1].split(";")[0])
    assert accuracy > 0.8, out  # chance is 0.1
    assert status in (0, 1)  # 6 epochs need not reach the full run's 95 %

    data = train.load_data(None)
    X = data.X[:50]
    np.save(tmp_path / "X.npy", X)
    expected = workspace.Predictor(init.read_bytes(), predict.read_bytes()).run({"data": X})[0]
    assert main(["run", str(predict), "--init", str(init), "--feed", f"data={tmp_path / 'X.npy'}",
                 "--fetch", "embedding", "-o", str(tmp_path / "out.npz")]) == 0
    with np.load(tmp_path / "out.npz") as got:
        assert got["embedding"].tobytes() == expected.tobytes()
    assert (tmp_path / "train_net.dot").read_text().count("CosineEmbeddingCriterion") >= 1


def test_trained_model_exports_to_onnx_and_onnxruntime_agrees(tmp_path):
    """The main job's saved model through `caffe2ops export-onnx`: onnx.checker passes and
    onnxruntime gives our runtime's embeddings."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from caffe2ops.tools.cli import main

    assert train.run(_args(tmp_path, epochs=1, no_compare=True)) in (0, 1)
    init, predict = tmp_path / "init_net.pb", tmp_path / "predict_net.pb"
    model = tmp_path / "digits.onnx"
    assert main(["export-onnx", str(init), str(predict), "-o", str(model),
                 "--value-info", "data=float32:50,64"]) == 0
    onnx.checker.check_model(onnx.load(str(model)))
    X = train.load_data(None).X[:50]
    ours = workspace.Predictor(init.read_bytes(), predict.read_bytes()).run({"data": X})[0]
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    (theirs,) = session.run(["embedding"], {"data": X})
    np.testing.assert_allclose(theirs, ours, rtol=1e-4, atol=1e-5)


def test_same_seed_same_numbers(tmp_path):
    data = train.load_data(None)
    tr, te = train.split(len(data.X), 0)
    results = []
    for _ in range(2):
        trainer = train.Trainer("det", digits_model.ModelConfig(), data, tr, te, 64, seed=3)
        results.append(trainer.run_epochs(1, 2.0, 1.0))
    assert results[0].step_loss == results[1].step_loss
    assert results[0].step_grad_norm == results[1].step_grad_norm


def test_clipping_comparison_on_a_fixed_seed(tmp_path):
    """At the aggressive learning rate the unclipped run collapses and the clipped one learns."""
    data = train.load_data(None)
    tr, te = train.split(len(data.X), 0)
    runs = {}
    for name, clip in (("no clipping", None), ("clipping", 1.0)):
        cfg = digits_model.ModelConfig(base_lr=train.DEFAULT_AGGRESSIVE_LR, clip_norm=clip)
        trainer = train.Trainer(name, cfg, data, tr, te, 64, seed=0)
        runs[name] = trainer.run_epochs(8, train.DEFAULT_AGGRESSIVE_LR, clip)
    assert runs["no clipping"].step_grad_norm[0] > 1.0  # the exploding first step
    assert runs["no clipping"].final_accuracy < 0.5
    assert runs["clipping"].final_accuracy > 0.8
    assert runs["no clipping"].first_nonfinite is None  # cosine losses stay finite


def test_nonfinite_gradient_is_named_with_its_step(tmp_path):
    data = train.load_data(None)
    data.X[:] = np.nan
    tr, te = train.split(len(data.X), 0)
    trainer = train.Trainer("nan", digits_model.ModelConfig(), data, tr, te, 64, seed=0)
    result = trainer.run_epochs(1, 2.0, 1.0)
    step, message = result.first_nonfinite
    assert step == 1 and "holds NaN" in message and "_w" in message
