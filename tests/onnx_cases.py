"""ONNX's backend node test cases, built once per test session (the loader runs every case
generator of the onnx wheel, seconds of work) and shared by the test modules that use them."""

from __future__ import annotations

import functools
import warnings

import numpy as np


@functools.cache
def all_node_cases() -> tuple:
    from onnx.backend.test.loader import load_model_tests

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return tuple(load_model_tests(kind="node"))
