"""optimizer: the operators and blob names each builder emits, and what training computes
(checked against NumPy formulas of Caffe2's updates)."""

from __future__ import annotations

import numpy as np
import pytest
from training_support import arg_value, op_types, requires_ops

import caffe2ops as c2
from caffe2ops import brew, core, model_helper, optimizer, workspace
from caffe2ops.modeling.initializers import Initializer
from caffe2ops.proto import caffe2_pb2

DENSE_OPS = ("FC", "XavierFill", "SquaredL2Distance", "AveragedLoss", "ConstantFill")
COUNTER_OPS = ("CreateMutex", "AtomicIter", "LearningRate")
needs_dense = requires_ops(*DENSE_OPS, *COUNTER_OPS)


@pytest.fixture(autouse=True)
def fresh_counters(fresh_workspace):
    """A fresh workspace (conftest's), and optimizer instance names counted from 0 again."""
    optimizer._optimizer_instance_count.clear()


def regression_model(name: str, dim_in: int = 3, dim_out: int = 2):
    model = model_helper.ModelHelper(name=name)
    y = brew.fc(model, "X", "y", dim_in=dim_in, dim_out=dim_out)
    dist = model.net.SquaredL2Distance([y, "T"], "dist")
    model.AddGradientOperators([model.net.AveragedLoss(dist, "loss")])
    return model


def regression_data(seed: int = 0, n: int = 4, dim_in: int = 3, dim_out: int = 2):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, dim_in)).astype(np.float32),
            rng.standard_normal((n, dim_out)).astype(np.float32),
            rng.standard_normal((dim_out, dim_in)).astype(np.float32),
            (rng.standard_normal(dim_out) * 0.1).astype(np.float32))


def start(model, x, t, w, b):
    workspace.FeedBlob("X", x)
    workspace.FeedBlob("T", t)
    workspace.RunNetOnce(model.param_init_net)
    workspace.FeedBlob("y_w", w)
    workspace.FeedBlob("y_b", b)
    workspace.CreateNet(model.net)


def regression_grads(x, t, w, b):
    """d/dw, d/db of mean_i ½‖x_i·wᵀ + b − t_i‖²."""
    g = (x @ w.T + b - t) / len(x)
    return g.T @ x, g.sum(axis=0)


@needs_dense
def test_sgd_emits_the_shared_counter_and_caffe2s_names():
    model = regression_model("opt_sgd_names")
    optimizer.build_sgd(model, base_learning_rate=0.1, policy="step", stepsize=10, gamma=0.5)
    init_ops = model.param_init_net.Proto().op
    counter, mutex = init_ops[2], init_ops[3]
    assert (counter.type, list(counter.output)) == ("ConstantFill", ["optimizer_iteration"])
    assert arg_value(counter, "dtype") == caffe2_pb2.TensorProto.INT64
    assert (mutex.type, list(mutex.output)) == ("CreateMutex", ["iteration_mutex"])
    cpu_override = core.DeviceOption(caffe2_pb2.CPU, extra_info=["device_type_override:cpu"])
    assert counter.device_option == cpu_override and mutex.device_option == cpu_override
    assert [list(op.output) for op in init_ops[4:]] == [["ONE_0_0"], ["ONE_0_0"]]
    tail = model.net.Proto().op[-4:]
    assert [op.type for op in tail] == ["AtomicIter", "LearningRate", "WeightedSum", "WeightedSum"]
    assert list(tail[0].input) == ["iteration_mutex", "optimizer_iteration"]
    lr = tail[1]
    assert list(lr.output) == ["SgdOptimizer_0_lr_cpu"]
    assert arg_value(lr, "base_lr") == pytest.approx(-0.1)
    assert (arg_value(lr, "policy"), arg_value(lr, "stepsize")) == ("step", 10)
    assert [list(op.input) for op in tail[2:]] == [
        ["y_w", "ONE_0_0", "y_w_grad", "SgdOptimizer_0_lr_cpu"],
        ["y_b", "ONE_0_0", "y_b_grad", "SgdOptimizer_0_lr_cpu"]]
    # A second optimizer of the class gets the next number; the counter is built once.
    second = optimizer.SgdOptimizer(0.1)
    assert second.get_cpu_blob_name("lr") == "SgdOptimizer_1_lr_cpu"
    assert optimizer.build_unique_mutex_iter(model.param_init_net, model.net) == (
        "optimizer_iteration")
    assert op_types(model.net).count("AtomicIter") == 1


