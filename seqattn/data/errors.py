"""The one error every reader and check raises for input a person can fix.

A module of its own, below everything else in ``seqattn.data``, so that the
``Dataset`` type, the feature groups and every reader can raise it without
importing each other.
"""
from __future__ import annotations


class DataError(ValueError):
    """Input data that cannot be used, with a message that says how to fix it."""
