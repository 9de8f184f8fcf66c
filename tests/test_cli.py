"""The ``caffe2ops`` command line, driven through ``main(argv)`` and one real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import caffe2ops
from caffe2ops import core, save_net
from caffe2ops.runtime.schema import registered_types
from caffe2ops.tools import describe
from caffe2ops.tools.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"caffe2ops {caffe2ops.__version__}"


def test_ops_lists_every_operator_in_plain_text(capsys):
    assert main(["ops"]) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) == len(registered_types())
    assert "``" not in out and ":func:" not in out
    assert main(["ops", "Clip"]) == 0
    assert capsys.readouterr().out.startswith("Clip: Forward, per element")


def test_describe_shows_schema_gradient_and_a_running_example(capsys):
    assert main(["describe", "Clip"]) == 0
    out = capsys.readouterr().out
    for fragment in ("inputs (1): X", "min: float, default absent", "in place: X -> Y allowed",
                     "gradient: ClipGradient(Y, Y_grad) -> (X_grad)", "devices: CPU",
                     "prints:", "Y [[-1.   -0.25  0.  ]"):
        assert fragment in out, fragment
    assert main(["describe", "NoSuchOp"]) == 1
    assert "unknown operator type 'NoSuchOp'" in capsys.readouterr().err


@pytest.mark.parametrize("name", registered_types())
def test_every_operator_has_an_example_that_runs(name):
    """A new operator whose inputs the generic example does not fit needs an entry in
    caffe2ops.tools.describe.EXAMPLES."""
    printed = describe.run_example(name)
    assert printed.splitlines()[0].split()[0] in describe.example_code(name)
    assert "prints:" in describe.describe(name)


def test_docs_operators_md_is_up_to_date():
    with open(os.path.join(ROOT, "docs", "operators.md"), encoding="utf-8") as f:
        committed = f.read()
    assert committed == describe.markdown_all(), (
        "docs/operators.md is out of date: run `caffe2ops describe --all --markdown "
        "-o docs/operators.md`")


def test_plot_writes_a_png_with_kinks(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "clip.png"
    assert main(["plot", "Clip", "--arg", "min=-1", "--arg", "max=1", "-o", str(path)]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "kinks and jumps at -1 (min = -1), 1 (max = 1)" in capsys.readouterr().out
    assert main(["plot", "CosineSimilarity", "-o", str(tmp_path / "x.png")]) == 1
    assert "not plottable" in capsys.readouterr().err


def test_plot_derivative_comes_from_the_gradient_operator():
    from caffe2ops.tools.plot import curves

    c = curves("ThresholdedRelu", {"alpha": -0.5}, (-2, 2), 401)
    assert c.gradient_ops and c.gradient_ops[0] == "ThresholdedReluGradient"
    np.testing.assert_array_equal(c.curves[0].dy, (c.x > -0.5).astype(float))
    assert c.kinks == [(-0.5, "alpha = -0.5")]


def test_plot_without_matplotlib_names_the_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    assert main(["plot", "Cos", "-o", str(tmp_path / "c.png")]) == 1
    assert "pip install 'caffe2ops[plot]'" in capsys.readouterr().err


def _nets(tmp_path):
    init = core.Net("init")
    init.ConstantFill([], ["W"], shape=[3], value=2.0)
    net = core.Net("predict")
    net.Clip(["X"], ["C"], min=-1.0, max=1.0)
    net.Mul(["C", "W"], ["Y"])
    net.Proto().external_output.append("Y")
    save_net(init, tmp_path / "init.pb")
    save_net(net, tmp_path / "predict.pbtxt")
    os.rename(tmp_path / "predict.pbtxt", tmp_path / "predict.pb")  # content decides
    return tmp_path / "init.pb", tmp_path / "predict.pb"


def test_run_feeds_npy_and_saves_npz(tmp_path, capsys):
    init, predict = _nets(tmp_path)
    x = np.array([-3.0, 0.25, 4.0], np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out.npz"
    assert main(["run", str(predict), "--init", str(init), "--feed", f"X={tmp_path / 'x.npy'}",
                 "-o", str(out)]) == 0
    np.testing.assert_array_equal(np.load(out)["Y"], np.clip(x, -1, 1) * 2)
    assert main(["run", str(predict), "--init", str(init), "--feed", f"X={tmp_path / 'x.npy'}",
                 "--fetch", "C"]) == 0
    assert "C: float32 [3]" in capsys.readouterr().out


def test_draw_dot_always_and_svg_through_graphviz(tmp_path, capsys):
    _, predict = _nets(tmp_path)
    assert main(["draw", str(predict), "-o", str(tmp_path / "net.dot")]) == 0
    dot = (tmp_path / "net.dot").read_text()
    assert '"Clip (op#0)" [shape=box' in dot and '"X0" -> "Clip (op#0)"' in dot
    import shutil

    code = main(["draw", str(predict), "-o", str(tmp_path / "net.svg")])
    if shutil.which("dot"):
        assert code == 0 and (tmp_path / "net.svg").read_text().lstrip().startswith("<?xml")
    else:
        assert code == 1 and "Graphviz" in capsys.readouterr().err


def test_get_pydot_graph_matches_the_dot_text():
    pydot = pytest.importorskip("pydot")
    from caffe2ops.net_drawer import GetPydotGraph

    net = core.Net("g")
    net.Clip(["X"], ["X"], min=0.0)
    graph = GetPydotGraph(net)
    assert isinstance(graph, pydot.Dot)
    names = sorted(n.get_name().strip('"') for n in graph.get_nodes())
    assert names == ["Clip (op#0)", "X0", "X1"]
    assert len(graph.get_edges()) == 2


def test_export_and_import_onnx_commands(tmp_path, capsys):
    onnx = pytest.importorskip("onnx")
    init, predict = _nets(tmp_path)
    model = tmp_path / "m.onnx"
    assert main(["export-onnx", str(init), str(predict), "-o", str(model), "--opset", "13",
                 "--value-info", "X=float32:3"]) == 0
    assert "opset 13" in capsys.readouterr().out
    onnx.checker.check_model(onnx.load(model), full_check=True)
    assert main(["import-onnx", str(model), "-o", str(tmp_path / "p.pbtxt"), "--init",
                 str(tmp_path / "i.pb")]) == 0
    net = caffe2ops.load_net(tmp_path / "p.pbtxt")
    assert [op.type for op in net.op] == ["Clip", "Mul"]
    assert main(["export-onnx", str(init), str(predict), "-o", str(model)]) == 1
    assert "--value-info X=" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["check"])
def test_check_runs_the_gradient_check_tour(command, capsys):
    assert main([command]) == 0
    out = capsys.readouterr().out
    assert "ClipGradient" in out and out.rstrip().endswith("0 failed")


def test_one_real_subprocess():
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src"))
    proc = subprocess.run([sys.executable, "-m", "caffe2ops.tools.cli", "describe", "Cos"],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "gradient: CosGradient(X, Y_grad) -> (X_grad)" in proc.stdout
