"""Figures for the paper, each returned as a matplotlib Figure and saved as PNG and PDF.

* severity: accuracy vs severity, one small panel per (modality, corruption);
* heatmap: method x corruption, accuracy drop from clean (percentage points);
* missing: accuracy vs random missing rate;
* families: accuracy per corruption family, with bootstrap 95 % CIs over test samples;
* calibration: reliability diagrams, one panel per method, clean against corrupted inputs;
* redundancy: the redundancy gap per method and modality, corrupted and dropped;
* compare: per-corruption paired differences of two methods, with 95 % CIs.

A method keeps one colour, marker and line style in every figure of a study (the styles
are assigned over all of the study's methods); curves carry a band of ± one std over seeds
where there are several.

Figures are built with the object-oriented API (`matplotlib.figure.Figure`), so nothing
touches pyplot's global state; the look comes from `rambench.report.style`. Every value is
computed per seed and then averaged over seeds, as in `rambench.metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from rambench import metrics
from rambench.report import FIGURE_KINDS, style


def _figure(width: float, height: float):
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(style.RC):
        return Figure(figsize=(width, height), layout="constrained")


def _methods_in_order(methods: Sequence[str]) -> list[str]:
    """Sorted names, raml last (drawn on top and listed last in legends)."""
    return sorted(set(methods), key=lambda m: (m == style.FEATURED, m))


def save_figure(fig, out_dir: Path, name: str) -> list[Path]:
    """Writes <out_dir>/<name>.png and .pdf; returns their paths."""
    import matplotlib

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    with matplotlib.rc_context(style.RC):
        for path in paths:
            fig.savefig(path, dpi=style.DPI)
    return paths


def _curve_with_band(points: pd.DataFrame, clean: pd.DataFrame, x: str, at_clean: float
                     ) -> tuple[pd.Series, pd.Series]:
    """(mean, std over seeds) of the score at each x, the clean score at x = `at_clean`
    first; std is NaN with one seed."""
    frame = pd.concat([clean.assign(**{x: at_clean}), points])
    grouped = frame.groupby(x)["score"]
    return grouped.mean().sort_index(), grouped.std(ddof=1).sort_index()


def _plot_curve(ax, mean: pd.Series, std: pd.Series, label: str, look: dict) -> None:
    ax.plot(mean.index, 100 * mean.to_numpy(), label=label, **look)
    if std.notna().any():
        ax.fill_between(mean.index, 100 * (mean - std).to_numpy(),
                        100 * (mean + std).to_numpy(), color=look["color"], alpha=0.15,
                        linewidth=0)


def _with_rc(build):
    """Runs a figure builder inside the style's rc context (artists read rc when made)."""
    import functools

    import matplotlib

    @functools.wraps(build)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(style.RC):
            return build(*args, **kwargs)

    return wrapper


def _legend(fig, axes_with_handles, methods: int) -> None:
    handles, labels = axes_with_handles.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside upper center", ncol=min(methods, 8),
                   handlelength=1.8, columnspacing=1.2)


