"""Table renderers: Markdown, LaTeX, CSV, JSON and HTML (from a Jinja2 template).

`render(table, 'md' | 'latex' | 'csv' | 'html' | 'json')` writes a
`rambench.report.table.Table` with the legend that explains it (what the numbers are, the
highlighting, the marks, the notes); `to_markdown` the plain accuracy table `rambench run`
prints. The HTML comes from `templates/table.html.j2`, every value autoescaped.
"""

from __future__ import annotations

import dataclasses
import io
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from rambench import stats as st
from rambench.report import FORMATS
from rambench.report.significance import ALPHA

if TYPE_CHECKING:  # the model imports its renderers (`Table.render`), not the other way
    from rambench.report.table import Table

MARK_TEXT = {"md": {"win": "▲", "loss": "▼"}, "html": {"win": "▲", "loss": "▼"},
             "latex": {"win": r"^{\blacktriangle}", "loss": r"^{\blacktriangledown}"}}


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


def _ranks(table: Table) -> pd.DataFrame:
    """1 for the best value (as displayed) of each column (or row), 2 for the second."""
    rank = pd.DataFrame(0, index=table.mean.index, columns=table.mean.columns)
    shown = table.mean.round(table.digits)
    lines = shown.items() if table.best_axis == "column" else shown.T.items()
    for name, values in lines:
        values = values.dropna()
        if len(values) < 2:
            continue
        higher = table.higher_is_better.get(name, True)
        distinct = sorted(values.unique(), reverse=higher)
        for place, target in enumerate(distinct[:2], start=1):
            for label in values.index[values == target]:
                if table.best_axis == "column":
                    rank.loc[label, name] = place
                else:
                    rank.loc[name, label] = place
    return rank


def _number(table: Table, row: str, col: str) -> tuple[str, str] | None:
    mean, std = table.mean.loc[row, col], table.std.loc[row, col]
    if pd.isna(mean):
        return None
    d = table.digits
    mean = round(mean, d) + 0.0  # + 0.0: a value that rounds to zero prints as 0.0, not -0.0
    return f"{mean:.{d}f}", ("" if pd.isna(std) else f"{std:.{d}f}")


def _arrow(table: Table, col: str, fmt: str) -> str:
    if table.best_axis != "column":
        return ""
    up = table.higher_is_better.get(col, True)
    if fmt == "latex":
        return r" $\uparrow$" if up else r" $\downarrow$"
    return " ↑" if up else " ↓"


def legend(table: Table, fmt: str) -> list[str]:
    """The lines explaining a table: what the numbers are, highlighting, marks, notes."""
    esc = {"md": str, "html": escape, "latex": _latex_escape}[fmt]
    latex = fmt == "latex"
    seeds = table.seeds.to_numpy(dtype=float)
    seeds = seeds[np.isfinite(seeds)]
    span = "" if not len(seeds) else (f"{int(seeds.max())}" if seeds.min() == seeds.max()
                                      else f"{int(seeds.min())}-{int(seeds.max())}")
    bold, second = {"md": ("**bold**", "_italic_"), "html": ("<b>bold</b>", "<u>underlined</u>"),
                    "latex": (r"\textbf{bold}", r"\underline{underlined}")}[fmt]
    where = "per column" if table.best_axis == "column" else "per row"
    pm = r"$\pm$" if latex else "±"
    lines = [f"Mean {pm} std over {span} seed(s) (sample std; none for a single seed). "
             f"{bold}: best {where}, {second}: second."]
    if table.tested:
        win, loss = MARK_TEXT[fmt]["win"], MARK_TEXT[fmt]["loss"]
        if latex:
            win, loss = f"${win}$", f"${loss}$"
        if len(seeds) and seeds.max() > 1:
            test = "paired two-level bootstrap over seeds and test samples"
        else:
            test = ("paired bootstrap over test samples; one seed, so the variation "
                    "between training seeds is not accounted for")
        lines.append(f"{win} / {loss}: significantly better / worse than "
                     f"{esc(str(table.against))} ({test}, {st.B_DEFAULT} resamples, "
                     f"p {esc('<')} {ALPHA}).")
    lines += [f"Note: {esc(n)}" for n in table.notes]
    if fmt == "html":  # safe: every value in them went through `esc`
        return [Markup(line) for line in lines]
    return lines


LATEX_SPECIAL = {"_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#", "{": r"\{", "}": r"\}",
                 "$": r"\$", "\\": r"\textbackslash{}", "~": r"\textasciitilde{}",
                 "^": r"\^{}", "±": r"$\pm$", "<": r"$<$", ">": r"$>$", "↑": r"$\uparrow$",
                 "↓": r"$\downarrow$"}


def _latex_escape(text: str) -> str:
    return "".join(LATEX_SPECIAL.get(ch, ch) for ch in text)


