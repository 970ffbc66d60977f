"""What every reported number means, in words and formula, with its source: the report's
Definitions section and the README's metric list are rendered from here."""

from __future__ import annotations

from dataclasses import dataclass

from rambench.metrics.cell import ECE_BINS, NLL_FLOOR


@dataclass(frozen=True)
class Definition:
    name: str
    formula: str
    source: str = ""


DEFINITIONS: tuple[Definition, ...] = (
    Definition("accuracy", "fraction of test samples whose most probable class is the label"),
    Definition("mPC", "mean over corruptions c of the mean over severities s of the accuracy "
               "A(c, s); per modality in the main table",
               "Hendrycks & Dietterich, ICLR 2019"),
    Definition("rPC", "mPC / clean accuracy", "Michaelis et al., 2019"),
    Definition("CE, mCE", "CE_c = sum_s E(c, s) / sum_s E_ref(c, s) with E = 1 - A and the "
               "reference method's errors on the same seed and cells; mCE = mean over c of CE_c",
               "Hendrycks & Dietterich, ICLR 2019"),
    Definition("relative mCE", "mean over c of sum_s (E(c, s) - E_clean) / sum_s "
               "(E_ref(c, s) - E_ref,clean); a corruption whose reference denominator is <= 0 "
               "is left out, with a note", "Hendrycks & Dietterich, ICLR 2019"),
    Definition("severity AUC", "trapezoid area under accuracy vs severity (clean = 0) divided "
               "by the severity range, mean over corruptions"),
    Definition("missing", "mean accuracy over the dropped-modality and random-missing cells"),
    Definition("missing AUC", "trapezoid area under accuracy vs random missing rate (clean = "
               "0) divided by the rate range"),
    Definition("AV events", "mean accuracy over the co-occurring audio-visual events and their "
               "severities (docs/av-events.md)", "after Maharana et al., NeurIPS 2025"),
    Definition("mixed", "mean accuracy over the mixed cells, where each modality of each "
               "sample is corrupted with a probability (QMF protocol: p = 0.5)",
               "Zhang et al., ICML 2023"),
    Definition("effective robustness", "mean over c of sum_s [(A(c, s) - A_clean) - "
               "(A_ref(c, s) - A_ref,clean)]: accuracy lost beyond what the reference loses",
               "after Taori et al., NeurIPS 2020"),
    Definition("ECE", f"sum over {ECE_BINS} equal-width confidence bins b of |B_b|/N "
               "|acc(B_b) - conf(B_b)|", "Guo et al., ICML 2017"),
    Definition("NLL", f"-mean log p(label), p floored at {NLL_FLOOR:g}"),
    Definition("Brier", "mean over samples of sum_k (p_k - [k = label])^2, in [0, 2]",
               "Brier, 1950"),
    Definition("macro-F1", "unweighted mean over classes of 2 TP / (2 TP + FP + FN)"),
    Definition("redundancy gap", "accuracy minus the accuracy of the unimodal model of the "
               "intact modality on the same cells, when one modality is corrupted (mPC "
               "averaging) or dropped; >= 0: the fused model uses the intact modality at "
               "least as well as that modality alone"),
    Definition("▲ / ▼", "a paired two-level bootstrap (seeds with replacement, then test "
               "samples with replacement within each seed) of the difference to the compared "
               "method on the column's statistic; two-sided p < 0.05",
               "Saravanan et al., NBDC 2020"),
)