@_with_rc
def severity_figure(tidy: pd.DataFrame, condition_kind: str = "corruption"):
    """Accuracy (%) vs severity (0 = clean), one panel per single-modality corruption (or,
    `condition_kind="av"`, per audio-visual event) and one line per method; each modality
    starts a new row of panels. None if the study has no such results."""
    rows = metrics.scores(tidy)
    corrupted = rows[rows["condition_kind"] == condition_kind]
    if corrupted.empty:
        return None
    clean = rows[rows["condition_kind"] == "clean"]
    kind_of = _modality_kinds(rows)
    by_modality: dict[str, list[str]] = {}
    for modality, corruption in sorted(
            map(tuple, corrupted[metrics.CORRUPTION].drop_duplicates().to_numpy()),
            key=_image_first(kind_of)):
        by_modality.setdefault(modality, []).append(corruption)
    cols = min(6, max(len(v) for v in by_modality.values()))
    slots: list[tuple[str, str] | None] = []
    for modality, names in by_modality.items():
        slots += [(modality, name) for name in names]
        slots += [None] * (-len(names) % cols)
    n_rows = len(slots) // cols
    width = style.DOUBLE_COLUMN if cols > 2 else style.SINGLE_COLUMN
    fig = _figure(width, 0.35 + 1.05 * n_rows)
    axes = fig.subplots(n_rows, cols, sharex=True, sharey=True, squeeze=False)
    methods = _methods_in_order(corrupted["method"])
    styles = style.method_styles(tidy["method"])
    severities = sorted(corrupted["severity"].unique())
    for ax, slot in zip(axes.flat, slots, strict=True):
        if slot is None:
            fig.delaxes(ax)
            continue
        modality, corruption = slot
        sub = corrupted[(corrupted["test_modality"] == modality)
                        & (corrupted["corruption"] == corruption)]
        for method in methods:
            mean, std = _curve_with_band(sub[sub["method"] == method][["seed", "severity",
                                                                     "score"]],
                                         clean[clean["method"] == method][["seed", "score"]],
                                         "severity", 0)
            if not mean.empty:
                _plot_curve(ax, mean, std, method, styles[method])
        ax.set_title(corruption.replace("_", " "), pad=2)
        ax.set_xticks([0, *severities])
    for r in range(n_rows):
        first, above = slots[r * cols], slots[r * cols - cols] if r else None
        if first is not None:
            new_block = above is None or above[0] != first[0]
            what = "audio-visual" if condition_kind == "av" else kind_of[first[0]]
            axes[r, 0].set_ylabel(f"{what}\naccuracy (%)" if new_block else "accuracy (%)")
        for c in range(cols):
            below = (r + 1) * cols + c
            if slots[r * cols + c] is not None and (below >= len(slots) or slots[below] is None):
                axes[r, c].set_xlabel("severity")
                axes[r, c].tick_params(labelbottom=True)
    _legend(fig, axes.flat[0], len(methods))
    return fig


def _modality_kinds(frame: pd.DataFrame) -> dict[str, str]:
    """test_modality -> the kind of data it carries (image, audio), as recorded."""
    pairs = frame[["test_modality", "modality_kind"]].dropna().drop_duplicates()
    return dict(zip(pairs["test_modality"], pairs["modality_kind"], strict=True))


def _image_first(kind_of: dict[str, str]):
    """Sort key for (modality, ...) tuples: image modalities first."""
    return lambda p: (kind_of.get(p[0]) != "image", p)


def corruption_drops(tidy: pd.DataFrame) -> pd.DataFrame:
    """Per method and corruption: clean minus mean-over-severities accuracy, in percentage
    points, computed per seed then averaged (columns method, test_modality, corruption,
    drop)."""
    per = metrics.mpc(tidy, by="corruption")
    clean = metrics.clean_accuracy(tidy)[metrics.UNIT + ["value"]].rename(
        columns={"value": "clean"})
    merged = per.merge(clean, on=metrics.UNIT, how="inner")
    merged["drop"] = 100 * (merged["clean"] - merged["value"])
    return merged.groupby(["method", *metrics.CORRUPTION], as_index=False)["drop"].mean()


