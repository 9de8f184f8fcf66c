"""``caffe2ops run``: run a saved predict net (after its init net) on ``.npy`` inputs.

The nets run in a scratch workspace, so nothing leaks into the caller's current one. Fetched
blobs are returned by name (and saved to an ``.npz`` file when asked).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from caffe2ops import workspace
from caffe2ops.runtime.net import final_outputs


def run_nets(predict_net, init_net=None, feeds: Mapping[str, np.ndarray] | None = None,
             fetch: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """Run ``init_net`` once, feed ``feeds``, run ``predict_net`` once; ``{name: array}`` for
    ``fetch`` (default: the predict net's external outputs, else every blob it writes last).

    >>> from caffe2ops import core
    >>> net = core.Net("n"); _ = net.Clip(["X"], ["Y"], max=0.5)
    >>> run_nets(net.Proto(), feeds={"X": np.array([0.25, 2.0], np.float32)})
    {'Y': array([0.25, 0.5 ], dtype=float32)}
    """
    names = list(fetch) or list(predict_net.external_output) or final_outputs(predict_net)
    previous = workspace.CurrentWorkspace()
    workspace.SwitchWorkspace("caffe2ops_run", True)
    workspace.ResetWorkspace()
    try:
        if init_net is not None:
            workspace.RunNetOnce(init_net)
        for name, value in (feeds or {}).items():
            workspace.FeedBlob(name, value)
        workspace.RunNetOnce(predict_net)
        return {name: workspace.FetchBlob(name) for name in names}
    finally:
        workspace.ResetWorkspace()
        workspace.SwitchWorkspace(previous)


def run_files(predict_path: str, init_path: str | None, feed_paths: Mapping[str, str],
              fetch: Sequence[str], output: str | None = None) -> dict[str, np.ndarray]:
    """:func:`run_nets` on net files and ``.npy`` inputs; saves an ``.npz`` if ``output``."""
    from caffe2ops import load_net

    predict_net = load_net(predict_path)
    init_net = load_net(init_path) if init_path else None
    feeds = {name: np.load(path, allow_pickle=False) for name, path in feed_paths.items()}
    results = run_nets(predict_net, init_net, feeds, fetch)
    if output:
        np.savez(output, **results)
    return results
