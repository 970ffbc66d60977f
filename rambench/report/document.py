"""`rambench report`: every table (md, tex, csv), every figure (png, pdf) and one
self-contained report.html (inline CSS, figures as base64 PNG data URIs, no external
resources) with a leaderboard, the tables, the figures and the study's provenance."""

from __future__ import annotations

import base64
import html
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from rambench import metrics
from rambench.report import FIGURE_KINDS, LEADERBOARD_METRICS, VIEWS, figures
from rambench.report.render import render, to_html
from rambench.report.table import Table
from rambench.report.views import build_table
from rambench.results import ResultSet
from rambench.schema import Record

EXTENSIONS = {"md": "md", "latex": "tex", "csv": "csv"}
CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1200px;
color:#222;padding:0 1em;line-height:1.4}
h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;
margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.85em}
caption{text-align:left;font-weight:600;padding:.3em 0}
th,td{padding:.25em .6em;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}
thead th{border-bottom:2px solid #444}tbody th{text-align:left;font-weight:500}
.legend{font-size:.8em;color:#555;margin:.1em 0}.scroll{overflow-x:auto}
figure{margin:1em 0}figure img{max-width:100%;height:auto}
figcaption{font-size:.85em;color:#555}dl{display:grid;grid-template-columns:max-content auto;
gap:.2em 1em}dt{font-weight:600}dd{margin:0}code{font-size:.9em}
"""
FIGURE_CAPTIONS = {
    "severity": "Accuracy vs severity (0 = clean), per corruption; mean over seeds.",
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
    return ", ".join(f"{html.escape(str(k))} ({v})" for k, v in counter.most_common())


def _provenance_html(info: dict[str, Any]) -> str:
    rows = [("records", str(info["records"])),
            ("methods", html.escape(", ".join(info["methods"]))),
            ("seeds", html.escape(", ".join(map(str, info["seeds"])))),
            ("datasets", _counter_text(info["datasets"])),
            ("grid", _counter_text(info["grids"])),
            ("code versions", _counter_text(info["code versions"])),
            ("method code", _counter_text(info["method code"])),
            ("devices", _counter_text(info["devices"]))]
    for name, versions in sorted(info["packages"].items()):
        rows.append((f"package {html.escape(name)}", _counter_text(versions)))
    items = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    return f"<dl>{items}</dl><p class='legend'>Counts are numbers of records.</p>"


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


def _setup_html(info: dict[str, Any]) -> str:
    methods = info["methods"]
    keys = sorted({k for m in methods.values() for k in m["train"]})
    shared = {k: next(iter(methods.values()))["train"][k] for k in keys
              if len({frozenset(m["train"].get(k, ())) for m in methods.values()}) == 1}
    varying = [k for k in keys if k not in shared]
    train_s = sum(m["train_seconds"] for m in methods.values())
    rows = [("data", _counter_text(info["data"])),
            ("test conditions", _counter_text(info["conditions"]) + " (records per kind)"),
            ("severity scale", _counter_text(info["severity scales"]) or "none"),
            ("corruption backend", _counter_text(info["corruption backends"]) or "none"),
            ("training (every method)",
             html.escape("; ".join(f"{k} {_values(v)}" for k, v in shared.items())) or "-"),
            ("wall time", f"training {train_s / 60:.1f} min, evaluation "
                          f"{info['evaluation seconds'] / 60:.1f} min (summed over jobs "
                          "and cells)")]
    items = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    head = ("<tr><th>method</th><th>family</th><th>seeds</th><th>best epoch</th>"
            "<th>train s / seed</th>" + "".join(f"<th>{html.escape(k)}</th>" for k in varying)
            + "</tr>")
    body, params = [], []
    for label, m in sorted(methods.items()):
        best = f"{np.mean(m['best_epochs']):.1f}" if m["best_epochs"] else ""
        train = "".join(f"<td>{html.escape(_values(m['train'].get(k, set())))}</td>"
                        for k in varying)
        body.append(f"<tr><th>{html.escape(label)}</th><td>{html.escape(m['family'])}</td>"
                    f"<td>{len(m['seeds'])}</td><td>{best}</td>"
                    f"<td>{m['train_seconds'] / max(1, len(m['seeds'])):.0f}</td>{train}</tr>")
        text = ", ".join(f"{k}={v}" for k, v in sorted(m["params"].items())) or "none"
        params.append(f"<dt>{html.escape(label)}</dt><dd><code>{html.escape(text)}</code></dd>")
    table = (f"<div class='scroll'><table><thead>{head}</thead><tbody>{''.join(body)}"
             "</tbody></table></div>")
    return (f"<dl>{items}</dl>{table}<details><summary>hyper-parameters of every method"
            f"</summary><dl>{''.join(params)}</dl></details>")


def _definitions_html() -> str:
    from rambench.metrics.definitions import DEFINITIONS

    items = "".join(f"<dt>{html.escape(d.name)}</dt><dd>{html.escape(d.formula)}"
                    + (f" <span class='legend'>({html.escape(d.source)})</span>" if d.source
                       else "") + "</dd>" for d in DEFINITIONS)
    return f"<dl>{items}</dl>"


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
        built[view] = table
        for fmt, ext in EXTENSIONS.items():
            path = table_dir / f"{view}.{ext}"
            shown = table
            if fmt == "latex" and len(table.columns) > max(8, len(table.rows)):
                shown = table.transposed()  # e.g. 30 corruptions down the page, not across
            path.write_text(render(shown, fmt, label=f"tab:{study}-{view}") + "\n")
            table_paths.append(path)
    figure_paths = figures.make_figures(tidy, figure_dir, FIGURE_KINDS, corr, records)
    notes = list(dict.fromkeys([*results.notes, *left_out,
                                *(n for t in built.values() for n in t.notes)]))

    parts = [f"<h1>rambench report: study {html.escape(study)}</h1>",
             f"<p class='legend'>Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC "
             f"by <code>rambench report</code>. Normalised metrics use the reference method "
             f"<code>{html.escape(reference)}</code>; significance marks compare with "
             f"<code>{html.escape(str(against))}</code>.</p>",
             "<h2>Setup</h2>", _setup_html(setup(records)),
             f"<h2>Leaderboard (sorted by {html.escape(LEADERBOARD_METRICS[metric])})"
             "</h2>", f"<div class='scroll'>{to_html(built['leaderboard'])}</div>",
             "<h2>Main results</h2>", f"<div class='scroll'>{to_html(built['main'])}</div>"]
    for view in ("corruption", "severity", "missing"):
        parts += [f"<h2>By {view}</h2>",
                  f"<div class='scroll'>{to_html(built[view])}</div>"]
    for view, title in (("calibration", "Calibration"), ("redundancy", "Redundancy gap")):
        if view in built and not built[view].mean.empty:
            parts += [f"<h2>{title}</h2>",
                      f"<div class='scroll'>{to_html(built[view])}</div>"]
    parts.append("<h2>Figures</h2>")
    for kind, paths in figure_paths.items():
        png = next(p for p in paths if p.suffix == ".png")
        parts.append(f"<figure><img alt='{kind} figure' src='{_data_uri(png)}'>"
                     f"<figcaption>{html.escape(FIGURE_CAPTIONS.get(kind, kind))} "
                     f"(<code>figures/{kind}.pdf</code>)</figcaption></figure>")
    parts += ["<h2>Every test condition</h2>",
              "<details><summary>condition x method table</summary><div class='scroll'>"
              f"{to_html(built['conditions'])}</div></details>",
              "<h2>Definitions</h2>", _definitions_html(),
              "<h2>Provenance</h2>", _provenance_html(provenance(records))]
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes)
                     + "</ul>")
    document = ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
                f"<title>rambench report: {html.escape(study)}</title>"
                f"<style>{CSS}</style></head><body>{''.join(parts)}</body></html>\n")
    html_path = out_dir / "report.html"
    html_path.write_text(document, encoding="utf-8")
    return {"html": html_path, "tables": table_paths,
            "figures": [p for paths in figure_paths.values() for p in paths], "notes": notes}
