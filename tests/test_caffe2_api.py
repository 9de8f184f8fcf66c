"""Caffe2's process-level API (issue 8 §3): GlobalInit, C.Workspace, workspace.blobs, devices,
DataType, SetEnginePref, InferOpBlobDevicesAsDict, BenchmarkNet, the Python operator and
``from caffe2ops import caffe2_pb2``. Expected values were read off Caffe2 1.5.0."""

from __future__ import annotations

import logging
import threading
import warnings

import numpy as np
import pytest

from caffe2ops import core, workspace
from caffe2ops.errors import OperatorError
from caffe2ops.proto import caffe2_pb2

pytestmark = pytest.mark.usefixtures("fresh_workspace")


# ---- GlobalInit --------------------------------------------------------------------------------


def test_global_init_applies_log_level_and_warns_for_other_caffe2_flags():
    logger = logging.getLogger("caffe2ops")
    old = logger.level
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert workspace.GlobalInit(
                ["caffe2", "--caffe2_log_level=2", "--caffe2_cpu_allocator_do_zero_fill=0"]
            ) is None
        assert logger.level == logging.ERROR
        assert [str(w.message) for w in caught] == [
            "GlobalInit: --caffe2_cpu_allocator_do_zero_fill=0 is a Caffe2 flag that changes "
            "nothing in caffe2ops; ignored"
        ]
        core.GlobalInit(["prog", "--caffe2_log_level=0"])
        assert logger.level == logging.INFO
    finally:
        logger.setLevel(old)


def test_global_init_refuses_unknown_flags_and_bad_values():
    with pytest.raises(OperatorError, match="unrecognized commandline argument: --not_a_flag=3"):
        workspace.GlobalInit(["caffe2", "--not_a_flag=3"])
    with pytest.raises(OperatorError, match="caffe2_log_level expects an integer"):
        workspace.GlobalInit(["caffe2", "--caffe2_log_level=abc"])


# ---- C.Workspace, workspace.blobs --------------------------------------------------------------


def test_c_workspace_is_independent_of_the_current_workspace():
    ws = workspace.C.Workspace()
    assert ws.create_blob("X").feed(np.array([-2.0, 0.5, 3.0], np.float32)) is True
    assert ws.has_blob("X") and not workspace.HasBlob("X")
    assert ws.run(core.CreateOperator("Clip", ["X"], ["Y"], min=-1.0, max=1.0)) is None
    assert sorted(ws.blobs) == ["X", "Y"]
    np.testing.assert_array_equal(ws.blobs["Y"].fetch(), np.array([-1, 0.5, 1], np.float32))
    net = core.Net("c_ws_net")
    net.Cos(["Y"], ["Z"])
    ws.run(net)
    np.testing.assert_allclose(ws.blobs["Z"].fetch(), np.cos([-1, 0.5, 1]), rtol=1e-6)
    assert workspace.Blobs() == []
    fetched = ws.blobs["Y"].fetch()
    fetched[0] = 42  # a copy, as Caffe2's fetch
    assert ws.blobs["Y"].fetch()[0] == -1
    with pytest.raises(ValueError, match="Don't know how to do Workspace.run"):
        ws.run(42)


def test_c_workspace_current_views_the_named_workspace():
    workspace.FeedBlob("A", np.ones(2))
    current = workspace.C.Workspace.current
    assert list(current.blobs) == ["A"]
    current.create_blob("B").feed(np.zeros(3, np.int32))
    assert workspace.FetchBlob("B").dtype == np.int32


def test_c_workspaces_run_in_threads_independently():
    results, errors = {}, []

    def work(k: int) -> None:
        try:
            ws = workspace.C.Workspace()
            x = np.full(1000, k, np.float32)
            for _ in range(50):
                ws.create_blob("X").feed(x)
                ws.run(core.CreateOperator("Clip", ["X"], ["Y"], min=0.0, max=float(k) - 0.5))
            results[k] = ws.blobs["Y"].fetch()
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for k in range(1, 5):
        np.testing.assert_array_equal(results[k], np.full(1000, k - 0.5, np.float32))
    assert workspace.Blobs() == []


