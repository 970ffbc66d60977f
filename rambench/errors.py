"""Errors a user can fix: the CLI prints them without a traceback and exits with 2."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input from the user (a name, a value, a file); the message says how to fix it."""


class TrainingError(Exception):
    """A training job failed (a non-finite loss, or the method raised); nothing was stored
    for it, and a later run retries it."""
