"""``make caffe2-suite``: Caffe2's own unit tests for our operators, run against caffe2ops.

The test files are copied AT RUN TIME out of the installed Caffe2 1.5.0 wheel (``torch==1.5.0``
for Python 3.8, in ``.venv-caffe2``; ``CAFFE2_SITE_PACKAGES`` overrides the search) into a
temporary folder, with the serialized-test zips they compare against, and run with this Python
under the opt-in ``caffe2`` alias (:mod:`caffe2ops.compat`). Nothing of Caffe2 enters the
repository.

Files: the operator tests named after an operator we register (:data:`FILES`, each kept only if it
really creates one of our operators) and ``modeling/gradient_clipping_test.py``. Per test: passed,
failed, skipped (the test skipped itself, e.g. GPU-only), or out of scope — the test stopped at an
operator we do not register or a Caffe2 module caffe2ops does not have, and at nothing else
(:func:`out_of_scope_reason` decides by that missing name; a missing function of a module we do
have is a failure). Prints a table per file and exits 1 if any test failed.

Also a pytest plugin (``-p caffe2_suite``): installs the alias, records every test's outcome and,
for failures, the out-of-scope reason into ``$CAFFE2_SUITE_RESULTS``; it runs Caffe2's hypothesis
profile without the shrink/explain phases and per-example printing (they only shape a failure's
report and cost minutes per failing test; pass or fail is unchanged). ``-v`` lists every test.

>>> out_of_scope_reason(ModuleNotFoundError("No module named 'caffe2.python.brew': caffe2ops."
...     "compat has no counterpart (caffe2ops.brew does not exist)"))
'module caffe2.python.brew'
>>> out_of_scope_reason(ValueError("wrong numbers")) is None
True
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Caffe2 files testing operators we register (operator_test/) and our net modifier (modeling/).
FILES = (
    "operator_test/clip_op_test.py",
    "operator_test/clip_tensor_op_test.py",
    "operator_test/cosine_embedding_criterion_op_test.py",
    "operator_test/distance_op_test.py",
    "operator_test/ensure_clipped_test.py",
    "operator_test/lpnorm_op_test.py",
    "operator_test/sparse_normalize_test.py",
    "operator_test/thresholded_relu_op_test.py",
    "operator_test/math_ops_test.py",
    "operator_test/elementwise_ops_test.py",
    "operator_test/elementwise_op_broadcast_test.py",
    "operator_test/copy_ops_test.py",
    "operator_test/filler_ops_test.py",
    "operator_test/python_op_test.py",
    "modeling/gradient_clipping_test.py",
)

_MISSING_PATTERNS = (
    (re.compile(r"unknown operator type '([^']+)'"), "operator {}"),
    (re.compile(r"Method (\w+) is not a registered operator"), "operator {}"),
    (re.compile(r"No module named '([^']+)': caffe2ops\.compat has no counterpart"), "module {}"),
    (re.compile(r"cannot import name '(\w+)' from '(caffe2(?:\.\w+)*)'"), "module {1}.{0}"),
    (re.compile(r"No module named '((?:caffe2|caffe2ops)(?:\.\w+)*)'"), "module {}"),
)


def _reason_from_text(text: str) -> str | None:
    for pattern, template in _MISSING_PATTERNS:
        match = pattern.search(text)
        if match:
            return template.format(*match.groups())
    return None


def _leaves(exc: BaseException) -> list[BaseException]:
    group = getattr(exc, "exceptions", None)  # an ExceptionGroup (hypothesis: several bugs)
    if isinstance(group, list | tuple) and all(isinstance(e, BaseException) for e in group):
        return [leaf for sub in group for leaf in _leaves(sub)]
    return [exc]


def out_of_scope_reason(exc: BaseException) -> str | None:
    """The missing operator or module that stopped the test, if that alone stopped it."""
    reasons = set()
    for leaf in _leaves(exc):
        reason = None
        chain = leaf
        while chain is not None and reason is None:
            if isinstance(chain, ImportError | KeyError | AttributeError | RuntimeError):
                reason = _reason_from_text(str(chain))
            chain = chain.__cause__
        if reason is None:
            return None
        reasons.add(reason)
    return ", ".join(sorted(reasons)) or None


# ---- the pytest plugin (runs inside the child process) -----------------------------------------

_results: list[dict] = []


def pytest_configure(config) -> None:
    import caffe2ops.compat

    caffe2ops.compat.install()
    # Caffe2's profile (chosen by CAFFE2_HYPOTHESIS_PROFILE) as the helpers load it, without the
    # shrink and explain phases and the per-example printing: they only make a failure's report
    # smaller and slower (minutes per failing test), never turn a pass into a failure or back.
    import hypothesis

    import caffe2ops.testing.hypothesis_test_util  # noqa: F401  (loads Caffe2's profile)

    caffe2 = hypothesis.settings()
    phases = tuple(p for p in caffe2.phases
                   if p not in (hypothesis.Phase.shrink, hypothesis.Phase.explain))
    hypothesis.settings.register_profile("caffe2-suite", caffe2, phases=phases,
                                         verbosity=hypothesis.Verbosity.normal)
    hypothesis.settings.load_profile("caffe2-suite")


def _record(nodeid: str, outcome: str, detail: str = "") -> None:
    _results.append({"test": nodeid, "outcome": outcome, "detail": detail})


def pytest_runtest_logreport(report) -> None:
    if report.when == "call" or (report.when == "setup" and not report.passed):
        if report.passed:
            _record(report.nodeid, "passed")
        elif report.skipped:
            _record(report.nodeid, "skipped", _first_line(report.longrepr))
        else:
            reason = getattr(report, "caffe2_out_of_scope", None)
            if reason:
                _record(report.nodeid, "out of scope", reason)
            else:
                _record(report.nodeid, "failed", _short(report))


def pytest_collectreport(report) -> None:
    if report.failed:
        reason = _reason_from_text(str(report.longrepr))
        outcome = "out of scope" if reason else "failed"
        _record(report.nodeid or "<collection>", outcome, reason or _tail(str(report.longrepr)))


def _first_line(longrepr) -> str:
    if isinstance(longrepr, tuple):
        return str(longrepr[-1])
    return str(longrepr).splitlines()[0] if longrepr else ""


_ERROR_LINE = re.compile(r"^[\s|E]*((?:\w+\.)*\w*(?:Error|Exception|Group)\b:?.*)$")


def _tail(text: str) -> str:
    """The first exception line of a pytest report (its type and message), else its last line."""
    lines = [line for line in text.splitlines() if line.strip()]
    for k, line in enumerate(lines):
        match = _ERROR_LINE.match(line)
        if match and "Traceback" not in line and "Exception Group" not in line:
            rest = " ".join(x.strip(" |E") for x in lines[k + 1:k + 3])
            return (match.group(1) + " " + rest)[:300]
    return (lines[-1] if lines else "")[:300]


def _short(report) -> str:
    return _tail(str(report.longrepr))


try:
    import pytest
except ImportError:  # the module still imports without pytest (doctests, the runner)
    pytest = None

if pytest is not None:

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(item, call):
        outcome = yield
        report = outcome.get_result()
        if call.excinfo is not None and report.failed:
            report.caffe2_out_of_scope = out_of_scope_reason(call.excinfo.value)


def pytest_unconfigure(config) -> None:
    path = os.environ.get("CAFFE2_SUITE_RESULTS")
    if path:
        with open(path, "w") as f:
            json.dump(_results, f)


# ---- the runner ---------------------------------------------------------------------------------


def find_caffe2() -> str | None:
    """The installed wheel's ``caffe2`` package folder, or None."""
    candidates = []
    if os.environ.get("CAFFE2_SITE_PACKAGES"):
        candidates.append(os.environ["CAFFE2_SITE_PACKAGES"])
    roots = [REPO]
    try:
        common = subprocess.run(["git", "-C", REPO, "rev-parse", "--git-common-dir"],
                                capture_output=True, text=True, check=True).stdout.strip()
        roots.append(os.path.dirname(os.path.abspath(os.path.join(REPO, common))))
    except (OSError, subprocess.CalledProcessError):
        pass
    for root in roots:
        candidates += glob.glob(os.path.join(root, ".venv-caffe2", "lib", "python3*",
                                             "site-packages"))
    for site in candidates:
        package = os.path.join(site, "caffe2")
        if os.path.isdir(os.path.join(package, "python", "operator_test")):
            return package
    return None