def test_workspace_blobs_is_caffe2s_dict_like():
    workspace.blobs["X"] = np.arange(3, dtype=np.float32)
    assert "X" in workspace.blobs and "Y" not in workspace.blobs
    assert len(workspace.blobs) == 1 and list(workspace.blobs) == ["X"]
    np.testing.assert_array_equal(workspace.blobs["X"], np.arange(3, dtype=np.float32))
    with pytest.raises(KeyError, match="'Y' does not exist"):
        workspace.blobs["Y"]
    assert workspace.Workspace is workspace.C.Workspace


# ---- devices, DataType, engines, device inference ------------------------------------------------


def test_gpu_names_are_truthful():
    try:
        import cupy  # noqa: F401
        have_cupy = True
    except ImportError:
        have_cupy = False
    if not have_cupy:
        assert workspace.has_gpu_support is False and workspace.has_cuda_support is False
        assert workspace.NumGpuDevices() == 0 and workspace.NumCudaDevices() == 0
    assert workspace.NumGpuDevices() == workspace.NumCudaDevices()
    assert workspace.has_cuda_support == (workspace.NumCudaDevices() > 0)
    assert workspace.GpuDeviceType == caffe2_pb2.CUDA == 1  # as Caffe2, even without a GPU


def test_data_type_matches_tensor_proto():
    assert core.DataType.FLOAT == 1 and core.DataType.INT32 == 2 and core.DataType.DOUBLE == 13
    assert core.DataType.FLOAT16 == 12 and core.DataType.INT64 == 10
    for name, value in caffe2_pb2.TensorProto.DataType.items():
        assert getattr(core.DataType, name) == value


def test_set_engine_pref_checks_and_keeps_preferences():
    core.SetEnginePref({caffe2_pb2.CPU: {"Clip": ["FOO"]}}, {caffe2_pb2.CPU: ["BAR"]})
    assert core.GetEnginePref() == ({0: {"Clip": ["FOO"]}}, {0: ["BAR"]})
    workspace.FeedBlob("x", np.ones(2, np.float32))
    workspace.RunOperatorOnce(core.CreateOperator("Clip", ["x"], ["y"]))  # still runs
    core.SetEnginePref({}, {})
    assert core.GetEnginePref() == ({}, {})
    for bad in (("x", {}), ({}, {caffe2_pb2.CPU: "FOO"}), ({}, {7: ["FOO"]}),
                ({caffe2_pb2.CPU: ["FOO"]}, {})):
        with pytest.raises(TypeError):
            core.SetEnginePref(*bad)


def _devices(mapping):
    return {k: (v.device_type, v.device_id) for k, v in mapping.items()}


@pytest.mark.parametrize("op_type, cuda_inputs, cuda_outputs", [
    ("Clip", {"a": (1, 1)}, {"b": (1, 1)}),
    ("CopyCPUToGPU", {"a": (0, 0)}, {"b": (1, 1)}),
    ("CopyGPUToCPU", {"a": (1, 1)}, {"b": (0, 0)}),
    ("EnsureCPUOutput", {"a": (1, 1)}, {"b": (0, 0)}),
    ("CopyFromCPUInput", {"a": (0, 0)}, {"b": (1, 1)}),
])
def test_infer_op_blob_devices_as_dict(op_type, cuda_inputs, cuda_outputs):
    cuda = core.DeviceOption(caffe2_pb2.CUDA, 1)
    inputs, outputs = core.InferOpBlobDevicesAsDict(
        core.CreateOperator(op_type, ["a"], ["b"], device_option=cuda))
    assert (_devices(inputs), _devices(outputs)) == (cuda_inputs, cuda_outputs)
    if op_type.startswith("CopyCPU") or op_type.startswith("CopyGPU"):
        with pytest.raises(OperatorError, match="should have cuda device option"):
            core.InferOpBlobDevicesAsDict(core.CreateOperator(op_type, ["a"], ["b"]))
    else:
        inputs, outputs = core.InferOpBlobDevicesAsDict(core.CreateOperator(op_type, ["a"], ["b"]))
        assert _devices(inputs) == {"a": (0, 0)} and _devices(outputs) == {"b": (0, 0)}


# ---- BenchmarkNet ------------------------------------------------------------------------------