@_with_rc
def heatmap_figure(tidy: pd.DataFrame):
    """Method x corruption heatmap of the accuracy drop from clean (percentage points);
    None without corruption results."""
    import matplotlib

    drops = corruption_drops(tidy)
    if drops.empty:
        return None
    methods = _methods_in_order(drops["method"])
    keys = drops[metrics.CORRUPTION].drop_duplicates()
    keys = sorted(map(tuple, keys.to_numpy()), key=_image_first(_modality_kinds(tidy)))
    grid = drops.pivot_table(index="method", columns=metrics.CORRUPTION, values="drop")
    grid = grid.reindex(index=methods, columns=pd.MultiIndex.from_tuples(keys))
    values = grid.to_numpy(dtype=float)
    width = style.DOUBLE_COLUMN if len(keys) > 8 else style.SINGLE_COLUMN
    fig = _figure(width, 0.9 + 0.16 * len(methods))
    ax = fig.subplots()
    ax.grid(False)
    cmap = matplotlib.colormaps[style.HEATMAP_CMAP]
    finite = values[np.isfinite(values)]
    vmax = max(float(finite.max()) if finite.size else 1.0, 1e-9)
    vmin = min(0.0, float(finite.min()) if finite.size else 0.0)
    image = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto",
                      interpolation="nearest")
    ax.set_yticks(range(len(methods)), methods)
    ax.set_xticks(range(len(keys)), [c.replace("_", " ") for _, c in keys], rotation=60,
                  ha="right", rotation_mode="anchor")
    kind_of = _modality_kinds(tidy)
    for i, (modality, _) in enumerate(keys):
        ax.get_xticklabels()[i].set_color(style.MODALITY_COLOURS.get(kind_of.get(modality),
                                                                     "black"))
    if values.size <= 400:
        for (r, c), v in np.ndenumerate(values):
            if np.isfinite(v):
                dark = (v - vmin) / (vmax - vmin or 1) > 0.55
                label = f"{v:.0f}".replace("-0", "0") if abs(v) < 0.5 else f"{v:.0f}"
                ax.text(c, r, label, ha="center", va="center", fontsize=4.5,
                        color="white" if dark else "black")
    bounds = [i for i in range(1, len(keys)) if keys[i][0] != keys[i - 1][0]]
    for b in bounds:
        ax.axvline(b - 0.5, color="white", linewidth=1.2)
    for start, end in zip([0, *bounds], [*bounds, len(keys)], strict=True):
        modality = keys[start][0]
        ax.annotate(f"{kind_of.get(modality, modality)} corruptions", ((start + end - 1) / 2, 1),
                    xycoords=("data", "axes fraction"), xytext=(0, 3),
                    textcoords="offset points", ha="center", va="bottom", fontsize=6.5,
                    color=style.MODALITY_COLOURS.get(kind_of.get(modality), "black"))
    ax.spines[:].set_visible(False)
    ax.tick_params(length=0)
    bar = fig.colorbar(image, ax=ax, shrink=0.9, pad=0.01, aspect=15)
    bar.set_label("drop from clean (pp)")
    bar.outline.set_linewidth(0.4)
    return fig


@_with_rc
def missing_figure(tidy: pd.DataFrame):
    """Accuracy (%) vs random missing rate (0 = clean), one line per method; None without
    random-missing results."""
    rows = metrics.scores(tidy)
    missing = rows[rows["condition_kind"] == "random_missing"]
    if missing.empty:
        return None
    clean = rows[rows["condition_kind"] == "clean"]
    methods = _methods_in_order(missing["method"])
    styles = style.method_styles(tidy["method"])
    fig = _figure(style.SINGLE_COLUMN, 2.3)
    ax = fig.subplots()
    for method in methods:
        mean, std = _curve_with_band(
            missing[missing["method"] == method][["seed", "missing_rate", "score"]],
            clean[clean["method"] == method][["seed", "score"]], "missing_rate", 0.0)
        _plot_curve(ax, mean, std, method, styles[method])
    ax.set_xlabel("missing rate (0 = clean)")
    ax.set_ylabel("accuracy (%)")
    ax.set_xlim(left=0)
    _legend(fig, ax, len(methods))
    return fig


