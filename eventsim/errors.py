"""The exception types a user of eventsim meets.

Every one is a subclass of a built-in type (``ValueError`` or ``Exception``), so code that
catches the built-in keeps working. The command line prints a :class:`UserError` (and any
``ValueError`` from reading a user's file) as one line, without a traceback.
"""
from __future__ import annotations

__all__ = ["UserError", "CheckpointError", "UnsafeCheckpointError"]


class UserError(Exception):
    """An error caused by the user's input: printed as one line."""


class CheckpointError(ValueError):
    """A checkpoint file is malformed, truncated, inconsistent or not a PyTorch file."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint asks for a Python global outside the allow-list; nothing was executed."""
