"""LaTeX tables compile on an article page without overfull boxes (skipped without TeX;
Debian: texlive-latex-base)."""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rambench.metrics.frame import tidy_rows
from rambench.report import VIEWS
from rambench.report.render import to_latex
from rambench.report.views import build_table
from rambench.schema import make_record
from rambench.study import read

PDFLATEX = shutil.which("pdflatex")
pytestmark = pytest.mark.skipif(PDFLATEX is None, reason="pdflatex is not installed")
KINDS = {"visual": "image", "audio": "audio"}
METHODS = [f"method_{i:02d}" for i in range(13)]


def full_grid_tidy():
    """Every corruption cell of the full grid for 13 methods and 2 seeds."""
    conditions = [c for c in read("full").grid.conditions(KINDS) if c.kind in
                  ("clean", "corruption")]
    rng = np.random.default_rng(0)
    rows = []
    for seed in (0, 1):
        for method in METHODS:
            for condition in conditions:
                modality = condition.axes()["test_modality"]
                record = make_record(method=method, seed=seed, condition=condition,
                                     modality_kind=KINDS.get(modality), n=100,
                                     accuracy=float(rng.uniform(0.3, 0.95)))
                rows += tidy_rows(record)
    return pd.DataFrame(rows)


def compile_latex(tmp_path, body):
    source = tmp_path / "doc.tex"
    source.write_text("\\documentclass{article}\n"
                      "\\usepackage{booktabs,amssymb,graphicx,longtable}\n"
                      f"\\begin{{document}}\n{body}\n\\end{{document}}\n")
    result = subprocess.run([PDFLATEX, "-interaction=nonstopmode", "-halt-on-error",
                             source.name], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    log = (tmp_path / "doc.log").read_text(errors="replace")
    assert result.returncode == 0, log[-3000:]
    return log


@pytest.mark.parametrize("transposed", [False, True])
def test_the_full_grid_corruption_table_fits_the_page(tmp_path, transposed):
    table = build_table("corruption", full_grid_tidy())
    assert len(table.columns) == (19 - 4) + (11 - 3)  # held-out corruptions are not tested
    if transposed:
        table = table.transposed("corruption")
    latex = to_latex(table)
    log = compile_latex(tmp_path, latex)
    assert "Overfull \\hbox" not in log
    # 23 columns across: split into parts of at most 8 (13 methods: never transposed)
    assert ("(part 3 of 3)" in latex) is not transposed


def test_every_view_compiles(tmp_path):
    tidy = full_grid_tidy()
    body = "\n".join(to_latex(build_table(view, tidy), label=f"tab:{view}")
                     for view in ("main", "severity", "leaderboard"))
    assert "Overfull \\hbox" not in compile_latex(tmp_path, body + "\n\\clearpage")


def test_every_view_of_a_real_quick_grid_fits_the_page_by_itself(tmp_path):
    """avdigits' quick grid (results/avdigits-peers: 7 methods, 100 conditions): the 23
    corruption columns are turned down the page, the 100 conditions break across pages in
    parts, nothing is too large."""
    import rambench.report.views  # noqa: F401 - serves ResultSet.table
    from rambench.results import ResultSet

    results = ResultSet.from_bundle(Path(__file__).parent.parent / "results/avdigits-peers")
    tables = {view: results.table(view) for view in VIEWS
              if view not in ("calibration", "redundancy")}  # no predictions, no unimodal
    body = "\n\\clearpage\n".join(to_latex(t, label=f"tab:{v}") for v, t in tables.items())
    log = compile_latex(tmp_path, body)
    assert "Overfull \\hbox" not in log and "too large" not in log, log[-3000:]
    corruption, conditions = to_latex(tables["corruption"]), to_latex(tables["conditions"])
    assert "transposed to fit the page: its 23 columns run down the page" in corruption
    assert "longtable" not in corruption and "part" not in to_latex(tables["main"])
    assert conditions.count("\\begin{longtable}") == 2 and "breaks across pages" in conditions
    assert "(part 2 of 2)" in conditions
    # the best of each condition (row) is marked once over both parts, not once per part
    rows = len(tables["conditions"].rows)
    assert rows <= conditions.count("\\mathbf{") <= rows + 10
