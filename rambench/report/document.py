"""`rambench report`: every table (md, tex, csv), every figure (png, pdf) and one
self-contained report.html (inline CSS, figures as base64 PNG data URIs, no external
resources) with a leaderboard, the tables, the figures and the study's provenance.

The page is rendered from the Jinja2 template `templates/report.html.j2` (every value
autoescaped); this module gathers what it shows."""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from rambench import metrics
from rambench.report import FIGURE_KINDS, LEADERBOARD_METRICS, VIEWS, figures, style
from rambench.report.render import html_table, render, templates
from rambench.report.table import Table
from rambench.report.views import build_table
from rambench.results import ResultSet
from rambench.schema import Record

EXTENSIONS = {"md": "md", "latex": "tex", "csv": "csv"}
FIGURE_CAPTIONS = {
    "severity": "Accuracy vs severity (0 = clean), per corruption; mean over seeds.",
    "av": "Accuracy vs severity (0 = clean) of each audio-visual event, which corrupts the "
          "frames and the audio at once; mean over seeds.",
    "heatmap": "Accuracy drop from clean (percentage points) per method and corruption, "
               "mean over severities and seeds.",
    "missing": "Accuracy vs random missing rate (0 = clean); mean over seeds.",
    "families": "Accuracy per corruption family (mPC over the family's corruptions); error "
                "bars: bootstrap 95 % CI.",
    "calibration": "Reliability diagrams: accuracy against confidence in 15 equal-width bins, "
                   "clean (filled) and corrupted (open) test inputs pooled over cells and "
                   "seeds; the dotted diagonal is perfect calibration.",
    "redundancy": "Redundancy gap: accuracy minus the unimodal model of the intact modality "
                  "when a modality is corrupted (mPC averaging) or dropped; error bars: std "
                  "over seeds.",
}


def provenance(records: Sequence[Record]) -> dict[str, Any]:
    """What produced the records: code versions, packages, devices, grids, datasets."""
    prov = [r.provenance for r in records]
    packages: dict[str, Counter] = {}
    for p in prov:
        for name, version in (p.get("packages") or {}).items():
            packages.setdefault(name, Counter())[version] += 1
    grids = Counter(f"{(p.get('grid') or {}).get('name', '?')} "
                    f"(hash {(p.get('grid') or {}).get('hash', '?')})" for p in prov)
    return {
        "records": len(records),
        "methods": sorted({r.method.label for r in records}),
        "seeds": sorted({r.seed for r in records}),
        "datasets": Counter(f"{r.dataset} {r.dataset_version}".strip() for r in records),
        "method code": Counter(f"{r.method.label} {r.method.code or 'unrecorded'}"
                               for r in records),
        "code versions": Counter(p.get("code_version", "?") for p in prov),
        "devices": Counter(p.get("device", "?") for p in prov),
        "grids": grids,
        "packages": packages,
    }


def _counter_text(counter: Counter) -> str:
    return ", ".join(f"{k} ({v})" for k, v in counter.most_common())