def test_benchmark_net_returns_caffe2s_timing_list():
    workspace.FeedBlob("x", np.linspace(-2, 2, 1000).astype(np.float32))
    net = core.Net("bench_net")
    net.Clip(["x"], ["y"], min=-1.0, max=1.0)
    net.Cos(["y"], ["z"])
    workspace.CreateNet(net)
    timings = workspace.BenchmarkNet(net.Name(), 2, 5, True)
    assert len(timings) == 3 and all(isinstance(t, float) and t > 0 for t in timings)
    assert sum(timings[1:]) < 50 * timings[0]  # per-op times are per iteration, like the total
    whole = workspace.BenchmarkNet(net.Name(), 1, 3, False)
    assert len(whole) == 3 and whole[0] > 0 and whole[1:] == [0.0, 0.0]
    with pytest.raises(OperatorError, match="didn't find net 'missing'"):
        workspace.BenchmarkNet("missing", 1, 1, False)


# ---- the Python operator -----------------------------------------------------------------------


def _scale_by_three(inputs, outputs):
    outputs[0].feed(inputs[0].data * 3)


def _scale_by_three_gradient(inputs, outputs):
    # inputs: X, Y, dY; outputs: dX
    outputs[0].feed(inputs[2].data * 3)


def test_create_python_operator_forward_and_gradient():
    x = np.array([1.0, -2.0, 0.5], np.float32)
    workspace.FeedBlob("x", x)
    op = core.CreatePythonOperator(_scale_by_three, ["x"], ["y"], grad_f=_scale_by_three_gradient)
    assert op.type == "Python" and op.arg[0].name == "token"
    assert op.arg[0].s.decode().startswith("_scale_by_three")
    workspace.RunOperatorOnce(op)
    np.testing.assert_array_equal(workspace.FetchBlob("y"), x * 3)
    grad_ops, g_input = core.GradientRegistry.GetGradientForOp(op, ["y_grad"])
    assert [g.type for g in grad_ops] == ["PythonGradient"]
    assert list(grad_ops[0].input) == ["x", "y", "y_grad"] and g_input == ["x_grad"]
    workspace.FeedBlob("y_grad", np.ones(3, np.float32))
    workspace.RunOperatorsOnce(grad_ops)
    np.testing.assert_array_equal(workspace.FetchBlob("x_grad"), np.full(3, 3, np.float32))


def test_python_tokens_are_named_like_caffe2s():
    def f(inputs, outputs):
        outputs[0].feed(inputs[0].data)

    first = core.CreatePythonOperator(f, ["x"], ["y"]).arg[0].s.decode()
    second = core.CreatePythonOperator(f, ["x"], ["y"]).arg[0].s.decode()
    assert first.split(":")[0] == "f" and second != first and second.startswith("f:")


def test_net_python_with_grad_f_and_index_subsets():
    def f(inputs, outputs):
        outputs[0].reshape(inputs[0].shape)
        outputs[0].data[...] = inputs[0].data ** 2
        outputs[1].feed(inputs[0].data + 1)

    def grad_f(inputs, outputs):  # X, Y0, Y1, dY0 -> dX
        x, dy0 = inputs[0].data, inputs[3].data
        outputs[0].feed(2 * x * dy0)

    net = core.Net("python_net")
    y0, y1 = net.Python(f, grad_f=grad_f, grad_output_indices=[0], grad_input_indices=[0])(
        ["x"], ["y0", "y1"])
    grads = net.AddGradientOperators({y0: "y0_grad"})
    ops = net.Proto().op
    assert [o.type for o in ops] == ["Python", "PythonGradient"]
    assert list(ops[1].input) == ["x", "y0", "y1", "y0_grad"] and list(ops[1].output) == ["x_grad"]
    x = np.array([1.0, 2.0, -3.0], np.float32)
    workspace.FeedBlob("x", x)
    workspace.FeedBlob("y0_grad", np.ones(3, np.float32))
    workspace.RunNetOnce(net)
    np.testing.assert_array_equal(workspace.FetchBlob("y0"), x**2)
    np.testing.assert_array_equal(workspace.FetchBlob("y1"), x + 1)
    np.testing.assert_array_equal(workspace.FetchBlob(str(grads["x"])), 2 * x)


def test_net_python_builder_tuple_is_built_in_process():
    def make(scale):
        def scaled(inputs, outputs):
            outputs[0].feed(inputs[0].data * scale)
        return scaled

    net = core.Net("python_builder")
    net.Python((make, (5,), {}))(["x"], ["y"])
    workspace.FeedBlob("x", np.array([1.0, 2.0]))
    workspace.RunNetOnce(net)
    np.testing.assert_array_equal(workspace.FetchBlob("y"), [5.0, 10.0])
    with pytest.raises(ValueError, match="both f and grad_f"):
        net.Python((make, (5,), {}), grad_f=lambda i, o: None)