def to_markdown_table(table: Table) -> str:
    if table.mean.empty:
        return "\n".join(["(no results)", *(f"Note: {n}" for n in table.notes)])
    rank = _ranks(table)
    header = [table.row_header, *(f"{c}{_arrow(table, c, 'md')}" for c in table.columns)]
    lines = [f"**{table.title}**", "", "| " + " | ".join(header) + " |",
             "|---|" + "---:|" * len(table.columns)]
    for row in table.rows:
        cells = []
        for col in table.columns:
            number = _number(table, row, col)
            if number is None:
                cells.append("–")
                continue
            text = f"{number[0]} ± {number[1]}" if number[1] else number[0]
            text = {1: f"**{text}**", 2: f"_{text}_"}.get(rank.loc[row, col], text)
            cells.append(text + MARK_TEXT["md"].get(table.mark.loc[row, col], ""))
        lines.append("| " + " | ".join([row, *cells]) + " |")
    return "\n".join([*lines, "", *legend(table, "md")])


LATEX_COLUMNS = 8  # value columns of one float (scaled down to the line if still wider)
LATEX_ROWS = 40  # rows of one float; a longer table breaks across pages (longtable)
LATEX_LINE_PT = 345.0  # \textwidth of an article page
LATEX_CHAR_PT = 3.9  # a \scriptsize character, digits and signs included, at most on average
LATEX_COLSEP_PT = 6.0  # 2 x \tabcolsep (3pt) around each column of a long table