def family_accuracies(tidy: pd.DataFrame, corr: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per method and (modality, family): mPC over the family's corruptions (mean over
    seeds) and, given per-sample correctness, a bootstrap 95 % CI over test samples.

    Columns: method, test_modality, family, value, low, high (fractions)."""
    from rambench import stats

    keys = ["method", "test_modality", "corruption_family"]
    per = metrics.summarise(metrics.mpc(tidy, by="family"), keys)
    out = per.rename(columns={"mean": "value"})[[*keys, "value"]]
    out["low"], out["high"] = np.nan, np.nan
    if corr is None or corr.empty:
        return out.rename(columns={"corruption_family": "family"})
    scope = keys[1:]
    cis = pd.concat([stats.bootstrap(metrics.MPC, corr, method, scope=scope).assign(method=method)
                     for method in sorted(corr["method"].unique())], ignore_index=True)
    cis = cis[[*keys, "low", "high"]] if len(cis) else pd.DataFrame(columns=[*keys, "low",
                                                                             "high"])
    out = out.drop(columns=["low", "high"]).merge(cis, on=keys, how="left")
    return out.rename(columns={"corruption_family": "family"})


@_with_rc
def families_figure(tidy: pd.DataFrame, corr: pd.DataFrame | None = None):
    """Grouped bars: accuracy (%) per corruption family (x) and method (bars), with
    bootstrap 95 % CIs as error bars when `corr` is given; None without corruptions."""
    fam = family_accuracies(tidy, corr)
    if fam.empty:
        return None
    kind_of = _modality_kinds(tidy)
    groups = fam[["test_modality", "family"]].drop_duplicates()
    groups = sorted(map(tuple, groups.to_numpy()), key=_image_first(kind_of))
    methods = _methods_in_order(fam["method"])
    styles = style.method_styles(tidy["method"])
    width = style.DOUBLE_COLUMN if len(groups) * len(methods) > 16 else style.SINGLE_COLUMN
    fig = _figure(width, 2.2)
    ax = fig.subplots()
    ax.grid(axis="x", visible=False)
    bar_width = 0.8 / len(methods)
    x = np.arange(len(groups))
    for j, method in enumerate(methods):
        part = fam[fam["method"] == method].set_index(["test_modality", "family"])
        part = part.reindex(pd.MultiIndex.from_tuples(groups))
        value = 100 * part["value"].to_numpy(dtype=float)
        err = None
        if part["low"].notna().any():
            err = np.vstack([value - 100 * part["low"].to_numpy(dtype=float),
                             100 * part["high"].to_numpy(dtype=float) - value])
        ax.bar(x - 0.4 + (j + 0.5) * bar_width, value, bar_width * 0.92, yerr=err,
               color=styles[method]["color"], label=method,
               error_kw={"elinewidth": 0.5, "ecolor": "0.2"})
    ax.set_xticks(x, [f"{kind_of.get(m, m)}\n{f}" for m, f in groups])
    ax.set_ylabel("accuracy (%)")
    top = fam["high"].max() if fam["high"].notna().any() else fam["value"].max()
    ax.set_ylim(0.0, min(100.0, 100 * top + 3) if np.isfinite(top) else 100.0)  # bars from 0
    _legend(fig, ax, len(methods))
    return fig


@_with_rc
def compare_figure(diffs: pd.DataFrame, method: str, against: str):
    """Per-corruption paired difference (method - against, percentage points) with 95 % CIs;
    `diffs` has test_modality, modality_kind, corruption, diff, low, high (fractions)."""
    diffs = diffs.sort_values("diff", kind="stable").reset_index(drop=True)
    fig = _figure(style.SINGLE_COLUMN, 0.7 + 0.13 * max(len(diffs), 1))
    ax = fig.subplots()
    ax.grid(axis="y", visible=False)
    y = np.arange(len(diffs))
    kind_of = _modality_kinds(diffs)
    for modality in diffs["test_modality"].unique():
        part = diffs[diffs["test_modality"] == modality]
        idx = part.index.to_numpy()
        value = 100 * part["diff"].to_numpy(dtype=float)
        err = np.vstack([value - 100 * part["low"].to_numpy(dtype=float),
                         100 * part["high"].to_numpy(dtype=float) - value])
        ax.errorbar(value, y[idx], xerr=err, fmt="o", markersize=2.5, elinewidth=0.8,
                    color=style.MODALITY_COLOURS.get(kind_of.get(modality), "black"),
                    label=kind_of.get(modality, modality))
    ax.axvline(0, color="0.3", linewidth=0.6)
    ambiguous = diffs.groupby("corruption")["test_modality"].transform("nunique") > 1
    ax.set_yticks(y, [f"{c.replace('_', ' ')} ({kind_of.get(m, m)})" if twice
                      else c.replace("_", " ")
                      for c, m, twice in zip(diffs["corruption"], diffs["test_modality"],
                                             ambiguous, strict=True)])
    ax.set_ylim(-0.7, len(diffs) - 0.3)
    ax.set_xlabel(f"accuracy difference, {method} − {against} (pp)")
    if diffs["test_modality"].nunique() > 1:
        _legend(fig, ax, 2)  # above the axes, never over an error bar
    return fig


def reliability(records, method: str, kinds: Sequence[str]) -> tuple[np.ndarray, ...]:
    """Pooled over the method's cells of condition `kinds` (all seeds): per confidence bin,
    (count, mean confidence, accuracy), and the pooled ECE."""
    from rambench.metrics.cell import calibration_bins, expected_calibration_error

    chosen = [r.predictions for r in records if r.method.label == method
              and r.condition.kind in kinds and r.predictions is not None]
    if not chosen:
        return ()
    confidence = np.concatenate([p.confidence for p in chosen])
    correct = np.concatenate([p.correct for p in chosen])
    return (*calibration_bins(confidence, correct),
            expected_calibration_error(confidence, correct))


@_with_rc
def calibration_figure(records):
    """Reliability diagrams: accuracy against confidence per bin, one panel per method,
    clean (filled) and corrupted (open) inputs pooled over cells and seeds; the diagonal is
    perfect calibration. None without stored predictions."""
    methods = _methods_in_order({r.method.label for r in records
                                 if r.predictions is not None})
    if not methods:
        return None
    styles = style.method_styles(r.method.label for r in records)
    cols = min(5, len(methods))
    n_rows = -(-len(methods) // cols)
    fig = _figure(style.DOUBLE_COLUMN if cols > 2 else style.SINGLE_COLUMN, 0.4 + 1.35 * n_rows)
    axes = fig.subplots(n_rows, cols, sharex=True, sharey=True, squeeze=False)
    for ax in axes.flat[len(methods):]:
        fig.delaxes(ax)
    for ax, method in zip(axes.flat, methods, strict=False):
        ax.plot([0, 1], [0, 1], color="0.6", linewidth=0.6, linestyle=":")
        texts = []
        for kinds, filled, name in ((("clean",), True, "clean"),
                                    (("corruption",), False, "corrupted")):
            found = reliability(records, method, kinds)
            if not found:
                continue
            count, conf, acc, ece = found
            used = count > 0
            ax.plot(conf[used], acc[used], marker=styles[method]["marker"],
                    color=styles[method]["color"], markersize=3, linewidth=0.8,
                    markerfacecolor=styles[method]["color"] if filled else "white",
                    linestyle="-" if filled else "--", label=name)
            texts.append(f"{name} ECE {100 * ece:.1f}")
        ax.set_title(method, pad=2)
        ax.text(0.03, 0.97, "\n".join(texts), transform=ax.transAxes, va="top", fontsize=5.5)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy")
    for ax in axes[-1, :]:
        ax.set_xlabel("confidence")
    _legend(fig, axes.flat[0], 2)
    return fig


@_with_rc
def redundancy_figure(tidy: pd.DataFrame):
    """The redundancy gap (points) per method: one group of bars per (modality, corrupted or
    dropped); None when the study lacks what it needs (unimodal references, or cells that
    degrade one modality)."""
    try:
        gap = metrics.redundancy_gap(tidy)
    except metrics.MissingReferenceError:
        return None
    if gap.empty:
        return None
    summary = metrics.summarise(gap, ["method", "test_modality", "condition_kind"])
    kind_of = _modality_kinds(tidy)
    groups = sorted(map(tuple, summary[["test_modality", "condition_kind"]]
                        .drop_duplicates().to_numpy()),
                    key=lambda g: (g[1] != "corruption", kind_of.get(g[0]) != "image", g[0]))
    methods = _methods_in_order(summary["method"])
    styles = style.method_styles(tidy["method"])
    fig = _figure(style.DOUBLE_COLUMN, 2.2)
    ax = fig.subplots()
    ax.grid(axis="x", visible=False)
    bar_width = 0.8 / len(methods)
    x = np.arange(len(groups))
    for j, method in enumerate(methods):
        part = summary[summary["method"] == method].set_index(["test_modality",
                                                                "condition_kind"])
        part = part.reindex(pd.MultiIndex.from_tuples(groups))
        std = part["std"].to_numpy(dtype=float)
        ax.bar(x - 0.4 + (j + 0.5) * bar_width, 100 * part["mean"].to_numpy(dtype=float),
               bar_width * 0.92, yerr=100 * std if np.isfinite(std).any() else None,
               color=styles[method]["color"], label=method,
               error_kw={"elinewidth": 0.5, "ecolor": "0.2"})
    ax.axhline(0, color="0.3", linewidth=0.6)
    ax.set_xticks(x, [f"{kind_of.get(m, m)} {'corrupted' if k == 'corruption' else 'dropped'}"
                      for m, k in groups])
    ax.set_ylabel("gap to the intact modality alone (pp)")
    _legend(fig, ax, len(methods))
    return fig


def training_histories(records) -> pd.DataFrame:
    """One row per (method, seed, epoch) of the trainings behind `records` (each job once):
    method, seed, epoch (1-based), and every value the history holds (loss terms,
    val_accuracy, lr)."""
    rows, seen = [], set()
    for r in records:
        job = r.provenance.get("job_key") or (r.method.label, r.seed)
        if job in seen:
            continue
        seen.add(job)
        for entry in (r.provenance.get("training") or {}).get("history") or []:
            rows.append({"method": r.method.label, "seed": r.seed,
                         **{k: v for k, v in entry.items() if k != "epoch"},
                         "epoch": int(entry["epoch"]) + 1})
    return pd.DataFrame(rows)


@_with_rc
def history_figure(records):
    """Training curves: the total loss and the validation accuracy per epoch, one line per
    method (the mean over seeds, each seed faint behind it); None without histories."""
    history = training_histories(records)
    if history.empty:
        return None
    methods = _methods_in_order(history["method"])
    styles = style.method_styles(history["method"])
    fig = _figure(style.DOUBLE_COLUMN, 2.4)
    axes = fig.subplots(1, 2)
    for ax, column, label in ((axes[0], "loss", "training loss"),
                              (axes[1], "val_accuracy", "validation accuracy (%)")):
        scale = 100 if column == "val_accuracy" else 1
        for method in methods:
            part = history[history["method"] == method]
            look = {k: v for k, v in styles[method].items() if k != "marker"}
            for _, seed in part.groupby("seed"):
                ax.plot(seed["epoch"], scale * seed[column], color=look["color"],
                        alpha=0.25, linewidth=0.6)
            mean = part.groupby("epoch")[column].mean()
            ax.plot(mean.index, scale * mean.to_numpy(), label=method, **look)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
    axes[0].set_yscale("log")
    _legend(fig, axes[0], len(methods))
    return fig


def make_figures(tidy: pd.DataFrame, out_dir: Path, kinds: Sequence[str] = FIGURE_KINDS,
                 corr: pd.DataFrame | None = None, records=None) -> dict[str, list[Path]]:
    """Builds and saves the figures of `kinds`; returns kind -> paths (kinds with nothing to
    draw are left out). `records` (with stored predictions) feed the calibration figure."""
    builders = {"severity": lambda: severity_figure(tidy),
                "av": lambda: severity_figure(tidy, "av"),
                "heatmap": lambda: heatmap_figure(tidy),
                "missing": lambda: missing_figure(tidy),
                "families": lambda: families_figure(tidy, corr),
                "calibration": lambda: calibration_figure(records or []),
                "redundancy": lambda: redundancy_figure(tidy)}
    written = {}
    for kind in kinds:
        if kind not in builders:
            raise ValueError(f"unknown figure kind {kind!r}; choose from {', '.join(FIGURE_KINDS)}")
        fig = builders[kind]()
        if fig is not None:
            written[kind] = save_figure(fig, out_dir, kind)
    return written


def severity_curves(tidy: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Writes severity.png and severity.pdf; returns their paths (empty if nothing to draw)."""
    return make_figures(tidy, out_dir, ["severity"]).get("severity", [])
