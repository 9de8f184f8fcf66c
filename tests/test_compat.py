"""The opt-in ``caffe2`` alias (issue 8 §4): never installed by ``import caffe2ops``; installed by
``caffe2ops.compat.install()`` or ``python -m caffe2ops.compat script.py``. Each case runs in a
fresh interpreter so this test process never gets the alias."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")


def _python(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=SRC)
    return subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=120)


CAFFE2_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    from caffe2.python import core, workspace
    from caffe2.proto import caffe2_pb2
    import caffe2.python.hypothesis_test_util as hu
    import caffe2.python.serialized_test.serialized_test_util as serial
    from caffe2.python.modeling.gradient_clipping import GradientClipping

    workspace.GlobalInit(["caffe2", "--caffe2_log_level=0"])
    workspace.FeedBlob("X", np.array([-2.0, 0.5, 3.0], dtype=np.float32))
    net = core.Net("script")
    net.Clip(["X"], ["Y"], min=-1.0, max=1.0)
    workspace.RunNetOnce(net)
    print(workspace.FetchBlob("Y").tolist(), sys.argv[1:])
    print(core.__name__, workspace.__name__, caffe2_pb2.__name__, hu.__name__, serial.__name__)
    print(GradientClipping.__module__, caffe2_pb2.CPU)
""")


def test_plain_import_does_not_install_the_alias():
    result = _python("-c", "import sys, caffe2ops\n"
                           "from caffe2ops import core, workspace, testing\n"
                           "import caffe2ops.testing.hypothesis_test_util\n"
                           "print(any(m.split('.')[0] == 'caffe2' for m in sys.modules))\n"
                           "try:\n    import caffe2\nexcept ImportError as e:\n    print(e)\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["False", "No module named 'caffe2'"]


def test_python_m_caffe2ops_compat_runs_an_unmodified_script(tmp_path):
    script = tmp_path / "caffe2_script.py"
    script.write_text(CAFFE2_SCRIPT)
    result = _python("-m", "caffe2ops.compat", str(script), "--flag", "x", cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "[-1.0, 0.5, 1.0] ['--flag', 'x']",
        "caffe2ops.core caffe2ops.workspace caffe2ops.proto.caffe2_pb2 "
        "caffe2ops.testing.hypothesis_test_util caffe2ops.testing.serialized_test_util",
        "caffe2ops.modeling.gradient_clipping 0",
    ]


def test_install_at_the_top_of_a_test_suite_and_uninstall():
    code = textwrap.dedent("""
        import sys
        import caffe2ops.compat
        caffe2ops.compat.install()
        caffe2ops.compat.install()  # idempotent
        import caffe2.python.workspace as ws
        import caffe2ops.workspace
        from caffe2.python import core
        import caffe2ops.core
        print(ws is caffe2ops.workspace, core is caffe2ops.core)
        from caffe2.python import caffe2_pybind11_state as C
        print(C.Workspace is ws.C.Workspace)
        caffe2ops.compat.uninstall()
        print(any(m == 'caffe2' or m.startswith('caffe2.') for m in sys.modules))
        try:
            import caffe2.python.core
        except ImportError:
            print("gone")
    """)
    result = _python("-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["True True", "True", "False", "gone"]


def test_missing_counterparts_raise_naming_the_module():
    code = textwrap.dedent("""
        import caffe2ops.compat
        caffe2ops.compat.install()
        for name in ("caffe2.python.net_drawer", "caffe2.python.layers.layers"):
            try:
                __import__(name)
            except ModuleNotFoundError as e:
                print(e)
    """)
    result = _python("-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "No module named 'caffe2.python.net_drawer': caffe2ops.compat has no counterpart",
        "No module named 'caffe2.python.layers': caffe2ops.compat has no counterpart",
    ]


ALIASED = {
    "caffe2.python.model_helper": "caffe2ops.model_helper",
    "caffe2.python.brew": "caffe2ops.brew",
    "caffe2.python.optimizer": "caffe2ops.optimizer",
    "caffe2.proto.caffe2_pb2": "caffe2ops.proto.caffe2_pb2",
    "caffe2.python.modeling.net_modifier": "caffe2ops.modeling.net_modifier",
}


def test_aliases_follow_what_caffe2ops_has():
    """model_helper/brew/optimizer appear as soon as caffe2ops has them (resolved lazily)."""
    import importlib.util

    from caffe2ops import compat

    assert {name: compat.target_of(name) for name in ALIASED} == ALIASED
    code = ("import caffe2ops.compat, importlib\ncaffe2ops.compat.install()\n"
            f"for name in {list(ALIASED)!r}:\n"
            "    try:\n        print(importlib.import_module(name).__name__)\n"
            "    except ModuleNotFoundError as e:\n        print('missing', e.name)\n")
    result = _python("-c", code)
    assert result.returncode == 0, result.stderr
    expected = [t if importlib.util.find_spec(t) is not None else f"missing {t}"
                for t in ALIASED.values()]
    assert result.stdout.splitlines() == expected


def test_compat_usage_errors(tmp_path, capsys):
    from caffe2ops import compat
    from caffe2ops.compat.__main__ import main

    assert main([]) == 2 and "usage" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.py")]) == 2
    assert "no such script" in capsys.readouterr().err
    assert not compat.installed()  # nothing to run: the alias was not installed