def test_zero_learning_rate_adds_nothing_and_negative_is_refused():
    model = model_helper.ModelHelper(name="opt_refuse")
    w = model.create_param("w", shape=[2], initializer=Initializer("ConstantFill", value=1.0))
    model.AddGradientOperators([model.net.LpNorm([model.net.Cos([w], "c")], "loss")])
    before = len(model.net.Proto().op)
    optimizer.build_sgd(model, base_learning_rate=0.0)
    optimizer.build_adagrad(model, base_learning_rate=0.0)
    assert len(model.net.Proto().op) == before
    with pytest.raises(AssertionError, match="positive base learning rate"):
        optimizer.build_sgd(model, base_learning_rate=-1.0)
    with pytest.raises(NotImplementedError, match="Lars"):
        optimizer.build_sgd(model, base_learning_rate=0.1, lars=0.5)


@needs_dense
@requires_ops("WeightedSum")
def test_sgd_trains_as_the_formula():
    model = regression_model("opt_sgd_numbers")
    optimizer.build_sgd(model, base_learning_rate=0.1)
    x, t, w, b = regression_data()
    start(model, x, t, w, b)
    for _ in range(3):
        workspace.RunNet(model.net)
        gw, gb = regression_grads(x, t, w, b)
        w, b = w - np.float32(0.1) * gw, b - np.float32(0.1) * gb
    np.testing.assert_allclose(workspace.FetchBlob("y_w"), w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(workspace.FetchBlob("y_b"), b, rtol=1e-5, atol=1e-6)
    assert workspace.FetchBlob("optimizer_iteration").tolist() == [3]


@needs_dense
@requires_ops("WeightedSum", "SumSqrElements", "EnsureCPUOutput", "Max", "Div", "Pow",
              "CopyFromCPUInput", "Mul")
def test_max_gradient_norm_scales_the_learning_rate():
    model = regression_model("opt_sgd_clipped")
    optimizer.build_sgd(model, base_learning_rate=0.1, max_gradient_norm=0.01)
    ops = model.net.Proto().op
    clip_ops = [op for op in ops if op.output[0].startswith("norm_clipped_grad_update/")]
    assert [op.type for op in clip_ops] == ["SumSqrElements", "EnsureCPUOutput"] * 2 + [
        "Sum", "Pow", "Max", "Div"]
    assert list(clip_ops[1].output) == ["norm_clipped_grad_update/opt_sgd_clipped/EnsureCPUOutput"]
    x, t, w, b = regression_data(1)
    start(model, x, t, w, b)
    workspace.RunNet(model.net)
    gw, gb = regression_grads(x, t, w, b)
    norm = np.sqrt((gw.astype(np.float64) ** 2).sum() + (gb.astype(np.float64) ** 2).sum())
    assert norm > 0.01  # the clipping is active
    ratio = 0.01 / norm
    np.testing.assert_allclose(workspace.FetchBlob("y_w"), w - 0.1 * ratio * gw, rtol=1e-5)
    np.testing.assert_allclose(workspace.FetchBlob("y_b"), b - 0.1 * ratio * gb, rtol=1e-5)


@needs_dense
@requires_ops("WeightedSum")
def test_add_weight_decay_changes_only_weight_gradients():
    model = regression_model("opt_wd")
    optimizer.add_weight_decay(model, 0.5)
    optimizer.build_sgd(model, base_learning_rate=0.1)
    decay = [op for op in model.net.Proto().op if op.type == "WeightedSum"][0]
    assert list(decay.input) == ["y_w_grad", "ONE_0_0", "y_w", "wd_0_0"]
    x, t, w, b = regression_data(2)
    start(model, x, t, w, b)
    workspace.RunNet(model.net)
    gw, gb = regression_grads(x, t, w, b)
    np.testing.assert_allclose(workspace.FetchBlob("y_w"), w - 0.1 * (gw + 0.5 * w), rtol=1e-5)
    np.testing.assert_allclose(workspace.FetchBlob("y_b"), b - 0.1 * gb, rtol=1e-5)


@needs_dense
@requires_ops("Adagrad")
def test_dense_adagrad_trains_as_the_formula():
    model = regression_model("opt_adagrad")
    optimizer.build_adagrad(model, base_learning_rate=0.2, epsilon=1e-3, decay=0.9)
    adagrad = [op for op in model.net.Proto().op if op.type == "Adagrad"]
    assert [list(op.input) for op in adagrad][0] == [
        "y_w", "y_w_squared_sum", "y_w_grad", "AdagradOptimizer_0_lr_cpu"]
    assert arg_value(adagrad[0], "decay") == pytest.approx(0.9)
    x, t, w, b = regression_data(3)
    start(model, x, t, w, b)
    hw, hb = np.zeros_like(w), np.zeros_like(b)
    for _ in range(3):
        workspace.RunNet(model.net)
        gw, gb = regression_grads(x, t, w, b)
        hw, hb = 0.9 * hw + gw * gw, 0.9 * hb + gb * gb
        w = w - 0.2 * gw / (np.sqrt(hw) + 1e-3)
        b = b - 0.2 * gb / (np.sqrt(hb) + 1e-3)
    np.testing.assert_allclose(workspace.FetchBlob("y_w"), w, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(workspace.FetchBlob("y_w_squared_sum"), hw, rtol=1e-4)


@needs_dense
@requires_ops("Adam")
def test_adam_trains_as_the_formula():
    model = regression_model("opt_adam")
    optimizer.build_adam(model, base_learning_rate=0.01, beta1=0.8, beta2=0.9, epsilon=1e-3)
    x, t, w, b = regression_data(4)
    start(model, x, t, w, b)
    m, v = np.zeros_like(w), np.zeros_like(w)
    for step in range(1, 4):
        workspace.RunNet(model.net)
        gw, _ = regression_grads(x, t, w, b)
        b = workspace.FetchBlob("y_b")
        m, v = 0.8 * m + 0.2 * gw, 0.9 * v + 0.1 * gw * gw
        # Caffe2's Adam sees the counter after AtomicIter (= step) and corrects with t = step+1.
        t_corr = step + 1
        w = w - 0.01 * np.sqrt(1 - 0.9 ** t_corr) / (1 - 0.8 ** t_corr) * m / (np.sqrt(v) + 1e-3)
    np.testing.assert_allclose(workspace.FetchBlob("y_w"), w, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(workspace.FetchBlob("y_w_first_moment"), m, rtol=1e-4)


SPARSE_OPS = ("SparseLengthsSum", "GaussianFill", "SquaredL2Distance", "AveragedLoss",
              *COUNTER_OPS)


def embedding_model(name: str):
    model = model_helper.ModelHelper(name=name)
    emb = model.create_param("emb", shape=[6, 3],
                             initializer=Initializer("GaussianFill", std=0.1))
    pooled = model.net.SparseLengthsSum([emb, "ids", "lengths"], "pooled")
    dist = model.net.SquaredL2Distance([pooled, "T"], "dist")
    model.AddGradientOperators([model.net.AveragedLoss(dist, "loss")])
    return model, emb


def embedding_step(model, table, ids, lengths, target):
    workspace.FeedBlob("ids", ids)
    workspace.FeedBlob("lengths", lengths)
    workspace.FeedBlob("T", target)
    workspace.RunNetOnce(model.param_init_net)
    workspace.FeedBlob("emb", table)
    workspace.RunNetOnce(model.net)
    # Row gradients of mean_s ½‖Σ_{i∈s} table[ids_i] − T_s‖², one per lookup.
    segments = np.repeat(np.arange(len(lengths)), lengths)
    pooled = np.zeros_like(target)
    np.add.at(pooled, segments, table[ids])
    return ((pooled - target) / len(lengths))[segments]


def embedding_data():
    rng = np.random.default_rng(5)
    return (rng.standard_normal((6, 3)).astype(np.float32), np.array([0, 2, 2, 5], np.int32),
            np.array([3, 1], np.int32), rng.standard_normal((2, 3)).astype(np.float32))


@requires_ops(*SPARSE_OPS, "SparseAdagrad")
def test_sparse_adagrad_updates_the_looked_up_rows():
    model, emb = embedding_model("opt_sparse_adagrad")
    assert isinstance(model.param_to_grad[emb], core.GradientSlice)
    optimizer.build_adagrad(model, base_learning_rate=0.5, epsilon=1e-4)
    (op,) = [op for op in model.net.Proto().op if op.type == "SparseAdagrad"]
    assert list(op.input)[:3] == ["emb", "emb_squared_sum", "ids"]
    # engine="" is the OperatorDef's engine field (set, empty), not an argument.
    assert [a.name for a in op.arg] == ["epsilon"] and op.HasField("engine") and op.engine == ""
    table, ids, lengths, target = embedding_data()
    row_grads = embedding_step(model, table, ids, lengths, target)
    expected, history = table.copy(), np.zeros_like(table)
    for i, row in enumerate(ids):  # one update per lookup, in order (duplicates included)
        history[row] += row_grads[i] ** 2
        expected[row] -= 0.5 * row_grads[i] / (np.sqrt(history[row]) + 1e-4)
    np.testing.assert_allclose(workspace.FetchBlob("emb"), expected, rtol=1e-5, atol=1e-6)
    assert np.array_equal(workspace.FetchBlob("emb")[[1, 3, 4]], table[[1, 3, 4]])


@requires_ops(*SPARSE_OPS, "RowWiseSparseAdagrad")
def test_row_wise_adagrad_state_is_one_value_per_row():
    model, _ = embedding_model("opt_rowwise")
    optimizer.build_adagrad(model, base_learning_rate=0.5, rowWise=True)
    state = [op for op in model.param_init_net.Proto().op
             if list(op.output) == ["emb_avg_squared_sum"]]
    assert len(state) == 1 and arg_value(state[0], "shape") == [6]
    assert "RowWiseSparseAdagrad" in op_types(model.net)
    table, ids, lengths, target = embedding_data()
    embedding_step(model, table, ids, lengths, target)
    assert workspace.FetchBlob("emb_avg_squared_sum").shape == (6,)
    assert np.array_equal(workspace.FetchBlob("emb")[[1, 3, 4]], table[[1, 3, 4]])
    assert not np.array_equal(workspace.FetchBlob("emb")[[0, 2, 5]], table[[0, 2, 5]])


@requires_ops(*SPARSE_OPS, "ScatterWeightedSum")
def test_sgd_on_a_sparse_gradient_scatters():
    model, _ = embedding_model("opt_sparse_sgd")
    optimizer.build_sgd(model, base_learning_rate=0.5)
    (op,) = [op for op in model.net.Proto().op if op.type == "ScatterWeightedSum"]
    assert list(op.input) == ["emb", "ONE_0_0", "ids", "emb_grad_values",
                              "SgdOptimizer_0_lr_cpu"]
    table, ids, lengths, target = embedding_data()
    row_grads = embedding_step(model, table, ids, lengths, target)
    expected = table.copy()
    np.add.at(expected, ids, -0.5 * row_grads)
    np.testing.assert_allclose(workspace.FetchBlob("emb"), expected, rtol=1e-5, atol=1e-6)


@requires_ops(*COUNTER_OPS)
def test_row_wise_on_a_dense_gradient_is_refused():
    model = model_helper.ModelHelper(name="opt_rowwise_dense")
    w = model.create_param("w", shape=[2], initializer=Initializer("ConstantFill", value=1.0))
    model.AddGradientOperators([model.net.LpNorm([model.net.Cos([w], "c")], "loss")])
    with pytest.raises(AssertionError, match="rowWise=True, gradient must be a gradientslice"):
        optimizer.build_adagrad(model, base_learning_rate=0.1, rowWise=True)


def test_learning_rate_exp_matches_caffe2_bits_where_simd_power_differs():
    # Real Caffe2 1.5.0 (powf from libm) on an AVX-512 machine, where NumPy's float32 power
    # gives one ulp less (-6.5155064e-06).
    lr = c2.learning_rate(np.array([12345], np.int64), -0.037, "exp", gamma=0.9993)
    assert lr.tobytes() == b"\xc7\x9f\xda\xb6"
