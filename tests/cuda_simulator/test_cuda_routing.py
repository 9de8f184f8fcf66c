"""Routing under the simulator: the functional API on device arrays, and DeviceOption(CUDA)
nets (FeedBlob/RunNet/FetchBlob, gradients) against the same net on the CPU.

Under the simulator device blobs are numba's simulated device arrays, not CuPy arrays (CuPy
cannot allocate without a GPU); tests/test_cuda_gpu.py checks the CuPy path on a real GPU.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
    pytest.skip("CUDA simulator tests run in their own process (tests/test_cuda_simulator.py)",
                allow_module_level=True)

import caffe2ops as c2
from caffe2ops import core, workspace
from caffe2ops.errors import OperatorError
from caffe2ops.kernels.cuda._launch import is_device_array, to_device, to_host
from caffe2ops.proto import caffe2_pb2

CUDA0 = core.DeviceOption(caffe2_pb2.CUDA, 0)


def test_functional_device_in_device_out():
    x = np.array([-2.0, 0.25, np.nan, 3.0], np.float32)
    y = c2.clip(to_device(x), min=-1, max=1)
    assert is_device_array(y)
    np.testing.assert_array_equal(to_host(y), c2.clip(x, min=-1, max=1))
    dev = to_device(x)
    assert c2.clip(dev, 0, 1, out=dev) is dev  # in place
    a, b = np.ones((3, 4), np.float32), np.arange(12, dtype=np.float32).reshape(3, 4)
    dx, dy = c2.cosine_similarity_gradient(to_device(a), to_device(b), to_device(np.ones(3,
                                                                                       np.float32)))
    want = c2.cosine_similarity_gradient(a, b, np.ones(3, np.float32))
    np.testing.assert_allclose(to_host(dx), want[0], rtol=1e-6)
    np.testing.assert_allclose(to_host(dy), want[1], rtol=1e-6)


def test_functional_optimizer_in_place_on_device():
    p, h = np.ones((3, 2), np.float32), np.zeros((3, 2), np.float32)
    g = np.array([[3.0, -4.0], [0.0, 1.0]], np.float32)
    lr = np.array([-0.1], np.float32)
    dp, dh = to_device(p), to_device(h)
    out = c2.sparse_adagrad(dp, dh, np.array([2, 0]), to_device(g), to_device(lr))
    assert out[0] is dp and out[1] is dh
    c2.sparse_adagrad(p, h, np.array([2, 0]), g, lr)
    np.testing.assert_array_equal(to_host(dp), p)
    np.testing.assert_array_equal(to_host(dh), h)


def test_functional_numpy_path_unchanged():
    assert type(c2.cos(np.zeros(2))) is np.ndarray
    assert c2.clip.__wrapped_cpu__ is not c2.clip


def _net(device_option):
    net = core.Net("mlp")
    net.FC(["x", "w", "b"], "h")
    net.Sigmoid("h", "s")
    net.FC(["s", "w2", "b2"], "y")
    net.SquaredL2Distance(["y", "label"], "dist")
    net.AveragedLoss("dist", "loss")
    net.AddGradientOperators(["loss"])
    if device_option is not None:
        net.RunAllOnGPU(0)
    return net


def _feed(device_option):
    rng = np.random.default_rng(0)
    blobs = {"x": rng.standard_normal((8, 5)), "w": rng.standard_normal((6, 5)),
             "b": rng.standard_normal(6), "w2": rng.standard_normal((3, 6)),
             "b2": rng.standard_normal(3), "label": rng.standard_normal((8, 3))}
    for name, value in blobs.items():
        workspace.FeedBlob(name, value.astype(np.float32), device_option)


def test_cuda_net_forward_backward_matches_cpu(monkeypatch):
    from caffe2ops.kernels.cuda import table

    ran = []
    real_run = table.run
    monkeypatch.setattr(table, "run", lambda op, i, o: ran.append(op.type) or real_run(op, i, o))
    results = {}
    for device_option in (None, CUDA0):
        workspace.ResetWorkspace()
        _feed(device_option)
        net = _net(device_option)
        workspace.RunNetOnce(net)
        if device_option is not None:  # every operator of the net ran on the CUDA runners
            assert ran == [op.type for op in net.Proto().op], ran
        else:
            assert ran == []
        results[device_option is None] = {
            n: workspace.FetchBlob(n) for n in ("loss", "w_grad", "b_grad", "w2_grad", "x_grad")}
    for name, cpu in results[True].items():
        gpu = results[False][name]
        assert type(gpu) is np.ndarray and gpu.dtype == cpu.dtype, name
        np.testing.assert_allclose(gpu, cpu, rtol=2e-5, atol=1e-6, err_msg=name)


def test_cuda_operator_refuses_cpu_blob():
    workspace.ResetWorkspace()
    workspace.FeedBlob("x", np.ones(3, np.float32))
    op = core.CreateOperator("Relu", ["x"], ["y"], device_option=CUDA0)
    with pytest.raises(OperatorError, match="Relu: input X must be a GPU array"):
        workspace.RunOperatorOnce(op)


def test_no_gpu_reported_under_simulator():
    assert workspace.NumGpuDevices() == 0
    assert workspace.has_gpu_support is False
    assert workspace.GpuDeviceType == caffe2_pb2.CUDA


@pytest.mark.parametrize("op_type", ["GaussianFill", "UniformFill", "XavierFill", "MSRAFill"])
def test_random_fillers_on_cuda_give_the_cpu_numbers(op_type):
    values = []
    for device_type, name in ((caffe2_pb2.CPU, "a"), (caffe2_pb2.CUDA, "b")):
        option = core.DeviceOption(device_type, 0, random_seed=7)
        workspace.RunOperatorOnce(core.CreateOperator(op_type, [], [name], shape=[4, 5],
                                                      device_option=option))
        values.append(workspace.FetchBlob(name))
    assert values[1].dtype == values[0].dtype and values[1].shape == (4, 5)
    assert values[0].tobytes() == values[1].tobytes()


def test_mixed_devices_copy_ops():
    workspace.ResetWorkspace()
    workspace.FeedBlob("x", np.arange(4, dtype=np.float32))
    for op in (core.CreateOperator("CopyFromCPUInput", ["x"], ["xd"], device_option=CUDA0),
               core.CreateOperator("Relu", ["xd"], ["yd"], device_option=CUDA0),
               core.CreateOperator("EnsureCPUOutput", ["yd"], ["y"], device_option=CUDA0)):
        workspace.RunOperatorOnce(op)
    np.testing.assert_array_equal(workspace.FetchBlob("y"), np.arange(4, dtype=np.float32))


@pytest.mark.parametrize("ord_,max_norm", [(2, 0.5), (1, 1e9), ("inf", 0.5)])
def test_clip_by_global_norm_on_device_matches_cpu(ord_, max_norm):
    from caffe2ops.clipping import clip_by_global_norm

    rng = np.random.default_rng(5)
    arrays = [rng.standard_normal(s).astype(dt) for s, dt in
              (((3, 4), np.float32), (7, np.float64), ((2, 2, 2), np.float16), (0, np.float32))]
    want, want_stats = clip_by_global_norm(arrays, max_norm, ord_)
    got, stats = clip_by_global_norm([to_device(a) for a in arrays], max_norm, ord_)
    assert stats.num_clipped == want_stats.num_clipped
    assert stats.total_norm == want_stats.total_norm and stats.scale == want_stats.scale
    np.testing.assert_array_equal(stats.norms, want_stats.norms)
    for w, g in zip(want, got, strict=True):
        assert is_device_array(g)
        h = to_host(g)
        assert h.dtype == w.dtype and h.tobytes() == w.tobytes()


def test_iter_under_cuda_keeps_the_counter_on_the_host():
    workspace.ResetWorkspace()
    workspace.FeedBlob("it", np.array([3], np.int64))
    workspace.RunOperatorOnce(core.CreateOperator("Iter", ["it"], ["it"], device_option=CUDA0))
    got = workspace.FetchBlob("it")
    assert got.dtype == np.int64 and got.tolist() == [4]


def test_model_helper_brew_optimizer_under_cuda_device_scope_match_cpu():
    from caffe2ops import brew, model_helper, optimizer

    def train(option):
        workspace.ResetWorkspace()
        with core.DeviceScope(option):
            model = model_helper.ModelHelper(name="m")
            brew.fc(model, "x", "h", 5, 4)
            model.net.SquaredL2Distance(["h", "label"], "d")
            loss = model.net.AveragedLoss("d", "loss")
            model.AddGradientOperators([loss])
            optimizer.build_adagrad(model, base_learning_rate=0.1)
        rng = np.random.default_rng(0)
        workspace.FeedBlob("x", rng.standard_normal((6, 5)).astype(np.float32), option)
        workspace.FeedBlob("label", rng.standard_normal((6, 4)).astype(np.float32), option)
        workspace.RunNetOnce(model.param_init_net)
        workspace.CreateNet(model.net)
        for _ in range(3):
            workspace.RunNet(model.net.Name())
        return workspace.FetchBlob("h_w"), workspace.FetchBlob("loss")

    cpu = train(core.DeviceOption(caffe2_pb2.CPU, 0, random_seed=3))
    gpu = train(core.DeviceOption(caffe2_pb2.CUDA, 0, random_seed=3))
    np.testing.assert_allclose(gpu[0], cpu[0], rtol=1e-5, atol=1e-6)  # FC: GEMM order
    np.testing.assert_allclose(gpu[1], cpu[1], rtol=1e-5)