def registered_operators() -> set[str]:
    sys.path.insert(0, os.path.join(REPO, "src"))
    from caffe2ops.runtime.schema import registered_types

    return set(registered_types())


def uses_our_operator(path: str, ops: set[str]) -> bool:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if path.endswith("gradient_clipping_test.py"):
        return "GradientClipping" in text
    if "Python" in ops and re.search(r"CreatePythonOperator|\.Python\(", text):
        return True
    return any(re.search(rf"[\"']{re.escape(op)}[\"']|\.{re.escape(op)}\(", text) for op in ops)


def copy_tests(caffe2_dir: str, workdir: str, ops: set[str]) -> list[str]:
    """Copy the suite's files and their serialized zips into ``workdir``; returns the copies."""
    copied = []
    data_dir = os.path.join(workdir, "data", "operator_test")
    os.makedirs(data_dir)
    for rel in FILES:
        source = os.path.join(caffe2_dir, "python", rel)
        if not os.path.exists(source) or not uses_our_operator(source, ops):
            continue
        target = os.path.join(workdir, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy(source, target)
        copied.append(target)
        stem = os.path.basename(rel)[:-3]
        for zipped in glob.glob(os.path.join(caffe2_dir, "python", "serialized_test", "data",
                                             "operator_test", f"{stem}.*.zip")):
            shutil.copy(zipped, data_dir)
    return copied


def run_file(path: str, workdir: str, timeout: int) -> list[dict]:
    results_path = path + ".results.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(REPO, "src"), os.path.join(REPO, "tests"),
                                         env.get("PYTHONPATH", "")])
    env["CAFFE2_SUITE_RESULTS"] = results_path
    env["CAFFE2OPS_SERIALIZED_DIR"] = os.path.join(workdir, "data")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "caffe2_suite", "-p", "no:cacheprovider",
               "-c", os.path.join(workdir, "pytest.ini"), "--rootdir", workdir, path]
    try:
        proc = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return [{"test": os.path.basename(path), "outcome": "failed",
                 "detail": f"timed out after {timeout} s"}]
    if not os.path.exists(results_path):
        return [{"test": os.path.basename(path), "outcome": "failed",
                 "detail": _tail(proc.stdout + proc.stderr)}]
    with open(results_path) as f:
        return json.load(f)


