"""Tables, figures, report.html and the report commands on a tiny fake study."""

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from rambench.metrics.frame import tidy_frame, tidy_rows
from rambench.report import FIGURE_KINDS, figures
from rambench.report.document import write_report
from rambench.report.render import render, to_markdown
from rambench.report.views import accuracy_table, build_table
from rambench.results import ResultSet
from rambench.schema import Clean
from rambench.stats import correctness
from rambench.store import Store
from tests.fake_study import (
    CONDITIONS,
    CONFIDENCE,
    METHODS,
    write_fake_study,
)
from tests.helpers import assert_usage_error


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    store = write_fake_study(root)
    records = store.records()
    return {"root": root, "store": store, "tidy": tidy_frame(store.records()), "records": records,
            "corr": correctness(records), "results": ResultSet.read(store)}


def body_rows(latex):
    body = latex.split("\\midrule")[1].split("\\bottomrule")[0]
    return [line for line in body.strip().splitlines() if line.strip()]


def test_latex_main_table_structure(fake):
    table = build_table("main", fake["tidy"], fake["corr"])
    latex = render(table, "latex")
    begins = re.findall(r"\\begin\{(\w+\*?)\}", latex)
    ends = re.findall(r"\\end\{(\w+\*?)\}", latex)
    assert sorted(begins) == sorted(ends) and "tabular" in begins
    assert [latex.count(rule) for rule in ("\\toprule", "\\midrule", "\\bottomrule")] == [1] * 3
    rows = body_rows(latex)
    assert [r.split(" & ")[0] for r in rows] == ["late\\_fusion", "tmc", "raml"]
    header = latex.split("\\toprule")[1].split("\\midrule")[0]
    assert [c.split(" $")[0].strip() for c in header.strip(" \\\n").split(" & ")] == [
        "Method", "clean", "image mPC", "audio mPC", "missing", "mixed", "mCE"]
    for row in rows:
        assert row.endswith("\\\\") and len(row.split(" & ")) == 7
        assert "\\pm" in row
    # best bold, second underlined in every column; mCE: lower is better (raml's)
    assert all("\\mathbf" in cell for cell in rows[2].split(" & ")[1:])
    assert all("\\underline" in cell for cell in rows[1].split(" & ")[1:])
    assert "$100.0 \\pm 0.0" in rows[0].split(" & ")[6]  # mCE of the reference
    # late_fusion is clearly worse than raml everywhere: marked, with a legend line
    assert rows[0].count("\\blacktriangledown") == 6
    assert "significantly better / worse than raml" in latex


def test_markdown_csv_and_the_other_views(fake):
    tidy, corr = fake["tidy"], fake["corr"]
    md = render(build_table("main", tidy, corr), "md")
    assert "| late_fusion |" in md and "▼" in md and "**" in md and "mCE ↓" in md
    csv = render(build_table("main", tidy, corr), "csv").splitlines()
    assert csv[0].startswith("method,clean,clean std,clean p vs raml") and len(csv) == 4
    corruption = build_table("corruption", tidy, corr)
    assert corruption.columns == ["image: fog", "image: gaussian_noise", "audio: reverb"]
    severity = build_table("severity", tidy, corr)
    assert severity.columns == ["0 (clean)", "1", "3", "AUC"]
    missing = build_table("missing", tidy, corr)
    assert missing.columns == ["no image", "no audio", "rate 0.3", "rate 0.6", "AUC"]
    conditions = build_table("conditions", tidy, corr)
    assert len(conditions.rows) == len(CONDITIONS) and conditions.rows[0] == "clean"
    board = build_table("leaderboard", tidy, corr, sort_by="mce")
    assert board.rows == ["raml", "tmc", "late_fusion"]
    # the table `rambench run` prints still works
    plain = to_markdown(accuracy_table(tidy))
    assert plain.splitlines()[2].startswith("| clean |")


def test_without_the_reference_mce_is_left_out_with_a_note(fake):
    tidy = fake["tidy"][fake["tidy"]["method"] != "late_fusion"]
    table = build_table("main", tidy)
    assert "mCE" not in table.columns and not table.tested
    assert any("reference method 'late_fusion'" in n for n in table.notes)


