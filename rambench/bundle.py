"""Result bundles: a study's current records packed into a folder that is committed to git,
read back as the study it came from, and re-run to check it.

`rambench bundle --study S --to results/NAME` writes four files, and nothing that can drift
(no time, no path of the machine that packed it):

* ``study.yaml``: the study's settings (its study file, without the comment line that names
  where it was run): what `rambench reproduce` runs again;
* ``records.jsonl.xz``: the current records, one JSON line each as the store holds them
  (`Record.to_json` with its checksum; keys sorted, no spaces), in key order, xz-compressed
  (smaller than gzip by a fifth on records, whose per-sample arrays are already
  zlib-packed; the xz format has no time stamp). Stale records are left out;
* ``manifest.json``: the bundle format, the study's name, each record's key, coordinates
  and the sha256 of its line, the sha256 of study.yaml, counts, the rambench version and
  git commit that packed it, and the records' numerics environments (`Record.numerics`)
  and code versions;
* ``.gitignore``: tracks these four files and nothing else written there later (reports,
  figures and exports of `--from`).

Packing is deterministic: the same records and the same packing code give byte-identical
files. `read` verifies a bundle before anything is read from it (a record whose line does
not match its sha256 in the manifest, a record missing or added, an edited study.yaml: a
UsageError naming it); `rambench.results.ResultSet.from_bundle` makes the `ResultSet` of
its records, so every table and figure comes from the bundle as from the study folder.

`compare` is what `rambench reproduce` prints: the bundle's values against a re-run's, per
cell and per summary value (each method's columns of the main table), each with its
**noise band**, ±2σ where σ is the larger of

* the spread over seeds: the sample standard deviation of the value over the study's seeds
  (per seed: a cell's accuracy, or a column's per-seed value), the smaller of the bundle's
  and the re-run's when both have two seeds or more (one altered stored value widens the
  bundle's spread, never the re-run's); none with one seed;
* the binomial standard error of an accuracy on the test set, sqrt(p(1 - p) / n), p the
  stored accuracy and n the test samples; for a column that is not an accuracy (mCE, a
  ratio of errors), the same relative to the error: value x sqrt(p(1 - p) / n) / (1 - p),
  p the method's mean stored accuracy over its cells.

So with one seed the band is the binomial one, and with several it never falls below it.
A re-run on a debug subset of another size (`--limit`) sees other data: its values are
listed, not judged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import lzma
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from rambench._fs import atomic_write_bytes
from rambench._version import __version__
from rambench.errors import UsageError
from rambench.schema import Record, numerics_of
from rambench.store import Store, check_writable

if TYPE_CHECKING:
    from rambench.results import ResultSet

FORMAT = 1
MANIFEST = "manifest.json"
STUDY_FILE = "study.yaml"
RECORDS_FILE = "records.jsonl.xz"
GITIGNORE = ".gitignore"
FILES = (GITIGNORE, MANIFEST, RECORDS_FILE, STUDY_FILE)
GITIGNORE_TEXT = (
    "# a rambench result bundle (rambench bundle): these files are tracked; what commands\n"
    "# reading it with --from write here (plots, reports, exports) is not\n"
    "*\n" + "".join(f"!{name}\n" for name in FILES))
XZ_PRESET = 9


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _line(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def _dump_manifest(manifest: dict[str, Any]) -> bytes:
    """The manifest as JSON, keys sorted, its records last and one per line (a re-packed
    record is one changed line in a diff)."""
    head = json.dumps({k: v for k, v in manifest.items() if k != "records"}, indent=1,
                      sort_keys=True)
    rows = ",\n".join("  " + json.dumps(e, sort_keys=True) for e in manifest["records"])
    return (head[:-2] + ',\n "records": [\n' + rows + "\n ]\n}\n").encode()


@dataclass(frozen=True)
class Contents:
    """What a bundle folder holds, verified: its manifest, study file and records."""

    path: Path
    manifest: dict[str, Any]
    study_text: str
    records: list[Record]

    @property
    def study(self) -> str:
        return str(self.manifest["study"])

    @property
    def settings(self) -> dict[str, Any]:
        """The study's reference and compared methods (`reference:` and `against:`)."""
        data = yaml.safe_load(self.study_text) or {}
        return {k: data[k] for k in ("reference", "against") if data.get(k)}


