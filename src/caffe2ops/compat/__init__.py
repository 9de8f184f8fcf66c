"""The opt-in ``caffe2`` import alias: ``caffe2.python.*`` and ``caffe2.proto.*`` -> caffe2ops.

Nothing is installed by ``import caffe2ops``; call :func:`install` (or run a script with
``python -m caffe2ops.compat script.py [args]``) and an unmodified Caffe2 script's imports resolve
to caffe2ops::

    import caffe2ops.compat
    caffe2ops.compat.install()
    from caffe2.python import core, workspace          # caffe2ops.core, caffe2ops.workspace
    from caffe2.proto import caffe2_pb2                 # caffe2ops.proto.caffe2_pb2

Each alias is the caffe2ops module itself (``caffe2.python.core is caffe2ops.core``), never a
copy. :data:`ALIASES` lists them; an alias whose caffe2ops module does not exist (yet) raises
``ModuleNotFoundError`` naming the Caffe2 module when imported, as does any other ``caffe2.*``
name: caffe2ops has no counterpart for it. :func:`uninstall` removes the alias again.

>>> import sys
>>> install()
>>> import caffe2.python.core
>>> import caffe2ops.core
>>> caffe2.python.core is caffe2ops.core
True
>>> uninstall()
>>> "caffe2.python.core" in sys.modules
False
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types

# Caffe2 module -> caffe2ops module (imported when the Caffe2 name is).
ALIASES = {
    "caffe2.python.core": "caffe2ops.core",
    "caffe2.python.workspace": "caffe2ops.workspace",
    "caffe2.python.caffe2_pybind11_state": "caffe2ops.pybind_state",
    "caffe2.python.gradient_checker": "caffe2ops.gradient_checker",
    "caffe2.python.device_checker": "caffe2ops.device_checker",
    "caffe2.python.test_util": "caffe2ops.testing.test_util",
    "caffe2.python.hypothesis_test_util": "caffe2ops.testing.hypothesis_test_util",
    "caffe2.python.serialized_test.serialized_test_util":
        "caffe2ops.testing.serialized_test_util",
    "caffe2.python.regularizer": "caffe2ops.regularizer",
    "caffe2.python.model_helper": "caffe2ops.model_helper",
    "caffe2.python.brew": "caffe2ops.brew",
    "caffe2.python.optimizer": "caffe2ops.optimizer",
    "caffe2.python.predictor_constants": "caffe2ops.predictor.predictor_constants",
}
# Caffe2 package -> caffe2ops package: every submodule maps by the same relative name.
PACKAGE_ALIASES = {
    "caffe2.proto": "caffe2ops.proto",
    "caffe2.python.modeling": "caffe2ops.modeling",
    "caffe2.python.predictor": "caffe2ops.predictor",
}
# Packages that exist only to hold the aliases above.
NAMESPACES = ("caffe2", "caffe2.python", "caffe2.python.serialized_test")


def target_of(name: str) -> str | None:
    """The caffe2ops module a Caffe2 module name stands for, or None."""
    if name in ALIASES:
        return ALIASES[name]
    for package, target in PACKAGE_ALIASES.items():
        if name == package or name.startswith(package + "."):
            return target + name[len(package):]
    return None


def _is_caffe2_name(name: str) -> bool:
    return name == "caffe2" or name.startswith("caffe2.")


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str | None) -> None:
        self.target = target

    def create_module(self, spec):
        if self.target is None:
            module = types.ModuleType(spec.name, "caffe2ops.compat namespace for Caffe2 imports")
            module.__path__ = []
            return module
        return importlib.import_module(self.target)

    def exec_module(self, module) -> None:
        pass


class _AliasFinder(importlib.abc.MetaPathFinder):
    """Resolves ``caffe2`` and ``caffe2.*`` through :data:`ALIASES` (see the module doc)."""

    def find_spec(self, fullname, path=None, target=None):
        if not _is_caffe2_name(fullname):
            return None
        if fullname in NAMESPACES:
            return importlib.machinery.ModuleSpec(fullname, _AliasLoader(None), is_package=True)
        module = target_of(fullname)
        if module is None or importlib.util.find_spec(module) is None:
            have = f" ({module} does not exist)" if module else ""
            raise ModuleNotFoundError(
                f"No module named '{fullname}': caffe2ops.compat has no counterpart{have}",
                name=module or fullname,
            )
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(module))


_finder = _AliasFinder()


def installed() -> bool:
    return _finder in sys.meta_path


def install() -> None:
    """Make ``caffe2.*`` imports resolve to caffe2ops (idempotent)."""
    if _is_caffe2_name(next((n for n in sys.modules if _is_caffe2_name(n)), "")) \
            and not installed():
        loaded = sorted(n for n in sys.modules if _is_caffe2_name(n))
        raise RuntimeError(f"caffe2ops.compat.install: real Caffe2 modules are already imported "
                           f"({', '.join(loaded[:3])}...); install the alias before importing "
                           "caffe2")
    if not installed():
        sys.meta_path.insert(0, _finder)


def uninstall() -> None:
    """Remove the alias and forget the ``caffe2.*`` modules it made."""
    if installed():
        sys.meta_path.remove(_finder)
    for name in [n for n in sys.modules if _is_caffe2_name(n)]:
        del sys.modules[name]
