"""Paired comparison of two methods per condition group (clean, image, audio, AV events,
missing, mixed).

For each group: the accuracy difference (method - against) as the mean over seeds of the
mean over the group's cells (corruptions: mPC weighting), a paired two-level bootstrap 95 %
CI and p-value (seeds, then test samples: `rambench.stats`), and a Wilcoxon signed-rank
test over (seed, cell) pairs with its rank-biserial effect size. The two tests answer
different questions: the bootstrap whether the mean difference exceeds training and
test-sample noise, Wilcoxon whether one method wins on more cells than chance allows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rambench import metrics
from rambench import stats as st


def condition_groups(corr: pd.DataFrame) -> list[tuple[str, st.Select | None,
                                                      metrics.MetricSpec]]:
    """(name, selector, metric spec) for clean, each corrupted modality, AV events, missing
    and mixed."""
    specs = metrics.SPECS
    groups: list[tuple[str, st.Select | None, metrics.MetricSpec]] = [
        ("clean", None, specs["clean"])]
    corrupted_cells = corr[corr["condition_kind"] == "corruption"]
    kinds = corrupted_cells[["test_modality", "modality_kind"]].drop_duplicates()
    for modality, kind in sorted(kinds.itertuples(index=False),
                                 key=lambda p: (p[1] != "image", p[0])):
        def corrupted(f, modality=modality):
            return f["test_modality"] == modality

        name = kind if (kinds["modality_kind"] == kind).sum() == 1 else f"{kind} ({modality})"
        groups.append((name, corrupted, metrics.MPC))
    groups += [("AV", None, specs["av"]), ("missing", None, specs["missing"]),
               ("mixed", None, specs["mixed"])]
    return groups


def compare_groups(tidy: pd.DataFrame, corr: pd.DataFrame, method: str,
                   against: str) -> pd.DataFrame:
    """One row per condition group both methods have: diff, low, high, p (bootstrap),
    wilcoxon_p, rank_biserial, pairs, seeds. Differences are fractions of accuracy."""
    rows = []
    for name, select, spec in condition_groups(corr):
        paired = st.paired_bootstrap(corr, method, against, spec, select)
        if paired.cells == 0:
            continue
        test = st.wilcoxon_cells(tidy, method, against, spec, select)
        rows.append({"group": name, "diff": paired.diff, "low": paired.low,
                     "high": paired.high, "p": paired.p, "wilcoxon_p": test.p,
                     "rank_biserial": test.rank_biserial, "pairs": paired.cells,
                     "seeds": paired.seeds})
    return pd.DataFrame(rows, columns=["group", "diff", "low", "high", "p", "wilcoxon_p",
                                       "rank_biserial", "pairs", "seeds"])


def per_corruption(corr: pd.DataFrame, method: str, against: str) -> pd.DataFrame:
    """Paired bootstrap per (modality, corruption), over its severities and the seeds."""
    return st.bootstrap(metrics.MPC, corr, method, against,
                        [*metrics.CORRUPTION, "modality_kind"]).rename(columns={"value": "diff"})


def format_comparison(result: pd.DataFrame, method: str, against: str) -> str:
    """A plain-text table of `compare_groups` (differences in percentage points)."""
    seeds = int(result["seeds"].max()) if len(result) else 0
    over = "seeds and test samples" if seeds > 1 else "test samples (one seed)"
    head = (f"{method} - {against}: accuracy difference (pp), paired bootstrap over {over} "
            f"({st.B_DEFAULT} resamples) and Wilcoxon signed-rank over seeds x cells")
    lines = [head, f"{'group':<9} {'diff':>7} {'95% CI':>17} {'p':>7} {'Wilcoxon p':>11} "
                   f"{'r_rb':>6} {'pairs':>6}"]
    for r in result.itertuples(index=False):
        ci = f"[{100 * r.low:+.2f}, {100 * r.high:+.2f}]"
        star = " *" if np.isfinite(r.p) and r.p < 0.05 else ""
        lines.append(f"{r.group:<9} {100 * r.diff:>+7.2f} {ci:>17} {st.format_p(r.p):>7} "
                     f"{st.format_p(r.wilcoxon_p, None):>11} {r.rank_biserial:>+6.2f} "
                     f"{r.pairs:>6}{star}")
    lines.append("* bootstrap p < 0.05; r_rb: matched-pairs rank-biserial correlation "
                 f"(> 0: {method} better)")
    return "\n".join(lines)