# ---------------------------------------------------------------------------------- pack


def _study_text(store: Store) -> str:
    path = store.root / STUDY_FILE
    if not path.is_file():
        raise UsageError(f"study {store.study!r} has no {STUDY_FILE} under {store.root} (made by "
                         "an earlier rambench, or through the API with a class object); "
                         f"`rambench run --study {store.study} --out {store.root.parent}` "
                         "with its methods named writes it")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return (f"# the study of a rambench bundle of study {store.study!r}: `rambench reproduce "
            "BUNDLE` runs it again\n" + yaml.safe_dump(data, sort_keys=False))


def _environments(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The distinct numerics environments of the records (`rambench.schema.numerics_of`),
    each with its number of records."""
    found = Counter(numerics_of(r.get("provenance") or {}) for r in records)
    return [{"numerics": k, "records": n} for k, n in sorted(found.items())]


def _check_target(to: Path, store: Store) -> None:
    if to.resolve() == store.root.resolve() or store.root.resolve() in to.resolve().parents:
        raise UsageError(f"--to {to}: inside the study folder {store.root}; a bundle goes "
                         "to a folder of its own, e.g. results/NAME")
    if to.exists() and not to.is_dir():
        raise UsageError(f"--to {to}: a file; a bundle is a folder")
    if to.is_dir() and any(to.iterdir()) and not (to / MANIFEST).is_file():
        raise UsageError(f"--to {to}: a folder that holds files and no bundle "
                         f"({MANIFEST}); choose an empty or new folder")


def pack(store: Store, to: str | Path, commit: str | None) -> dict[str, Any]:
    """Pack `store`'s current records and study file into the folder `to` (created, or a
    bundle there re-packed); `commit`: the git commit of the packing code
    (`rambench.provenance.git_commit()`). Returns the manifest. UsageError for a study
    without results, with damaged records or without a study.yaml."""
    to = Path(to)
    _check_target(to, store)
    if not store.records_dir.is_dir():
        raise UsageError(f"no study {store.study!r} under {store.root.parent}/")
    index = store.index()
    if store.invalid:
        path, why = store.invalid[0]
        raise UsageError(f"study {store.study!r} has {len(store.invalid)} damaged record(s), "
                         f"e.g. {path} ({why}); `rambench run --study {store.study} --out "
                         f"{store.root.parent}` recomputes them before it is bundled")
    current = sorted(index.current.values(), key=lambda r: r.key)
    if not current:
        raise UsageError(f"study {store.study!r} has no results yet under {store.root}")
    study_text = _study_text(store)
    raw = [json.loads(store.record_path(r.key).read_text()) for r in current]
    lines = [_line(d) for d in raw]
    manifest = {
        "format": FORMAT,
        "study": store.study,
        "packed_by": {"rambench": __version__, "git_commit": commit},
        "study_sha256": _sha256(study_text.encode()),
        "counts": {"records": len(current), "stale_left_out": len(index.stale),
                   "methods": len({r.method.label for r in current}),
                   "seeds": len({r.seed for r in current}),
                   "conditions": len({r.condition.label for r in current})},
        "datasets": sorted({r.dataset_version for r in current}),
        "methods": sorted({r.method.label for r in current}),
        "seeds": sorted({r.seed for r in current}),
        "environments": _environments(raw),
        "code_versions": dict(sorted(Counter(str((d.get("provenance") or {}).get(
            "code_version")) for d in raw).items())),
        "records": [{"key": r.key, "method": r.method.label, "seed": r.seed,
                     "condition": r.condition.label, "sha256": _sha256(line)}
                    for r, line in zip(current, lines, strict=True)],
    }
    data = b"".join(line + b"\n" for line in lines)
    check_writable(to, "the bundle", "--to FOLDER")
    atomic_write_bytes(to / RECORDS_FILE, lzma.compress(data, format=lzma.FORMAT_XZ,
                                                        check=lzma.CHECK_CRC64,
                                                        preset=XZ_PRESET))
    atomic_write_bytes(to / STUDY_FILE, study_text.encode())
    atomic_write_bytes(to / GITIGNORE, GITIGNORE_TEXT.encode())
    atomic_write_bytes(to / MANIFEST, _dump_manifest(manifest))  # last: then it is whole
    return manifest


# --------------------------------------------------------------------------- read, verify


def bundles_under(folder: Path) -> list[str]:
    return sorted(str(p.parent) for p in folder.glob(f"*/{MANIFEST}")) \
        if folder.is_dir() else []


def read(path: str | Path) -> Contents:
    """The bundle at `path`, verified (see `verify`); UsageError (one line, naming the
    bundle and the record or file) if it is not a sound bundle."""
    return _read(Path(path), first_only=True)[0]  # type: ignore[return-value]


def verify(path: str | Path) -> list[str]:
    """Every problem of the bundle at `path` (empty when it is sound): files missing or
    unreadable, a study.yaml or a record that does not match its sha256 in the manifest,
    records missing from it or added to it."""
    return _read(Path(path), first_only=False)[1]


def _read(path: Path, first_only: bool) -> tuple[Contents | None, list[str]]:
    problems: list[str] = []

    def problem(text: str) -> None:
        if first_only:
            raise UsageError(f"bundle {path}: {text}")
        problems.append(text)

    if not (path / MANIFEST).is_file():
        others = bundles_under(path.parent)
        raise UsageError(f"{path}: not a rambench bundle (no {MANIFEST}); "
                         + (f"bundles there: {', '.join(others)}" if others else
                            "`rambench bundle --study S --to FOLDER` makes one"))
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        version = manifest["format"]
        entries = {e["key"]: e for e in manifest["records"]}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UsageError(f"bundle {path}: unreadable {MANIFEST} ({err})") from None
    if not isinstance(version, int) or version > FORMAT:
        raise UsageError(f"bundle {path}: format {version!r} is newer than this rambench reads "
                         f"({FORMAT}); upgrade rambench")
    try:
        study_text = (path / STUDY_FILE).read_text(encoding="utf-8")
        data = lzma.decompress((path / RECORDS_FILE).read_bytes())
    except (OSError, UnicodeDecodeError, lzma.LZMAError) as err:
        raise UsageError(f"bundle {path}: unreadable {STUDY_FILE} or {RECORDS_FILE} "
                         f"({err})") from None
    if _sha256(study_text.encode()) != manifest.get("study_sha256"):
        problem(f"{STUDY_FILE} does not match its sha256 in {MANIFEST} (edited or damaged)")
    records, seen = [], set()
    for number, line in enumerate(data.splitlines(), 1):
        try:
            raw = json.loads(line)
            key = raw["key"]
        except (ValueError, KeyError, TypeError):
            problem(f"line {number} of {RECORDS_FILE} is not a record")
            continue
        entry = entries.get(key)
        if entry is None:
            problem(f"record {key} is not in {MANIFEST} (added after packing)")
            continue
        seen.add(key)
        if _sha256(line) != entry.get("sha256"):
            problem(f"record {key} ({entry.get('method')}, seed {entry.get('seed')}, "
                    f"{entry.get('condition')}) does not match its sha256 in {MANIFEST} "
                    "(edited or damaged)")
            continue
        try:
            records.append(Record.from_json(raw))
        except (ValueError, KeyError, TypeError) as err:
            problem(f"record {key} cannot be read ({err})")
    for key in entries.keys() - seen:
        entry = entries[key]
        problem(f"record {key} ({entry.get('method')}, seed {entry.get('seed')}, "
                f"{entry.get('condition')}) of {MANIFEST} is missing from {RECORDS_FILE}")
    if problems:
        return None, problems
    return Contents(path, manifest, study_text, sorted(records, key=lambda r: r.key)), []


# ---------------------------------------------------------------------------- reproduce

BAND_RULE = ("noise band: ±2σ, σ the larger of the spread over seeds (the smaller of the "
             "bundle's and the re-run's) and the binomial standard error sqrt(p(1-p)/n)")


@dataclass
class Row:
    """One value compared: a cell's accuracy or a method's summary column (display units)."""

    method: str
    name: str  # the cell's condition, or the summary column
    seed: int | None  # None for a summary value
    stored: float
    new: float
    band: float
    within: bool | None  # None: not judged (other data: --limit)

    @property
    def diff(self) -> float:
        return self.new - self.stored

    @property
    def label(self) -> str:
        return f"{self.method} seed {self.seed} {self.name}" if self.seed is not None \
            else f"{self.method} {self.name}"

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "diff": self.diff}


@dataclass
class Comparison:
    """A bundle's values against a re-run's (`rambench reproduce`)."""

    bundle: str
    rerun: str
    seeds: list[int]
    comparable: bool
    note: str = ""  # why the values are not judged
    cells: list[Row] = field(default_factory=list)
    summary: list[Row] = field(default_factory=list)
    run: Any = None  # the re-run's ResultSet

    @property
    def beyond(self) -> list[Row]:
        """The summary values that moved beyond their noise band (or are missing)."""
        return [r for r in self.summary if r.within is False]

    @property
    def cells_beyond(self) -> list[Row]:
        return [r for r in self.cells if r.within is False]

    def lines(self) -> list[str]:
        """The comparison for people: two tables and the verdict."""
        def table(rows: list[Row], head: str) -> list[str]:
            out = [f"| {head} | stored | new | diff | band | |",
                   "|" + "---|" * (head.count("|") + 1) + "---:|---:|---:|---:|---|"]
            for r in rows:
                where = " | ".join([r.method, *([str(r.seed)] if r.seed is not None else []),
                                    r.name])
                band = f"±{r.band:.2f}" if r.within is not None else "n/a"
                verdict = {True: "within", False: "BEYOND", None: "not judged"}[r.within]
                out.append(f"| {where} | {r.stored:.2f} | {r.new:.2f} | {r.diff:+.2f} | "
                           f"{band} | {verdict} |")
            return out

        lines = [f"bundle {self.bundle} re-run in {self.rerun} (seeds "
                 f"{', '.join(map(str, self.seeds))})"]
        lines.append(self.note if not self.comparable else BAND_RULE)
        lines += ["", "cells (accuracy, %):", ""]
        lines += table(self.cells, "method | seed | condition")
        lines += ["", "summary (the main table's columns, per method):", ""]
        lines += table(self.summary, "method | column")
        lines.append("")
        lines.append(self.verdict())
        return lines

    def verdict(self) -> str:
        if not self.comparable:
            return "values not judged: " + self.note
        if not self.beyond:
            return (f"reproduced: all {len(self.summary)} summary values are within their "
                    f"noise band ({len(self.cells_beyond)} of {len(self.cells)} cells beyond "
                    "theirs)")
        moved = "; ".join(f"{r.label} (stored {r.stored:.2f}, new {r.new:.2f}, band "
                          f"±{r.band:.2f})" for r in self.beyond)
        cells = ", ".join(r.label for r in self.cells_beyond) or "none"
        return (f"not reproduced: {len(self.beyond)} of {len(self.summary)} summary values "
                f"moved beyond their noise band: {moved}; cells beyond theirs: {cells}")

    def to_json(self) -> dict[str, Any]:
        return {"bundle": self.bundle, "rerun": self.rerun, "seeds": self.seeds,
                "comparable": self.comparable, "note": self.note,
                "reproduced": self.comparable and not self.beyond,
                "beyond": [r.label for r in self.beyond],
                "cells_beyond": [r.label for r in self.cells_beyond],
                "cells": [r.to_json() for r in self.cells],
                "summary": [r.to_json() for r in self.summary]}


def _std(values) -> float:
    """Sample standard deviation, NaN below two values."""
    values = [float(v) for v in values]
    if len(values) < 2:
        return math.nan
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _sigma(*spreads: float) -> float:
    """The smaller of the spreads that exist (0 when none does)."""
    known = [s for s in spreads if not math.isnan(s)]
    return min(known) if known else 0.0


def _binomial(p: float, n: float) -> float:
    return math.sqrt(max(p * (1 - p), 0.0) / n) if n > 0 else 0.0


def _judge(stored: float, new: float, band: float, comparable: bool) -> bool | None:
    if not comparable:
        return None
    if math.isnan(new) or math.isnan(stored):
        return False
    return abs(new - stored) <= band + 1e-9


def compare(stored: ResultSet, new: ResultSet, seeds: list[int], comparable: bool = True,
            note: str = "", rerun: str = "") -> Comparison:
    """The bundle's values (`stored`, restricted to `seeds`) against a re-run's (`new`),
    each with its noise band (the module docstring's rule); `comparable`: the re-run saw the
    same data (no other `--limit`), else every value is listed and none judged."""
    seeds = sorted(seeds)
    subset = dataclasses.replace(stored, records=[r for r in stored.records
                                                  if r.seed in seeds])
    comparison = Comparison(str(stored.root), rerun or str(new.root), seeds, comparable,
                            note)
    old, now = stored.scores(), new.scores()
    cell = ["method", "condition"]
    spread_old = old.groupby(cell)["score"].apply(_std)
    spread_new = now.groupby(cell)["score"].apply(_std)
    values = {(r.method, r.seed, r.condition): float(r.score) for r in now.itertuples()}
    for r in old[old["seed"].isin(seeds)].itertuples():
        sigma = max(_sigma(spread_old.get((r.method, r.condition), math.nan),
                           spread_new.get((r.method, r.condition), math.nan)),
                    _binomial(r.score, r.n))
        value = values.get((r.method, r.seed, r.condition), math.nan)
        comparison.cells.append(Row(r.method, r.condition, int(r.seed), 100 * r.score,
                                    100 * value, 200 * sigma,
                                    _judge(r.score, value, 2 * sigma, comparable)))
    comparison.cells.sort(key=lambda r: (r.method, r.seed, r.name))
    whole, part, rerun_table = stored.table("main"), subset.table("main"), new.table("main")
    per_seed = {c.name: c for c in whole.spec}
    per_seed_new = {c.name: c for c in rerun_table.spec}
    accuracy = old[old["seed"].isin(seeds)].groupby("method")["score"].mean()
    samples = old.groupby("method")["n"].median()
    for method in part.rows:
        for column in part.columns:
            spec = per_seed[column]
            value = float(part.mean.loc[method, column])
            if math.isnan(value):
                continue
            try:
                fresh = float(rerun_table.mean.loc[method, column])
            except KeyError:
                fresh = math.nan
            spreads = [_std(c.per_seed[c.per_seed["method"] == method]["value"]) * c.scale
                       for c in (spec, per_seed_new.get(column)) if c is not None]
            n = float(samples.get(method, 0))
            if spec.higher_is_better:
                floor = _binomial(value / spec.scale, n) * spec.scale
            else:  # a ratio of errors (mCE): the binomial error relative to the error
                p = float(accuracy.get(method, 1.0))
                floor = value * _binomial(p, n) / (1 - p) if p < 1 else 0.0
            sigma = max(_sigma(*spreads), floor)
            comparison.summary.append(Row(method, column, None, value, fresh, 2 * sigma,
                                          _judge(value, fresh, 2 * sigma, comparable)))
    return comparison
