"""Loading a stored study for the report commands, with errors a user can act on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pandas as pd

from rambench.errors import UsageError
from rambench.metrics import (
    DEFAULT_REFERENCE,
    DuplicateCellError,
    MissingReferenceError,
    scores,
)
from rambench.report import DEFAULT_AGAINST
from rambench.schema import Record


@dataclass
class Study:
    name: str
    tidy: pd.DataFrame
    records: list[Record]
    stale: int = 0  # records of earlier code or settings, left out
    settings: dict = field(default_factory=dict)  # the study's reference / against (grid)

    @property
    def notes(self) -> list[str]:
        if not self.stale:
            return []
        return [f"{self.stale} stale results (of earlier code or settings) are left out; "
                "`rambench ls studies` lists them"]

    @property
    def methods(self) -> list[str]:
        return sorted(scores(self.tidy)["method"].unique()) if not self.tidy.empty else []

    def correctness(self) -> pd.DataFrame:
        from rambench.stats import correctness

        return correctness(self.records)


def load(store) -> Study:
    """The study's tidy table and records; UsageError if it has no results or a cell twice."""
    from rambench.metrics.frame import tidy_frame

    index = store.index()
    records = sorted(index.current.values(), key=lambda r: r.key)
    tidy = tidy_frame(records)
    if tidy.empty or not (tidy["metric"] == "accuracy").any():
        raise UsageError(f"study {store.study!r} has no results yet under {store.root}")
    with user_errors():
        scores(tidy)  # checks that every cell occurs once
    return Study(store.study, tidy, records, len(index.stale), store.settings)


def check_method(study: Study, name: str, option: str) -> str:
    """`name` if the study has that method, else a UsageError with the names it has."""
    from corruptions.registry import unknown_name_message

    if name not in study.methods:
        raise UsageError(f"{option}: " + unknown_name_message("method", name, study.methods)
                         + f" (the methods in study {study.name!r})")
    return name


def against_for(study: Study, name: str | None) -> str | None:
    """The method the others are tested against: a given name must exist; by default the
    study's setting (its grid's `against:`), else `DEFAULT_AGAINST` when the study has it,
    else none (no marks)."""
    if name is not None:
        return check_method(study, name, "--against")
    default = study.settings.get("against", DEFAULT_AGAINST)
    return default if default in study.methods else None


def reference_for(study: Study, name: str | None) -> str:
    """The reference method: a given name must exist; the default may be absent (the
    normalised metrics are then left out, with a note)."""
    if name is None:
        return study.settings.get("reference", DEFAULT_REFERENCE)
    return check_method(study, name, "--reference")


@contextmanager
def user_errors() -> Iterator[None]:
    """Turns a missing reference cell or a duplicated cell into a UsageError (exit 2)."""
    try:
        yield
    except (MissingReferenceError, DuplicateCellError) as err:
        raise UsageError(str(err)) from None