def latex_layout(table: Table) -> tuple[Table, list[list[str]], list[str]]:
    """How a table fits an article page: (the table, possibly transposed; its columns in
    parts of one tabular each; notes saying what was done). A table wider than
    `LATEX_COLUMNS` value columns is transposed where that makes it narrow enough (unless
    it is already transposed, best per row), else split into parts. A table longer than
    `LATEX_ROWS` rows breaks across pages (longtable), which cannot be scaled: its parts
    then hold the columns that fit the line."""
    notes = []
    if len(table.columns) > LATEX_COLUMNS >= len(table.rows) and table.best_axis == "column":
        table = table.transposed()
        notes.append(f"transposed to fit the page: its {len(table.rows)} columns run down "
                     "the page")
    per_part = LATEX_COLUMNS
    if len(table.rows) > LATEX_ROWS:
        header = max(len(r) for r in table.rows) * LATEX_CHAR_PT + LATEX_COLSEP_PT
        widest = max((len(f"{n[0]}+-{n[1]}") + 2 for r in table.rows for c in table.columns
                      if (n := _number(table, r, c)) is not None), default=4)
        per_part = max(1, min(LATEX_COLUMNS, int((LATEX_LINE_PT - header)
                                                 // (widest * LATEX_CHAR_PT + LATEX_COLSEP_PT))))
    columns = table.columns
    count = max(1, -(-len(columns) // per_part))  # parts of as even a width as can be
    parts = [list(part) for part in np.array_split(np.array(columns, dtype=object), count)]
    if len(parts) > 1:
        notes.append(f"split into {len(parts)} parts of at most {per_part} columns to fit "
                     "the page; the best is marked over the whole table")
    if len(table.rows) > LATEX_ROWS:
        notes.append(f"{len(table.rows)} rows: the table breaks across pages (longtable)")
    return table, parts, notes


def to_latex(table: Table, label: str = "tab:results") -> str:
    """Booktabs tables (need \\usepackage{booktabs,amssymb,graphicx}, and longtable for a
    table of more than `LATEX_ROWS` rows) laid out to fit an article page (`latex_layout`);
    values as $a \\pm b$. A float spans both columns of a two-column page (table*) when
    wide and is scaled down to the line width when still wider (never up)."""
    table, parts, layout_notes = latex_layout(table)
    rank = _ranks(table)  # over the whole table, before it is split
    long = len(table.rows) > LATEX_ROWS
    packages = ["booktabs", "amssymb", "graphicx", *(["longtable"] if long else [])]
    lines = ["% needs " + ", ".join(rf"\usepackage{{{name}}}" for name in packages)]
    noted = dataclasses.replace(table, notes=[*table.notes, *layout_notes])
    for i, columns in enumerate(parts, start=1):
        title = table.title + (f" (part {i} of {len(parts)})" if len(parts) > 1 else "")
        part_label = label if i == 1 else f"{label}-{i}"
        header = " & ".join([_latex_escape(table.row_header.capitalize()),
                             *(_latex_escape(c) + _arrow(table, c, "latex")
                               for c in columns)]) + r" \\"
        body = [" & ".join([_latex_escape(row), *(_latex_cell(table, rank, row, col)
                                                  for col in columns)]) + r" \\"
                for row in table.rows]
        explained = legend(noted, "latex") if i == len(parts) else []
        if long:
            lines += [r"\begingroup\scriptsize\setlength{\tabcolsep}{3pt}",
                      rf"\begin{{longtable}}{{l{'c' * len(columns)}}}",
                      rf"\caption{{{_latex_escape(title)}}}\label{{{part_label}}} \\",
                      r"\toprule", header, r"\midrule", r"\endfirsthead",
                      r"\toprule", header, r"\midrule", r"\endhead",
                      r"\bottomrule", r"\endfoot", *body, r"\end{longtable}"]
            if explained:
                lines += [r"\par\footnotesize", " \\\\\n".join(explained), r"\par"]
            lines.append(r"\endgroup")
            continue
        env = "table*" if len(columns) > 6 else "table"
        lines += [rf"\begin{{{env}}}[t]", r"\centering",
                  r"\small" if len(columns) <= 6 else r"\scriptsize",
                  rf"\caption{{{_latex_escape(title)}}}", rf"\label{{{part_label}}}",
                  r"\sbox0{%", rf"\begin{{tabular}}{{l{'c' * len(columns)}}}", r"\toprule",
                  header, r"\midrule", *body, r"\bottomrule", r"\end{tabular}}%",
                  r"\ifdim\wd0>\linewidth\resizebox{\linewidth}{!}{\usebox0}\else\usebox0\fi"]
        if explained:
            lines += [r"\par\smallskip", r"\begin{minipage}{\linewidth}\footnotesize",
                      " \\\\\n".join(explained), r"\end{minipage}"]
        lines.append(rf"\end{{{env}}}")
    return "\n".join(lines)


def _latex_cell(table: Table, rank: pd.DataFrame, row: str, col: str) -> str:
    number = _number(table, row, col)
    if number is None:
        return "--"
    body = rf"{number[0]} \pm {number[1]}" if number[1] else number[0]
    mark = MARK_TEXT["latex"].get(table.mark.loc[row, col], "")
    place = rank.loc[row, col]
    if place == 1:
        return rf"$\mathbf{{{body}}}{mark}$"
    if place == 2:
        return rf"\underline{{${body}$}}" + (f"${mark}$" if mark else "")
    return f"${body}{mark}$"


def to_csv(table: Table) -> str:
    """Wide CSV in display units: per column its mean, `<col> std` and `<col> p`."""
    out = pd.DataFrame(index=table.mean.index)
    out.index.name = table.row_header
    for col in table.columns:
        out[col] = table.mean[col]
        out[f"{col} std"] = table.std[col]
        if table.p[col].notna().any():
            out[f"{col} p vs {table.against}"] = table.p[col]
    buffer = io.StringIO()
    out.to_csv(buffer)
    return buffer.getvalue()


@lru_cache(maxsize=1)
def templates() -> Environment:
    """The Jinja2 environment of the HTML this package writes: the templates
    `rambench/report/templates/*.html.j2`, every value autoescaped."""
    return Environment(loader=PackageLoader("rambench.report", "templates"), autoescape=True,
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def html_table(table: Table) -> dict[str, Any]:
    """What `templates/table.html.j2` shows of a table: title, header (with the direction
    arrows), per row the text of its cells (None: no value), their rank (1 bold, 2
    underlined), mark and p-value tooltip, and the legend."""
    rank = _ranks(table)
    rows = []
    for row in table.rows:
        cells: list[dict[str, Any] | None] = []
        for col in table.columns:
            number = _number(table, row, col)
            if number is None:
                cells.append(None)
                continue
            p = table.p.loc[row, col]
            cells.append({"text": f"{number[0]} ± {number[1]}" if number[1] else number[0],
                          "rank": int(rank.loc[row, col]),
                          "mark": MARK_TEXT["html"].get(table.mark.loc[row, col], ""),
                          "title": f"p = {p:.3g} vs {table.against}" if pd.notna(p) else None})
        rows.append({"label": row, "cells": cells})
    return {"title": table.title, "row_header": table.row_header,
            "columns": [c + _arrow(table, c, "html") for c in table.columns], "rows": rows,
            "legend": legend(table, "html")}


def to_html(table: Table) -> str:
    """The table and its legend as an HTML fragment (`templates/table.html.j2`)."""
    macro = templates().get_template("table.html.j2").module.results_table
    return str(macro(html_table(table))).strip()


def to_json(table: Table) -> str:
    """Every cell as {row, column, mean, std, seeds, p, mark} in display units (p: the
    paired test against `against`, null where none was made), with the title and legend."""
    import json

    def number(value):
        return None if pd.isna(value) else float(value)

    cells = [{"row": row, "column": col, "mean": number(table.mean.loc[row, col]),
              "std": number(table.std.loc[row, col]),
              "seeds": None if pd.isna(table.seeds.loc[row, col])
              else int(table.seeds.loc[row, col]),
              "p": number(table.p.loc[row, col]), "mark": table.mark.loc[row, col] or None}
             for row in table.rows for col in table.columns]
    return json.dumps({"title": table.title, "against": table.against,
                       "higher_is_better": table.higher_is_better, "cells": cells,
                       "legend": legend(table, "md")}, indent=1)


def render(table: Table, fmt: str, label: str = "tab:results") -> str:
    if fmt == "json":
        return to_json(table)
    if fmt == "md":
        return to_markdown_table(table)
    if fmt == "latex":
        return to_latex(table, label)
    if fmt == "csv":
        return to_csv(table)
    if fmt == "html":
        return to_html(table)
    raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