def test_partial_results_are_flagged_and_still_tabulated(fake):
    tidy = fake["tidy"]
    # late_fusion seed 1 still running: no audio cells yet (reverb s1, s3, audio dropped)
    running = tidy[~((tidy["method"] == "late_fusion") & (tidy["seed"] == 1)
                     & (tidy["test_modality"] == "audio"))]
    table = build_table("leaderboard", running, fake["corr"])
    assert "mCE" not in table.columns and "mPC" in table.columns
    joined = " | ".join(table.notes)
    assert "incomplete: late_fusion seed 1 has 9 of the 12 cells" in joined
    assert ("missing reference cell: method 'late_fusion', seed 1, test_modality 'audio'"
            in joined)


def test_figures_axes_and_lines(fake):
    tidy, corr = fake["tidy"], fake["corr"]
    fig = figures.severity_figure(tidy)
    assert len(fig.axes) == 3  # image: fog, gaussian noise; audio: reverb
    assert all(len(ax.lines) == 3 for ax in fig.axes)  # one per method
    assert [len(line.get_xdata()) for line in fig.axes[0].lines] == [3, 3, 3]  # 0, 1, 3
    colours = {line.get_label(): line.get_color() for line in fig.axes[0].lines}
    assert colours["raml"] == "#D55E00"
    heat = figures.heatmap_figure(tidy)
    assert len(heat.axes) == 2  # the map and its colour bar
    assert heat.axes[0].images[0].get_array().shape == (3, 3)
    miss = figures.missing_figure(tidy)
    assert len(miss.axes) == 1 and len(miss.axes[0].lines) == 3
    assert list(miss.axes[0].lines[0].get_xdata()) == [0.0, 0.3, 0.6]
    fam = figures.families_figure(tidy, corr)
    ax = fam.axes[0]
    assert len(ax.patches) == 3 * 3  # methods x (image noise, image weather, audio room)
    from matplotlib.container import BarContainer

    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert len(bars) == 3 and all(c.errorbar is not None for c in bars)  # bootstrap CIs
    assert ax.get_ylim()[0] == 0  # bars are read by their height: the axis starts at zero
    assert figures.severity_figure(tidy, "av") is None  # the fake study has no AV events
    from rambench.report.compare import per_corruption

    diffs = per_corruption(corr, "tmc", "raml")
    cmp = figures.compare_figure(diffs, "tmc", "raml")
    assert len(cmp.axes) == 1 and len(cmp.axes[0].get_yticklabels()) == 3


class Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources, self.links, self.tags = [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "img":
            self.sources.append(attrs.get("src", ""))
        for key in ("href", "src"):
            if key in attrs and tag != "img":
                self.links.append(attrs[key])


def test_report_html_is_self_contained(fake, tmp_path):
    out = write_report(fake["results"], tmp_path / "report", "mce")
    parser = Images()
    parser.feed(out["html"].read_text(encoding="utf-8"))
    parser.close()
    assert len(parser.sources) == 5  # every kind but redundancy (no unimodal references)
    assert all(src.startswith("data:image/png;base64,") for src in parser.sources)
    assert not parser.links and "table" in parser.tags
    text = out["html"].read_text(encoding="utf-8")
    for fact in ("feedbeef1234", "tiny", "0.1.0+abc", "cpu:test", "torch", "sorted by mCE",
                 "<h2>Setup</h2>", "test split of 150 samples", "<h2>Definitions</h2>",
                 "Guo et al., ICML 2017", "<h2>Calibration</h2>"):
        assert fact in text
    # no unimodal references in the fake study: the redundancy table is left out, saying why
    assert "<h2>Redundancy gap</h2>" not in text
    assert any("redundancy table left out" in n for n in out["notes"])
    names = {p.name for p in out["tables"]}
    assert {"main.md", "main.tex", "main.csv", "conditions.tex", "leaderboard.csv"} <= names
    assert {p.name for p in out["figures"]} >= {"severity.pdf", "families.png"}


def test_cli_table_plot_report_compare(cli, tmp_path):
    write_fake_study(tmp_path / "results")
    shown = cli("table", "--study", "fake").stdout
    assert "| raml |" in shown and "image mPC" in shown
    cli("table", "--study", "fake", "--view", "severity", "--format", "latex",
        "--to", "t/severity.tex")
    assert "\\toprule" in (tmp_path / "t" / "severity.tex").read_text()
    cli("plot", "--study", "fake")
    plots = tmp_path / "results" / "fake" / "plots"
    for kind in FIGURE_KINDS:
        if kind in ("redundancy", "av"):  # the fake study has no unimodal references, no AV
            assert not (plots / f"{kind}.png").exists()
            continue
        assert (plots / f"{kind}.png").stat().st_size > 0 and (plots / f"{kind}.pdf").exists()
    done = cli("report", "--study", "fake", "--metric", "mce").stdout
    assert "report.html" in done and (tmp_path / "results/fake/report/report.html").exists()
    compared = cli("compare", "--study", "fake", "--method", "tmc").stdout
    for group in ("clean", "image", "audio", "missing", "mixed"):
        assert re.search(rf"^{group}\s+[-+]\d", compared, re.M), compared
    assert (plots / "compare_tmc_vs_raml.png").exists()
    assert (plots / "compare_tmc_vs_raml.pdf").exists()
    as_json = json.loads(cli("compare", "--study", "fake", "--method", "tmc", "--json").stdout)
    groups = {g["group"]: g for g in as_json["groups"]}
    assert set(groups) == {"clean", "image", "audio", "missing", "mixed"}
    # tmc (clean 0.85) is below raml (0.92) everywhere in the fake study, by design
    assert all(g["diff"] < 0 and g["low"] <= g["diff"] <= g["high"] for g in groups.values())
    assert {"test_modality", "corruption", "diff", "p"} <= set(as_json["per_corruption"][0])
    assert_usage_error(cli("compare", "--study", "fake", "--method", "tmcc", check=False),
                       "did you mean 'tmc'")
    assert_usage_error(cli("table", "--study", "fake", "--reference", "late", check=False),
                       "--reference", "late_fusion")
    against = cli("table", "--study", "fake", "--against", "late_fusion").stdout
    assert "better / worse than late_fusion" in against
    raml_row = next(line for line in against.splitlines() if line.startswith("| raml |"))
    assert raml_row.count("▲") >= 4 and "▼" not in raml_row  # raml > late_fusion, by design
    assert_usage_error(cli("table", "--study", "fake", "--against", "ramll", check=False),
                       "--against", "did you mean 'raml'")
    assert_usage_error(cli("table", "--study", "fake", "--view", "redundancy", check=False),
                       "needs the unimodal model of")


def test_calibration_view_matches_the_per_cell_arithmetic(fake):
    table = build_table("calibration", fake["tidy"], fake["corr"])
    assert table.columns[:3] == ["ECE clean", "ECE image", "ECE audio"]
    for record in fake["records"]:  # every prediction has confidence 0.7
        ece = tidy_rows(record)[1]
        assert ece["metric"] == "ece"
        assert ece["value"] == pytest.approx(abs(record.correct.mean() - CONFIDENCE), abs=1e-3)
    clean = [abs(r.correct.mean() - CONFIDENCE) for r in fake["records"]
             if r.method.label == "raml" and r.condition.kind == "clean"]
    assert table.mean.loc["raml", "ECE clean"] == pytest.approx(100 * np.mean(clean), abs=0.1)
    assert not table.tested  # no marks on calibration


def test_24_methods_get_distinct_looks_and_keep_them_in_every_figure():
    from rambench.report import style

    names = [f"m{i:02d}" for i in range(23)] + ["raml"]
    looks = style.method_styles(names)
    pairs = {(s["color"], s["marker"]) for s in looks.values()}
    assert len(pairs) == 24 and looks["raml"]["color"] == "#D55E00"
    assert style.method_styles(iter(names)) == looks  # any iterable, read once
    # no other method wears a colour within reach of raml's vermillion (#D55E00): the
    # red-green-blue distance to Okabe-Ito's orange (#E69F00) is 67, to the next 152
    vermillion = np.array([0xD5, 0x5E, 0x00])
    others = {s["color"] for name, s in looks.items() if name != "raml"}
    assert min(np.linalg.norm(np.array([int(c[i:i + 2], 16) for i in (1, 3, 5)]) - vermillion)
               for c in others) > 100


def test_calibration_and_redundancy_figures(fake):

    fig = figures.calibration_figure(fake["records"])
    assert [ax.get_title() for ax in fig.axes] == ["late_fusion", "tmc", "raml"]
    # confidence is 0.7 everywhere: one bin, at accuracy = the pooled clean accuracy
    clean = np.concatenate([r.correct for r in fake["records"]
                            if r.method.label == "raml" and r.condition == Clean()])
    line = fig.axes[2].get_lines()[1]  # [0] is the diagonal
    assert line.get_xdata() == pytest.approx([0.7], abs=1e-3)
    assert line.get_ydata() == pytest.approx([clean.mean()])
    assert figures.redundancy_figure(fake["tidy"]) is None  # no unimodal references


@pytest.mark.parametrize("view", ["main", "corruption", "severity", "missing", "leaderboard"])
def test_every_tested_column_tests_the_statistic_it_shows(fake, view):
    """The ▲/▼ of a column comes from a bootstrap whose point estimate is the difference of
    the two values the column prints: one definition of each statistic."""
    table = build_table(view, fake["tidy"], fake["corr"], against="raml")
    tested = [c for c in table.spec if c.test is not None]
    assert tested
    for column in tested:
        for method in ("late_fusion", "tmc"):
            result = column.test("avdigits", method, "raml")
            shown = table.mean.loc[method, column.name] - table.mean.loc["raml", column.name]
            assert column.scale * result.diff == pytest.approx(shown, abs=1e-6), column.name


def test_a_grid_sets_the_studys_reference_and_compared_method(tmp_path):
    from tests.helpers import run_cli

    grid = tmp_path / "g.yaml"
    grid.write_text("reference: tmc\nagainst: late_fusion\nconditions:\n  clean: true\n"
                    "  corruptions: {audio: [reverb]}\n  severities: [1]\n")
    run_cli("run", "--method", "late_fusion", "--method", "tmc", "--grid", str(grid),
            "--limit", "48", "--epochs", "1", "--study", "set", cwd=tmp_path)
    shown = run_cli("table", "--study", "set", "--format", "json", cwd=tmp_path).stdout
    table = json.loads(shown)
    assert table["against"] == "late_fusion" and "relative to tmc" in table["title"]
    mce = {c["row"]: c["mean"] for c in table["cells"] if c["column"] == "mCE"}
    assert mce["tmc"] == pytest.approx(100.0)  # the reference's own mCE
    assert all(c["p"] is None for c in table["cells"] if c["row"] == "late_fusion")
    override = json.loads(run_cli("table", "--study", "set", "--format", "json", "--against",
                                  "tmc", cwd=tmp_path).stdout)
    assert override["against"] == "tmc"


def test_tables_can_average_macro_f1_instead_of_accuracy(fake):
    from rambench.metrics.cell import macro_f1

    table = build_table("main", fake["tidy"], fake["corr"], score="macro_f1")
    assert table.title.startswith("macro-F1 (%)") and not table.tested
    clean = [macro_f1(r.predictions.labels, r.predictions.predicted) for r in fake["records"]
             if r.method.label == "tmc" and r.condition.kind == "clean"]
    assert table.mean.loc["tmc", "clean"] == pytest.approx(100 * np.mean(clean))
    assert any("macro-F1, not accuracy" in n for n in table.notes)
    with pytest.raises(ValueError, match="unknown score"):
        build_table("main", fake["tidy"], score="f2")


def test_a_loaded_study_reads_its_records_once_and_derives_each_frame_once(fake, monkeypatch):
    import rambench.results
    import rambench.stats

    calls = {"index": 0, "tidy": 0, "correctness": 0}

    def counted(name, function):
        def call(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)

        return call

    monkeypatch.setattr(Store, "index", counted("index", Store.index))
    monkeypatch.setattr(rambench.results, "tidy_frame",
                        counted("tidy", rambench.results.tidy_frame))
    monkeypatch.setattr(rambench.stats, "correctness",
                        counted("correctness", rambench.stats.correctness))
    results = ResultSet.read(fake["store"])
    for _ in range(2):
        results.tidy(), results.scores(), results.correctness(), results.table("main")
    assert calls == {"index": 1, "tidy": 1, "correctness": 1}
    assert results.tidy().equals(fake["tidy"]) and results.methods == sorted(METHODS)
    changed = results.tidy()
    changed["value"] = -1.0  # a copy: the next reader still sees the study
    assert (results.tidy()["value"] >= 0).all()


def test_the_api_and_the_command_line_print_the_same_table(fake, cli):
    import rambench

    results = rambench.load("fake", fake["root"])
    assert results.settings == {} and results.against_for(None) == "raml"
    shown = cli("table", "--study", "fake", "--out", fake["root"]).stdout
    assert shown == results.table("main", against="raml").render("md") + "\n"


def test_the_loaded_study_imports_nothing_from_the_report_or_the_command_line():
    """`rambench.results` sits below `rambench.report` and `rambench.cli`: report/ may import
    it, never the other way (not even inside a function)."""
    import ast
    import subprocess
    import sys
    from pathlib import Path

    import rambench.results

    tree = ast.parse(Path(rambench.results.__file__).read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {a.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for a in node.names}
    upward = {m for m in imported if m.startswith(("rambench.report", "rambench.cli"))}
    assert not upward
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, rambench.results; print(sorted(m for m in "
         "sys.modules if m.startswith(('rambench.report', 'rambench.cli'))))"],
        capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_the_html_comes_from_the_templates_with_every_value_escaped(fake, tmp_path):
    """report.html and the HTML tables are rendered by Jinja2 with autoescaping: a study
    name, a recorded value, a table's title, row and note holding markup show as text."""
    import dataclasses

    from rambench.report.render import templates

    evil = "<script>alert('x')</script>"
    shown = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
    assert templates().get_template("report.html.j2").filename.endswith(
        "rambench/report/templates/report.html.j2")
    records = [dataclasses.replace(r, provenance={**r.provenance, "device": evil})
               for r in fake["records"]]
    results = dataclasses.replace(fake["results"], study=evil, records=records)
    text = write_report(results, tmp_path / "report")["html"].read_text(encoding="utf-8")
    parser = Images()
    parser.feed(text)
    parser.close()
    assert "script" not in parser.tags and evil not in text
    assert f"<title>rambench report: {shown}</title>" in text
    assert f"<h1>rambench report: study {shown}</h1>" in text
    assert f"<dt>devices</dt><dd>{shown} (72)</dd>" in text
    table = build_table("main", fake["tidy"], fake["corr"])
    table.title, table.notes = evil, [evil]
    for frame in ("mean", "std", "seeds", "p", "mark"):
        setattr(table, frame, getattr(table, frame).rename(index={"tmc": evil}))
    fragment = render(table, "html")
    assert evil not in fragment
    assert f"<caption>{shown}</caption>" in fragment and f"<tr><th>{shown}</th>" in fragment
    assert f"Note: {shown}</p>" in fragment


def test_the_audio_visual_events_have_a_figure_of_their_own():
    from rambench.results import ResultSet

    tidy = ResultSet.from_bundle(Path(__file__).parent.parent / "results/avdigits-peers").tidy()
    av = tidy[(tidy["condition_kind"] == "av") & (tidy["metric"] == "accuracy")]
    fig = figures.severity_figure(tidy, "av")
    titles = sorted(ax.get_title() for ax in fig.axes)
    assert titles == sorted(e.replace("_", " ") for e in av["corruption"].unique())
    methods = av["method"].nunique()
    assert all(len(ax.lines) == methods for ax in fig.axes)  # one line per method
    assert [len(x.get_xdata()) for x in fig.axes[0].lines] == [4] * methods  # 0, 1, 3, 5
    assert fig.axes[0].get_ylabel().startswith("audio-visual")


def test_every_figure_has_a_paper_width_and_the_same_type_sizes(fake):
    """One look for all figures: a one- or two-column width, and every axis label, tick
    label and legend entry at the size `style.RC` gives it (text inside the data, such as
    a heatmap's cell values, may be smaller)."""
    from rambench.report import style

    tidy, corr = fake["tidy"], fake["corr"]
    built = {"severity": figures.severity_figure(tidy), "heatmap": figures.heatmap_figure(tidy),
             "missing": figures.missing_figure(tidy),
             "families": figures.families_figure(tidy, corr),
             "calibration": figures.calibration_figure(fake["records"])}
    sizes = {"label": style.RC["axes.labelsize"], "tick": style.RC["xtick.labelsize"],
             "legend": style.RC["legend.fontsize"], "title": style.RC["axes.titlesize"]}
    for kind, fig in built.items():
        assert fig.get_figwidth() in (style.SINGLE_COLUMN, style.DOUBLE_COLUMN), kind
        for ax in fig.axes:
            for label in (ax.xaxis.label, ax.yaxis.label):
                if label.get_text():
                    assert label.get_fontsize() == sizes["label"], (kind, label.get_text())
            ticks = [t for t in ax.get_xticklabels() + ax.get_yticklabels() if t.get_text()]
            assert all(t.get_fontsize() == sizes["tick"] for t in ticks), kind
            if ax.get_title():
                assert ax.title.get_fontsize() == sizes["title"], kind
        for legend in fig.legends:
            assert all(t.get_fontsize() == sizes["legend"] for t in legend.get_texts()), kind
