"""Small data sets shipped with caffe2ops (no download at run time).

``load_digits()``: the 1 797 8×8 handwritten digits of the UCI optdigits test set (E. Alpaydin,
C. Kaynak, 1998; licence CC BY 4.0, see ``DIGITS-LICENSE.txt`` beside this file), as scikit-learn
bundles them: pixels are integers 0..16.

>>> from caffe2ops.datasets import load_digits
>>> X, y = load_digits()
>>> X.shape, X.dtype, y.shape, int(X.max()), sorted(set(y.tolist())) == list(range(10))
((1797, 64), dtype('uint8'), (1797,), 16, True)
"""

from __future__ import annotations

from importlib import resources

import numpy as np

__all__ = ["load_digits"]


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)``: images as uint8 rows of 64 pixels (0..16) and their digits (uint8, 0..9)."""
    with resources.files(__name__).joinpath("digits.npz").open("rb") as f, np.load(f) as data:
        return data["X"].copy(), data["y"].copy()
