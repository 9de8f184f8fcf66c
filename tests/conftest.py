import os

import pytest
from hypothesis import HealthCheck, settings

# Caffe2's helpers register and load Caffe2's profiles on import; import them first so this
# suite's own profiles (registered below under the same names) stay in force for every test.
import caffe2ops.testing.hypothesis_test_util  # noqa: E402, F401, I001

# Caffe2's profiles: dev (default), sandcastle (more, derandomised), debug (many).
_base = settings.get_profile("default")
settings.register_profile(
    "dev", _base, max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("sandcastle", _base, max_examples=100, deadline=None, derandomize=True)
settings.register_profile("debug", _base, max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("CAFFE2_HYPOTHESIS_PROFILE", "dev"))

# The parity suite needs real Caffe2 (.venv-caffe2): it runs through `make parity` only.
collect_ignore = [] if os.environ.get("CAFFE2OPS_PARITY") else ["parity"]


@pytest.fixture(scope="session", autouse=True)
def _fast_kernels_loaded():
    """Load the Numba kernels before any test, so the "default" backend always means the fast
    kernels (outside tests the first calls run the reference kernels while they load)."""
    from caffe2ops import kernels

    kernels.load()


def _fresh_workspace(name: str):
    from caffe2ops import workspace

    previous = workspace.CurrentWorkspace()
    workspace.SwitchWorkspace(name, True)
    workspace.ResetWorkspace()
    yield name
    workspace.ResetWorkspace()
    workspace.SwitchWorkspace(previous)


@pytest.fixture
def fresh_workspace(request):
    """The test runs in an empty workspace named after its module (``test_runtime``, ...); after
    it that workspace is emptied again and the previous one is current again. A test file opts in
    with ``pytestmark = pytest.mark.usefixtures("fresh_workspace")``."""
    yield from _fresh_workspace(request.path.stem)


@pytest.fixture(scope="module")
def fresh_module_workspace(request):
    """``fresh_workspace`` once for a whole module: its tests share the workspace."""
    yield from _fresh_workspace(request.path.stem)