def _provenance_facts(info: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [("records", str(info["records"])),
            ("methods", ", ".join(info["methods"])),
            ("seeds", ", ".join(map(str, info["seeds"]))),
            ("datasets", _counter_text(info["datasets"])),
            ("grid", _counter_text(info["grids"])),
            ("code versions", _counter_text(info["code versions"])),
            ("method code", _counter_text(info["method code"])),
            ("devices", _counter_text(info["devices"]))]
    for name, versions in sorted(info["packages"].items()):
        rows.append((f"package {name}", _counter_text(versions)))
    return rows


def setup(records: Sequence[Record]) -> dict[str, Any]:
    """How the study was run, from its records: data, conditions, methods, training."""
    jobs: dict[str, Record] = {}
    for r in records:
        jobs.setdefault(r.provenance.get("job_key", f"{r.method.label}/{r.seed}"), r)
    per_method: dict[str, dict[str, Any]] = {}
    for r in jobs.values():
        row = per_method.setdefault(r.method.label, {
            "family": r.method.family, "params": r.method.params, "train": {},
            "seeds": set(), "train_seconds": 0.0, "best_epochs": []})
        for key, value in r.train_config.items():
            row["train"].setdefault(key, set()).add(value)
        training = r.provenance.get("training") or {}
        row["seeds"].add(r.seed)
        row["train_seconds"] += float(training.get("seconds") or 0)
        if training.get("best_epoch") is not None:
            row["best_epochs"].append(int(training["best_epoch"]) + 1)
    scales = Counter(getattr(r.condition, "severity_scale", None) for r in records)
    return {
        "data": Counter(f"{r.dataset} {r.dataset_version}, {r.split} split of {r.n} samples"
                        for r in records),
        "conditions": Counter(r.condition.kind for r in records),
        "severity scales": Counter({k: v for k, v in scales.items() if k}),
        "corruption backends": Counter(r.corruption_backend for r in records
                                       if r.condition.kind != "clean"),
        "methods": per_method,
        "evaluation seconds": sum(float(r.provenance.get("eval_seconds") or 0)
                                  for r in records),
    }


def _values(values: set) -> str:
    return ", ".join(f"{v:g}" if isinstance(v, float) else str(v)
                     for v in sorted(values, key=str))


def _setup_context(info: dict[str, Any]) -> dict[str, Any]:
    """The setup section: facts, the training settings that differ between methods (one
    column each) and per method its row and hyper-parameters."""
    methods = info["methods"]
    keys = sorted({k for m in methods.values() for k in m["train"]})
    shared = {k: next(iter(methods.values()))["train"][k] for k in keys
              if len({frozenset(m["train"].get(k, ())) for m in methods.values()}) == 1}
    varying = [k for k in keys if k not in shared]
    train_s = sum(m["train_seconds"] for m in methods.values())
    facts = [("data", _counter_text(info["data"])),
             ("test conditions", _counter_text(info["conditions"]) + " (records per kind)"),
             ("severity scale", _counter_text(info["severity scales"]) or "none"),
             ("corruption backend", _counter_text(info["corruption backends"]) or "none"),
             ("training (every method)",
              "; ".join(f"{k} {_values(v)}" for k, v in shared.items()) or "-"),
             ("wall time", f"training {train_s / 60:.1f} min, evaluation "
                           f"{info['evaluation seconds'] / 60:.1f} min (summed over jobs "
                           "and cells)")]
    rows = [{"label": label, "family": m["family"], "seeds": len(m["seeds"]),
             "best_epoch": f"{np.mean(m['best_epochs']):.1f}" if m["best_epochs"] else "",
             "train_seconds": f"{m['train_seconds'] / max(1, len(m['seeds'])):.0f}",
             "train": [_values(m["train"].get(k, set())) for k in varying],
             "params": ", ".join(f"{k}={v}" for k, v in sorted(m["params"].items())) or "none"}
            for label, m in sorted(methods.items())]
    return {"facts": facts, "varying": varying, "methods": rows}


def _definitions() -> list[dict[str, str]]:
    from rambench.metrics.definitions import DEFINITIONS

    return [{"name": d.name, "formula": d.formula, "source": d.source or ""}
            for d in DEFINITIONS]


FIGURE_PX_PER_INCH = 160  # on the page; the text of a figure then reads like the page's


def _figure(kind: str, png: Path) -> dict[str, Any]:
    """A figure for the page, `FIGURE_PX_PER_INCH` per inch of its size on paper (its PNG
    is drawn at `style.DPI`) and never wider than the page."""
    from PIL import Image

    with Image.open(png) as image:
        width = round(image.width * FIGURE_PX_PER_INCH / style.DPI)
    return {"kind": kind, "uri": _data_uri(png), "width": width,
            "caption": FIGURE_CAPTIONS.get(kind, kind)}


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def write_report(results: ResultSet, out_dir: Path, metric: str = "mpc",
                 reference: str | None = None, against: str | None = None) -> dict[str, Any]:
    """Writes tables/, figures/ and report.html of a loaded study under `out_dir`; returns
    {'html': path, 'tables': [paths], 'figures': [paths], 'notes': [str]}. `reference` and
    `against`: the study's own when None (`ResultSet.reference_for`, `against_for`). The
    study's notes (e.g. how many stale results were left out) lead the report's notes."""
    study, records, tidy = results.study, results.records, results.tidy()
    reference, against = results.reference_for(reference), results.against_for(against)
    if metric not in LEADERBOARD_METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose from "
                         f"{', '.join(LEADERBOARD_METRICS)}")
    corr = results.correctness()
    out_dir.mkdir(parents=True, exist_ok=True)
    table_dir, figure_dir = out_dir / "tables", out_dir / "figures"
    table_dir.mkdir(exist_ok=True)
    built: dict[str, Table] = {}
    table_paths: list[Path] = []
    left_out = []
    for view in VIEWS:
        try:
            table = build_table(view, tidy, corr, reference, against, sort_by=metric)
        except metrics.MissingReferenceError as err:  # e.g. no unimodal references
            left_out.append(f"{view} table left out: {err}")
            continue
        built[view] = table = results.with_warnings(table)
        for fmt, ext in EXTENSIONS.items():
            path = table_dir / f"{view}.{ext}"
            path.write_text(render(table, fmt, label=f"tab:{study}-{view}") + "\n")
            table_paths.append(path)
    figure_paths = figures.make_figures(tidy, figure_dir, FIGURE_KINDS, corr, records)
    notes = list(dict.fromkeys([*results.notes, *left_out,
                                *(n for t in built.values() for n in t.notes)]))

    sections = [(f"Leaderboard (sorted by {LEADERBOARD_METRICS[metric]})", "leaderboard"),
                ("Main results", "main"), ("By corruption", "corruption"),
                ("By severity", "severity"), ("By missing", "missing"),
                ("Calibration", "calibration"), ("Redundancy gap", "redundancy")]
    optional = ("calibration", "redundancy")  # left out when empty (e.g. schema-1 records)
    page = templates().get_template("report.html.j2").render(
        study=study, generated=f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M}",
        reference=reference, against=against, setup=_setup_context(setup(records)),
        sections=[{"title": title, "table": html_table(built[view])}
                  for title, view in sections
                  if view in built and not (view in optional and built[view].mean.empty)],
        figures=[_figure(kind, next(p for p in paths if p.suffix == ".png"))
                 for kind, paths in figure_paths.items()],
        conditions=html_table(built["conditions"]) if "conditions" in built else None,
        definitions=_definitions(), provenance=_provenance_facts(provenance(records)),
        notes=notes)
    html_path = out_dir / "report.html"
    html_path.write_text(page, encoding="utf-8")
    return {"html": html_path, "tables": table_paths,
            "figures": [p for paths in figure_paths.values() for p in paths], "notes": notes}
