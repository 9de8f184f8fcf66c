"""Exceptions raised by operators and the runtime.

Every error an operator raises is an :class:`OperatorError` (a ``RuntimeError``, as Caffe2 raised
at run time); the subclasses also derive from the Python exception a caller would expect, so
``except TypeError`` works for a wrong dtype and ``except IndexError`` for an index out of range.
"""

from __future__ import annotations


class OperatorError(RuntimeError):
    """An operator or the runtime refused its inputs, arguments or definition."""


class OperatorTypeError(OperatorError, TypeError):
    """Wrong element type or argument type."""


class OperatorValueError(OperatorError, ValueError):
    """Wrong shape, element count or argument value."""


class OperatorIndexError(OperatorError, IndexError):
    """An index input points outside the indexed tensor."""


class SchemaError(OperatorError):
    """An OperatorDef does not fit its operator's schema (input/output counts, in-place pairs)."""


class UnknownOperatorError(OperatorError, KeyError):
    """No operator of that type is registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class BlobNotFoundError(OperatorError, KeyError):
    """A blob is not in the workspace."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""
