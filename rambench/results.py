"""A loaded study (`ResultSet`): records read once from the store, derived frames cached.

The one type that the API returns (`rambench.load`, `rambench.benchmark`) and that the
command line and the report read.

Its records are read once from the store (`ResultSet.read`); the frames every reader derives
from them (tidy rows, per-cell scores, per-sample correctness) are computed once, on first
use, and cached. The records are not meant to change afterwards.

This module sits below the report: it never imports `rambench.report` or the command line.
`ResultSet.table` is served by the report's table views, which register themselves here
(`serve_tables`) when `rambench.report.views` is imported (`rambench.api` imports it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from rambench.bundle import read as read_bundle
from rambench.errors import UsageError
from rambench.identity import format_value, split_adaptation
from rambench.metrics import (
    DEFAULT_REFERENCE,
    DuplicateCellError,
    MissingReferenceError,
    scores,
)
from rambench.metrics.frame import tidy_frame
from rambench.schema import Record
from rambench.store import Store

# the method every other is compared with when none is given (and the study has it)
DEFAULT_AGAINST = "raml"


@dataclass
class ResultSet:
    """The current records of a study, with the frames and tables derived from them."""

    study: str
    root: Path
    records: list[Record]
    summary: Any = None  # a `rambench.api.RunSummary`, set by `benchmark`
    stale: int = 0  # records of earlier code or settings, left out
    settings: dict[str, Any] = field(default_factory=dict)  # the study's reference / against

    @classmethod
    def read(cls, store: Store, coordinates: Collection[tuple] | None = None,
             summary: Any = None) -> ResultSet:
        """The study's current records, read once (in key order); with `coordinates`, only
        the records of those cells (`Record.coordinates`)."""
        index = store.index()

        def wanted(record: Record) -> bool:
            return coordinates is None or record.coordinates in coordinates

        records = sorted((r for r in index.current.values() if wanted(r)), key=lambda r: r.key)
        return cls(store.study, store.root, records, summary,
                   sum(1 for r in index.stale if wanted(r)), store.settings)

    @classmethod
    def from_bundle(cls, path: str | Path) -> ResultSet:
        """The records of a result bundle (`rambench bundle`; `rambench.bundle`), verified
        first: a UsageError names a record or file that does not match the bundle's
        manifest. `root` is the bundle's folder, `settings` its study.yaml's `reference:`
        and `against:`; stale records are never bundled."""
        contents = read_bundle(path)
        return cls(contents.study, contents.path, contents.records,
                   settings=contents.settings)

    # -------------------------------------------------------------- derived, computed once

    @cached_property
    def _tidy(self) -> pd.DataFrame:
        return tidy_frame(self.records)

    @cached_property
    def _scores(self) -> pd.DataFrame:
        return scores(self._tidy)

    @cached_property
    def _correctness(self) -> pd.DataFrame:
        from rambench.stats import correctness

        return correctness(self.records)

    def tidy(self) -> pd.DataFrame:
        """One row per (cell, metric) with the public export columns (a copy: yours to
        change)."""
        return self._tidy.copy()

    def scores(self) -> pd.DataFrame:
        """One accuracy row per cell with `score` and `error` (`rambench.metrics.scores`);
        DuplicateCellError if a cell occurs twice."""
        return self._scores.copy()

    def correctness(self) -> pd.DataFrame:
        """One row per record with its per-sample `correct` array
        (`rambench.stats.correctness`)."""
        return self._correctness.copy()

    @property
    def methods(self) -> list[str]:
        return sorted({r.method.label for r in self.records})

    @cached_property
    def mixed(self) -> list[str]:
        """Warnings when the rows were not all made alike or are not comparable with what
        they are named after: trained with different settings, computed in different
        numerics environments, or a paper's protocol run with synthetic stand-ins. Every
        table carries them."""
        return [note for note in (mixed_settings(self.records), mixed_numerics(self.records),
                                  synthetic_stand_ins(self.records)) if note]

    @property
    def notes(self) -> list[str]:
        """What a reader should know: what was left out (stale results), and whether the
        results come from more than one numerics environment."""
        notes = []
        if self.stale:
            notes.append(f"{self.stale} stale results (of earlier code or settings) are left "
                         "out; `rambench ls studies` lists them")
        notes += self.mixed
        adapted = sorted({r.method.label for r in self.records if r.method.adaptation})
        if adapted:
            pairs = "; ".join(f"{label} is {base} adapted by {adaptation}" for label in adapted
                              for base, adaptation in [split_adaptation(label)])
            notes.append(f"test-time adaptation: {pairs} (every cell from the trained "
                         "weights, on its unlabelled test stream)")
        return notes

    # -------------------------------------------------------------- names a user gives

    def check_method(self, name: str, option: str) -> str:
        """`name` if the study has that method, else a UsageError with the names it has."""
        from corruptions.registry import unknown_name_message

        if name not in self.methods:
            message = unknown_name_message("method", name, self.methods)
            # a plug-in's label is file:Class, a variant's name[...]: suggest it by its name
            labelled = [m for m in self.methods if m.startswith((f"{name}:", f"{name}["))]
            if labelled and "did you mean" not in message:
                message = message.replace(f"{name!r} Valid:",
                                          f"{name!r}; did you mean {labelled[0]!r}? Valid:")
            raise UsageError(f"{option}: {message} (the methods in study {self.study!r})")
        return name

    def against_for(self, name: str | None) -> str | None:
        """The method the others are tested against: a given name must exist; by default
        the study's setting (its grid's `against:`), else `DEFAULT_AGAINST` when the study
        has it, else none (no marks)."""
        if name is not None:
            return self.check_method(name, "--against")
        default = self.settings.get("against", DEFAULT_AGAINST)
        return default if default in self.methods else None

    def reference_for(self, name: str | None) -> str:
        """The reference method: a given name must exist; by default the study's setting
        (its grid's `reference:`), else `DEFAULT_REFERENCE`, which may be absent (the
        normalised metrics are then left out, with a note)."""
        if name is None:
            return self.settings.get("reference", DEFAULT_REFERENCE)
        return self.check_method(name, "--reference")

    # -------------------------------------------------------------- tables

    def table(self, view: str = "main", reference: str | None = None,
              against: str | None = None, score: str = "accuracy"):
        """A `rambench.report.table.Table` (render it with `.render('md'|'latex'|...)`).
        `reference`: the method normalising mCE (default: the study's `reference:`, else
        late_fusion), as `rambench table`; `against`: the method the others are tested
        against (default: none, no marks); `score`: accuracy, or macro_f1. Its notes
        start with the study's warnings about rows not made alike (`mixed`)."""
        if _TABLES is None:
            raise RuntimeError("ResultSet.table needs the report's table views: import "
                               "rambench.report.views (rambench.api does)")
        reference = self.reference_for(reference)
        with user_errors():
            table = _TABLES(view, self.tidy(), self.correctness(), reference, against,
                            score=score)
        return self.with_warnings(table)

    def with_warnings(self, table):
        """`table` with the study's warnings about rows not made alike (`mixed`) leading
        its notes (each note once)."""
        table.notes = list(dict.fromkeys([*self.mixed, *table.notes]))
        return table

    def __repr__(self) -> str:
        return (f"ResultSet(study={self.study!r}, records={len(self.records)}, "
                f"methods={self.methods})")


