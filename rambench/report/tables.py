"""Tables from the tidy results: mean accuracy over seeds per method and test condition."""

from __future__ import annotations

import pandas as pd


def condition_label(row: pd.Series) -> str:
    if row["corruption"] == "none" and row["missing_pattern"] == "none":
        return "clean"
    if row["missing_pattern"] == "drop":
        return f"missing {row['test_modality']}"
    if row["missing_pattern"] == "random":
        return f"missing rate {row['missing_rate']:g}"
    if row["test_modality"] == "all":
        return f"mixed {row['corruption']} s{row['severity']}"
    return f"{row['test_modality']} {row['corruption']} s{row['severity']}"


def condition_group(row: pd.Series) -> int:
    """Row order of a table: clean, single-modality corruptions, missing, mixed."""
    if row["missing_pattern"] != "none":
        return 2 if row["missing_pattern"] == "drop" else 3
    if row["corruption"] == "none":
        return 0
    return 4 if row["test_modality"] == "all" else 1


def accuracy_table(tidy: pd.DataFrame) -> pd.DataFrame:
    """Rows: test conditions (clean first); columns: methods; mean accuracy over seeds."""
    acc = tidy[tidy["metric"] == "accuracy"].copy()
    if acc.empty:
        return pd.DataFrame()
    acc["condition"] = acc.apply(condition_label, axis=1)
    acc["group"] = acc.apply(condition_group, axis=1)
    ordered = acc.sort_values(["group", "test_modality", "corruption", "severity",
                               "missing_rate"], ascending=[True, False, True, True, True],
                              kind="stable")
    table = acc.pivot_table(index="condition", columns="method", values="value", aggfunc="mean")
    return table.reindex(list(dict.fromkeys(ordered["condition"])))


def to_markdown(table: pd.DataFrame, digits: int = 1) -> str:
    """A Markdown table of accuracies in percent (no extra dependency)."""
    if table.empty:
        return "(no results)"
    header = ["condition", *map(str, table.columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for condition, row in table.iterrows():
        cells = ["" if pd.isna(v) else f"{100 * v:.{digits}f}" for v in row]
        lines.append("| " + " | ".join([str(condition), *cells]) + " |")
    return "\n".join(lines)
