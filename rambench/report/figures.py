"""Figures: accuracy vs severity per corruption, one small panel per (modality, corruption)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def severity_curves(tidy: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Writes severity.png and severity.pdf; returns their paths (empty if nothing to draw)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    acc = tidy[(tidy["metric"] == "accuracy") & (tidy["missing_pattern"] == "none")]
    clean = acc[acc["corruption"] == "none"].groupby("method")["value"].mean()
    corrupted = acc[(acc["corruption"] != "none") & (acc["test_modality"] != "all")]
    panels = list(dict.fromkeys(
        zip(corrupted["test_modality"], corrupted["corruption"], strict=True)))
    if not panels:
        return []
    cols = min(5, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 1.9 * rows), sharey=True,
                             squeeze=False)
    methods = sorted(corrupted["method"].unique())
    colours = plt.get_cmap("tab10")
    for ax, (modality, corruption) in zip(axes.flat, panels, strict=False):
        sub = corrupted[(corrupted["test_modality"] == modality)
                        & (corrupted["corruption"] == corruption)]
        for i, method in enumerate(methods):
            curve = sub[sub["method"] == method].groupby("severity")["value"].mean()
            if method in clean:
                curve = pd.concat([pd.Series({0: clean[method]}), curve])
            ax.plot(curve.index, 100 * curve.values, marker="os^vDP*Xhp"[i % 10],
                    color=colours(i % 10), label=method, lw=1.2, ms=3)
        ax.set_title(f"{modality}: {corruption}", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.set_xticks(range(0, 6))
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy (%)", fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("severity (0 = clean)", fontsize=7)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(6, len(methods)), fontsize=7,
               frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / rows))
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "severity.png", out_dir / "severity.pdf"]
    for path in paths:
        fig.savefig(path, dpi=150)
    plt.close(fig)
    return paths