def test_python_operator_errors():
    def broken(inputs, outputs):
        raise ValueError("boom")

    workspace.FeedBlob("x", np.ones(2, np.float32))
    with pytest.raises(OperatorError, match="Python function 'broken.*ValueError: boom"):
        workspace.RunOperatorOnce(core.CreatePythonOperator(broken, ["x"], ["y"]))
    assert not workspace.HasBlob("y")
    with pytest.raises(OperatorError, match="Python operator for nope is not available"):
        workspace.RunOperatorOnce(core.CreateOperator("Python", ["x"], ["y"], token="nope"))
    op = core.CreatePythonOperator(_scale_by_three, ["x"], ["y"])  # no grad_f
    grad_ops, _ = core.GradientRegistry.GetGradientForOp(op, ["y_grad"])
    workspace.FeedBlob("y_grad", np.ones(2, np.float32))
    with pytest.raises(OperatorError, match="_gradient is not available"):
        workspace.RunOperatorsOnce(grad_ops)
    with pytest.raises(OperatorError, match="pickled_builder"):
        workspace.RunOperatorOnce(core.CreateOperator("Python", ["x"], ["y"],
                                                      pickled_builder=b"cos\nsystem\n"))


def test_python_operator_sees_writable_input_data_as_caffe2():
    def bump(inputs, outputs):
        inputs[0].data[0] = 100.0
        outputs[0].reshape([3])

    workspace.FeedBlob("x", np.arange(4, dtype=np.float32))
    workspace.RunOperatorOnce(core.CreatePythonOperator(bump, ["x"], ["q"]))
    assert workspace.FetchBlob("x")[0] == 100.0
    np.testing.assert_array_equal(workspace.FetchBlob("q"), np.zeros(3, np.float32))


# ---- caffe2_pb2 --------------------------------------------------------------------------------


def test_caffe2_pb2_importable_from_the_package():
    from caffe2ops import caffe2_pb2 as top
    from caffe2ops.proto import caffe2_pb2 as nested

    assert top is nested and top.OperatorDef is caffe2_pb2.OperatorDef


# ---- plans (what Caffe2's python_op_test runs the Python operator through) -----------------------


def test_run_plan_iterates_steps_and_stops_on_the_stop_blob():
    workspace.FeedBlob("acc", np.zeros(1, np.float32))
    workspace.FeedBlob("one", np.ones(1, np.float32))
    net = core.Net("plan_acc")
    net.Sum(["acc", "one"], ["acc"])
    workspace.RunPlan(core.Plan(core.ExecutionStep("five", net, 5)))
    assert workspace.FetchBlob("acc")[0] == 5.0
    assert "plan_acc" in workspace.GetNetNames()  # the plan's nets are created, as Caffe2's

    def stop_at_eight(inputs, outputs):
        outputs[0].feed(np.array([inputs[0].data[0] >= 8.0]))

    check = core.Net("plan_check")
    check.Python(stop_at_eight)(["acc"], ["stop"])
    step = core.ExecutionStep("until_eight", [net, check], 100)
    step.SetShouldStopBlob("stop")
    plan = core.Plan("stop_plan")
    plan.AddStep(step)
    assert [n.Name() for n in plan.Nets()] == ["plan_acc", "plan_check"]
    workspace.RunPlan(plan.Proto().SerializeToString())
    assert workspace.FetchBlob("acc")[0] == 8.0

    outer = core.ExecutionStep("outer", num_iter=3)
    once = core.ExecutionStep("once", net)
    once.SetOnlyOnce(True)
    outer.AddSubstep(once)
    outer.AddSubstep(core.ExecutionStep("each", net))
    workspace.RunPlan(outer)
    assert workspace.FetchBlob("acc")[0] == 12.0  # 1 (only once) + 3
    bad = caffe2_pb2.PlanDef(name="bad")
    bad.execution_step.add(name="s", network=["nowhere"])
    with pytest.raises(OperatorError, match="runs net 'nowhere'"):
        workspace.RunPlan(bad)