def main(argv: list[str]) -> int:
    caffe2_dir = find_caffe2()
    if caffe2_dir is None:
        print("caffe2-suite: Caffe2 1.5.0 is not installed: no .venv-caffe2 with caffe2/python/"
              "operator_test here (create it with `make parity`, or set CAFFE2_SITE_PACKAGES to "
              "the site-packages holding the torch==1.5.0 wheel's caffe2 package)",
              file=sys.stderr)
        return 2
    verbose = "-v" in argv
    ops = registered_operators()
    workdir = tempfile.mkdtemp(prefix="caffe2-suite-")
    try:
        with open(os.path.join(workdir, "pytest.ini"), "w") as f:
            f.write("[pytest]\n")
        files = copy_tests(caffe2_dir, workdir, ops)
        print(f"caffe2-suite: {len(files)} Caffe2 test files from {caffe2_dir}, run against "
              f"caffe2ops from {os.path.join(REPO, 'src')}")
        rows, totals, failures = [], {"passed": 0, "failed": 0, "out of scope": 0, "skipped": 0}, []
        for path in files:
            results = run_file(path, workdir, timeout=900)
            counts = {k: 0 for k in totals}
            reasons = set()
            for r in results:
                counts[r["outcome"]] += 1
                if r["outcome"] == "out of scope":
                    reasons.add(r["detail"])
                elif r["outcome"] == "failed":
                    failures.append(f"{r['test']}: {r['detail']}")
            for k in totals:
                totals[k] += counts[k]
            rel = os.path.relpath(path, workdir)
            rows.append((rel, counts, sorted(reasons)))
            if verbose:
                for r in results:
                    print(f"  {r['outcome']:>12}  {r['test']}  {r['detail']}")
        width = max(len(r[0]) for r in rows) if rows else 10
        print(f"\n{'file':<{width}}  passed  failed  out-of-scope  skipped  out of scope because")
        for rel, counts, reasons in rows:
            missing = "; ".join(reasons)
            print(f"{rel:<{width}}  {counts['passed']:>6}  {counts['failed']:>6}  "
                  f"{counts['out of scope']:>12}  {counts['skipped']:>7}  {missing}")
        print(f"{'total':<{width}}  {totals['passed']:>6}  {totals['failed']:>6}  "
              f"{totals['out of scope']:>12}  {totals['skipped']:>7}")
        in_scope = totals["passed"] + totals["failed"]
        print(f"\nin scope: {totals['passed']} of {in_scope} pass")
        for line in failures:
            print(f"FAILED {line}")
        return 1 if totals["failed"] else 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
