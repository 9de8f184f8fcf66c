import os

import pytest
from hypothesis import HealthCheck, settings

# Caffe2's profiles: dev (default), sandcastle (more, derandomised), debug (many).
settings.register_profile(
    "dev", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("sandcastle", max_examples=100, deadline=None, derandomize=True)
settings.register_profile("debug", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("CAFFE2_HYPOTHESIS_PROFILE", "dev"))

# The parity suite needs real Caffe2 (.venv-caffe2): it runs through `make parity` only.
collect_ignore = [] if os.environ.get("CAFFE2OPS_PARITY") else ["parity"]


@pytest.fixture(scope="session", autouse=True)
def _fast_kernels_loaded():
    """Load the Numba kernels before any test, so the "default" backend always means the fast
    kernels (outside tests the first calls run the reference kernels while they load)."""
    from caffe2ops import kernels

    kernels.load()
