"""The README's examples run as written; the documentation's generated tables are current."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"


def python_example() -> str:
    section = README.read_text().split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_python_api_example_runs_as_written(tmp_path, monkeypatch, capsys):
    result = subprocess.run([sys.executable, "-c", python_example()], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("26 cells computed, 0 reused")
    assert "| method | clean ↑ |" in out and "| raml[norm=hard] |" in out
    assert re.search(r"raml\[norm=hard\]\s+clean\s+0\.\d{3}", out)
    assert out.rstrip().endswith("(359, 10)")  # 359 test samples, 10 class probabilities
    monkeypatch.chdir(tmp_path)  # again, in this process: nothing is computed twice
    exec(python_example(), {})
    assert capsys.readouterr().out.startswith("0 cells computed, 26 reused")


def plugin_example(page: Path) -> str:
    section = page.read_text(encoding="utf-8").split("## Adding your own method", 1)[1]
    return re.search(r"```python\n(# mine\.py.*?)```", section, re.S).group(1)


def test_the_readme_plugin_passes_the_method_contract(tmp_path):
    source = plugin_example(README)
    (tmp_path / "mine.py").write_text(source)
    result = subprocess.run([sys.executable, "-m", "rambench.cli", "check", "--method",
                             "mine.py:MeanFusion", "--json"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    import json

    checks = json.loads(result.stdout)
    assert len(checks) >= 10 and all(c["passed"] for c in checks)
    assert {c["fixture"] for c in checks} >= {"still images (avdigits)"}


def test_the_methods_page_shows_the_plugin_the_readme_tests():
    assert plugin_example(DOCS / "methods.md") == plugin_example(README)


def test_the_backend_table_is_the_one_the_specs_generate():
    from corruptions.registry import implementation_table

    assert implementation_table() in (DOCS / "conditions.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_every_generated_table_is_current():
    """`python scripts/docs_tables.py` rewrites a block this finds stale. Slow (it reads
    every bundle and recomputes every table's significance marks): `.ci/run` runs the same
    check as `python scripts/docs_tables.py --check`."""
    from scripts import docs_tables as tables

    found = tables.blocks(ROOT)
    assert {name for names in found.values() for name in names} == set(tables.GENERATORS)
    assert tables.stale_pages(ROOT) == []


def test_the_backend_table_does_not_depend_on_which_module_was_imported_first():
    """A fresh interpreter that imports the protocols before the common corruptions."""
    code = ("import corruptions.protocols\n"
            "from corruptions.registry import implementation_table, names\n"
            "print(implementation_table()); print(names('image', protocols=True))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    from corruptions.registry import implementation_table, names

    assert result.stdout == f"{implementation_table()}\n{names('image', protocols=True)}\n"


def test_the_quickstart_output_is_seed_0_of_the_committed_bundle():
    """The quickstart's table (an in-process run) holds, to its one decimal, the values
    two local workers computed for the bundle behind the README's results table."""
    from rambench.results import ResultSet

    quickstart = README.read_text().split("## Quickstart", 1)[1].split("done in", 1)[0]
    rows = re.findall(r"^\| ([a-z][^|]*?) \| ([\d.]+) \| ([\d.]+) \|$", quickstart, re.M)
    assert len(rows) == 13
    scores = ResultSet.from_bundle(ROOT / "results" / "avdigits-smoke").scores()
    seed0 = scores[scores["seed"] == 0].set_index(["condition", "method"])["score"]
    for name, late_fusion, raml in rows:  # "visual gaussian_noise s3" -> visual:gaussian_noise@3
        words = name.split()
        condition = ("clean" if name == "clean" else "missing:rate=0.5" if "rate" in name
                     else f"missing:{words[1]}" if words[0] == "missing"
                     else f"{words[0]}:{words[1]}@{words[2][1:]}")
        for method, shown in (("late_fusion", late_fusion), ("raml", raml)):
            assert f"{100 * seed0[(condition, method)]:.1f}" == shown, (name, method)