def open_study(store: Store) -> ResultSet:
    """The study for the report commands: UsageError if it has no results or a cell
    twice."""
    results = ResultSet.read(store)
    tidy = results._tidy
    if tidy.empty or not (tidy["metric"] == "accuracy").any():
        raise no_results(store)
    with user_errors():
        results.scores()  # checks that every cell occurs once
    return results


def synthetic_stand_ins(records: Collection[Record]) -> str | None:
    """A warning naming the events of a paper's protocol (AVRobustBench) whose recordings or
    cut-outs were replaced by synthetic stand-ins (no `av.noise_dir`), else None: their
    numbers are not comparable with the paper's."""
    events = sorted({r.condition.event for r in records if r.condition.kind == "av" and any(
        any(side.get("synthetic", ())) for side in r.details.get("drawn", {}).values())})
    if not events:
        return None
    return (f"{', '.join(events)}: synthetic stand-ins for AVRobustBench's recordings and "
            "cut-outs (no av.noise_dir), so these numbers are NOT comparable with "
            "AVRobustBench's; give its corruptions/audio_corruptions/ folder as av.noise_dir")


def mixed_settings(records: Collection[Record]) -> str | None:
    """A warning naming each training setting whose value differs between the methods (or
    seeds) of `records`, with the methods behind each value, else None."""
    found: dict[str, dict[str, set[str]]] = {}  # setting -> value -> method labels
    for r in records:
        for name, value in r.train_config.items():
            found.setdefault(name, {}).setdefault(format_value(value), set()).add(r.method.label)
    differing = {name: values for name, values in found.items() if len(values) > 1}
    if not differing:
        return None

    def who(labels: set[str]) -> str:
        return ", ".join(sorted(labels)) if len(labels) <= 4 else f"{len(labels)} methods"

    listed = "; ".join(f"{name} " + ", ".join(f"{value} ({who(labels)})"
                                              for value, labels in sorted(values.items()))
                       for name, values in sorted(differing.items()))
    return (f"the rows were trained with different settings: {listed}; rerun them with the "
            "same settings (one `rambench run` of every method) to compare like with like")


def mixed_numerics(records: Collection[Record]) -> str | None:
    """A warning when `records` come from more than one numerics environment, else None."""
    found = Counter(r.numerics for r in records)
    if len(found) < 2:
        return None
    listed = "; ".join(f"{n} from [{env}]" for env, n in found.most_common())
    return (f"the results come from {len(found)} numerics environments ({listed}): their "
            "last digits may differ for that alone; rerun with --force in one to compare "
            "bit for bit")


def no_results(store: Store) -> UsageError:
    """The error for a study with nothing to show, naming its damaged records, if any."""
    if not store.invalid:
        return UsageError(f"study {store.study!r} has no results yet under {store.root}")
    path, why = store.invalid[0]
    return UsageError(
        f"study {store.study!r} has no readable results: {len(store.invalid)} damaged "
        f"record(s), e.g. {path} ({why}); `{recompute_command(store)}` recomputes them")


def recompute_command(store: Store) -> str:
    """The command that recomputes a study's missing or damaged cells."""
    return f"rambench run --study {store.study} --out {store.root.parent}"


@contextmanager
def user_errors() -> Iterator[None]:
    """Turns a missing reference cell or a duplicated cell into a UsageError (exit 2)."""
    try:
        yield
    except (MissingReferenceError, DuplicateCellError) as err:
        raise UsageError(str(err)) from None


# (view, tidy, correctness, reference, against) -> Table; set by rambench.report.views
_TABLES: Callable[..., Any] | None = None


def serve_tables(build: Callable[..., Any]) -> None:
    """Called by `rambench.report.views` on import: the builder behind `ResultSet.table`."""
    global _TABLES
    _TABLES = build
