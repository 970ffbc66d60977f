"""Errors a user can fix: the CLI prints them without a traceback and exits with 2."""

from __future__ import annotations

import sysconfig
import traceback
from pathlib import Path


class UsageError(Exception):
    """Bad input from the user (a name, a value, a file); the message says how to fix it."""


class TrainingError(Exception):
    """A training job failed (a non-finite loss, or the method raised); nothing was stored
    for it, and a later run retries it. `detail`: the traceback of the method's own error,
    for the run's log and `-v` ("" when there is none)."""

    def __init__(self, message: str, detail: str = ""):
        super().__init__(message)
        self.detail = detail


def error_location(err: BaseException) -> str:
    """' (at mine.py:42, in training_loss)': the innermost frame of `err`'s traceback in
    code outside torch and the standard library (a method's own code, or rambench's); ''
    if there is none."""
    import torch

    library = (str(Path(torch.__file__).parent), sysconfig.get_paths()["stdlib"])
    frames = [f for f in traceback.extract_tb(err.__traceback__)
              if not f.filename.startswith(library)]
    if not frames:
        return ""
    frame = frames[-1]
    return f" (at {Path(frame.filename).name}:{frame.lineno}, in {frame.name})"
