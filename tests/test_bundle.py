"""Result bundles: `rambench bundle` packs a study into a folder committed under results/,
`--from` reads it as the study (every table and figure without the study folder),
`rambench reproduce` runs it again and judges the values against their noise band, and
`scripts/docs_tables.py` writes published tables from it.

One tiny study (late_fusion and visual_only, one epoch, 48 samples per split, two seeds,
five conditions) is trained once for the module; a reproduce re-run is shared the same way.
"""

import hashlib
import json
import lzma
import math
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import invoke_cli

ROOT = Path(__file__).resolve().parent.parent
BUNDLE_FILES = {".gitignore", "manifest.json", "records.jsonl.xz", "study.yaml"}
GRID = """\
description: a tiny study to bundle
seeds: [0, 1]
epochs: 1
limit: 48
conditions:
  clean: true
  corruptions:
    visual: [gaussian_noise]
    audio: [gaussian_noise]
  severities: [3]
  missing_modalities: all
"""


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """The tiny study under ROOT/results/tiny and its bundle ROOT/bundles/tiny."""
    root = tmp_path_factory.mktemp("bundle")
    (root / "tiny.yaml").write_text(GRID)
    invoke_cli("run", "--method", "late_fusion", "--method", "visual_only", "--grid",
               "tiny.yaml", "--study", "tiny", "--out", "results", "--device", "cpu", cwd=root)
    packing = invoke_cli("bundle", "--study", "tiny", "--out", "results", "--to",
                         "bundles/tiny", cwd=root)
    return {"root": root, "study": root / "results" / "tiny", "bundle": root / "bundles" / "tiny",
            "output": packing.stdout}


@pytest.fixture(scope="module")
def rerun_out(tmp_path_factory):
    """Where the reproduce tests re-run the study: the first computes, the others reuse."""
    return tmp_path_factory.mktemp("reproduce")


def copy_bundle(packed, folder: Path) -> Path:
    target = folder / "tiny"
    shutil.copytree(packed["bundle"], target)
    return target


def records_of(bundle: Path) -> list[bytes]:
    return lzma.decompress((bundle / "records.jsonl.xz").read_bytes()).splitlines()


def doctor(bundle: Path, method: str, seed: int, delta: float, update_manifest: bool) -> str:
    """Change the clean accuracy of (method, seed) by `delta`; with `update_manifest`, its
    sha256 in the manifest too (so that the bundle passes verification). Returns its key."""
    lines = records_of(bundle)
    for i, line in enumerate(lines):
        data = json.loads(line)
        if (data["method"]["label"], data["seed"], data["condition"]["kind"]) == \
                (method, seed, "clean"):
            data["metrics"]["accuracy"] += delta
            lines[i] = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
            key = data["key"]
            break
    (bundle / "records.jsonl.xz").write_bytes(lzma.compress(b"".join(x + b"\n" for x in lines)))
    if update_manifest:
        manifest = json.loads((bundle / "manifest.json").read_text())
        for entry in manifest["records"]:
            if entry["key"] == key:
                entry["sha256"] = hashlib.sha256(lines[i]).hexdigest()
        (bundle / "manifest.json").write_text(json.dumps(manifest))
    return key


def one_line_error(result, *needles: str) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


# ------------------------------------------------------------------------------- pack


def test_a_bundle_holds_the_current_records_as_stored_and_packs_byte_for_byte(packed,
                                                                              tmp_path):
    from rambench import __version__
    from rambench.bundle import pack, verify
    from rambench.schema import Record
    from rambench.store import Store

    bundle, study = packed["bundle"], packed["study"]
    assert {p.name for p in bundle.iterdir()} == BUNDLE_FILES
    size = sum(p.stat().st_size for p in bundle.iterdir())
    assert size < 48 * 1024, size  # 20 records; their per-sample arrays are zlib-packed
    assert "bundled 20 records of study 'tiny'" in packed["output"]
    manifest = json.loads((bundle / "manifest.json").read_text())
    stored = {p.stem: json.loads(p.read_text()) for p in (study / "records").glob("*.json")}
    assert [e["key"] for e in manifest["records"]] == sorted(stored)
    assert [json.loads(line) for line in records_of(bundle)] == [stored[k] for k in
                                                                 sorted(stored)]
    assert manifest["study"] == "tiny" and manifest["packed_by"]["rambench"] == __version__
    assert manifest["counts"] == {"records": 20, "stale_left_out": 0, "methods": 2,
                                  "seeds": 2, "conditions": 5}
    (environment,) = manifest["environments"]
    assert environment["records"] == 20
    assert environment["numerics"].endswith("; 1 thread; float32")
    assert verify(bundle) == []

    # a stale record (an earlier result of one cell) is left out; the same records give
    # the same bytes
    copy = tmp_path / "results" / "tiny"
    shutil.copytree(study, copy)
    store = Store(tmp_path / "results", "tiny")
    old = Record.from_json(stored[sorted(stored)[0]])
    store.write(Record.from_json({**old.to_json(), "key": "0000000000000stale00",
                                  "provenance": {**old.provenance,
                                                 "current_since": "2000-01-01T00:00:00"}}))
    first = pack(store, tmp_path / "a", "c0ffee")
    pack(store, tmp_path / "b", "c0ffee")
    assert first["counts"]["stale_left_out"] == 1
    assert "0000000000000stale00" not in {e["key"] for e in first["records"]}
    for name in BUNDLE_FILES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "records.jsonl.xz").read_bytes() == \
        (bundle / "records.jsonl.xz").read_bytes()


def test_git_tracks_a_bundle_folder_and_ignores_a_study_folder(packed, tmp_path):
    shutil.copy(ROOT / ".gitignore", tmp_path / ".gitignore")
    (tmp_path / "results").mkdir()
    shutil.copy(ROOT / "results" / "README.md", tmp_path / "results" / "README.md")
    shutil.copytree(packed["study"], tmp_path / "results" / "tiny")
    shutil.copytree(packed["bundle"], tmp_path / "results" / "tiny-main")
    (tmp_path / "results" / "tiny-main" / "plots").mkdir()
    (tmp_path / "results" / "tiny-main" / "plots" / "severity.png").write_bytes(b"png")
    (tmp_path / "results" / "tiny-main" / "export.csv").write_text("a\n")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"],
                            cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert {line[3:] for line in status.splitlines()} == {
        ".gitignore", "results/README.md",
        *(f"results/tiny-main/{name}" for name in BUNDLE_FILES)}


# --------------------------------------------------------------------------- --from


def test_commands_read_a_bundle_as_the_study_without_its_folder(packed, cli, tmp_path):
    import rambench

    bundle = copy_bundle(packed, tmp_path)
    out = str(packed["root"] / "results")
    table = cli("table", "--from", bundle).stdout
    assert table == cli("table", "--study", "tiny", "--out", out).stdout
    assert "| late_fusion |" in table and "| visual_only |" in table
    cli("export", "--from", bundle, "--to", tmp_path / "bundle.csv")
    cli("export", "--study", "tiny", "--out", out, "--to", tmp_path / "study.csv")
    assert (tmp_path / "bundle.csv").read_text() == (tmp_path / "study.csv").read_text()
    cli("plot", "--from", bundle, "--kind", "severity")
    assert (bundle / "plots" / "severity.png").is_file()
    compared = cli("compare", "--from", bundle, "--method", "visual_only", "--against",
                   "late_fusion", "--json").stdout
    assert json.loads(compared)["groups"] == json.loads(cli(
        "compare", "--study", "tiny", "--out", out, "--method", "visual_only", "--against",
        "late_fusion", "--json", "--out-dir", tmp_path / "figures").stdout)["groups"]
    cli("report", "--from", bundle)
    assert (bundle / "report" / "report.html").is_file()

    loaded = rambench.load(bundle=bundle)
    study = rambench.load("tiny", out)
    assert type(loaded) is type(study)
    assert (loaded.study, loaded.root, loaded.settings) == ("tiny", bundle, study.settings)
    assert [r.key for r in loaded.records] == [r.key for r in study.records]
    assert loaded.table("main").render("md") == study.table("main").render("md")


def test_a_bundle_that_does_not_match_its_manifest_is_refused_naming_the_record(
        packed, cli, tmp_path):
    import rambench
    from rambench.errors import UsageError

    bundle = copy_bundle(packed, tmp_path)
    key = doctor(bundle, "late_fusion", 0, 0.25, update_manifest=False)
    for command in (["table", "--from", bundle], ["reproduce", bundle, "--out", tmp_path]):
        one_line_error(cli(*command, check=False), key, "(late_fusion, seed 0, clean)",
                       "does not match its sha256 in manifest.json")
    assert not (tmp_path / "tiny" / "records").exists()  # reproduce ran nothing
    with pytest.raises(UsageError, match=key):
        rambench.load(bundle=bundle)

    edited = copy_bundle(packed, tmp_path / "edited")
    (edited / "study.yaml").write_text((edited / "study.yaml").read_text() + "epochs: 2\n")
    one_line_error(cli("plot", "--from", edited, check=False), "study.yaml does not match")


def test_bundle_and_from_usage_errors_name_the_input(packed, cli, tmp_path):
    out = str(packed["root"] / "results")
    one_line_error(cli("bundle", "--study", "nope", "--out", out, "--to", tmp_path / "b",
                       check=False), "no study 'nope'", "studies there: tiny")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    one_line_error(cli("bundle", "--study", "tiny", "--out", out, "--to", tmp_path / "taken",
                       check=False), f"--to {tmp_path / 'taken'}", "no bundle")
    one_line_error(cli("table", "--from", tmp_path / "taken", check=False),
                   "not a rambench bundle")
    one_line_error(cli("table", "--from", packed["bundle"], "--study", "tiny", check=False),
                   "--from", "--study", "give one of them")
    one_line_error(cli("reproduce", packed["bundle"], "--seeds", "7", "--out", tmp_path,
                       check=False), "--seeds 7", "seeds 0, 1")
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"


# -------------------------------------------------------------------------- reproduce


def test_reproduce_of_a_bundle_is_within_its_noise_band(packed, cli, rerun_out, tmp_path):
    result = cli("reproduce", copy_bundle(packed, tmp_path), "--out", rerun_out, "--json")
    report = json.loads(result.stdout)
    assert report["comparable"] and report["reproduced"] and report["beyond"] == []
    assert len(report["cells"]) == 20 and all(c["within"] for c in report["cells"])
    summary = {(r["method"], r["name"]): r for r in report["summary"]}
    assert set(summary) == {(m, c) for m in ("late_fusion", "visual_only")
                            for c in ("clean", "image mPC", "audio mPC", "missing", "mCE")}
    assert all(r["within"] and r["band"] > 0 for r in summary.values())
    assert (rerun_out / "tiny" / "study.yaml").is_file()


def test_reproduce_of_a_doctored_bundle_exits_1_naming_the_cell(packed, cli, rerun_out,
                                                               tmp_path):
    bundle = copy_bundle(packed, tmp_path)
    doctor(bundle, "late_fusion", 0, 0.5, update_manifest=True)
    result = cli("reproduce", bundle, "--out", rerun_out, check=False)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    verdict = result.stdout.strip().splitlines()[-1]
    assert verdict.startswith("not reproduced: 1 of 10 summary values moved beyond"), verdict
    assert "late_fusion clean (stored" in verdict
    assert verdict.endswith("cells beyond theirs: late_fusion seed 0 clean"), verdict
    assert "| late_fusion | 0 | clean |" in result.stdout and "BEYOND" in result.stdout


def test_reproduce_on_another_limit_lists_the_values_without_judging_them(packed, cli,
                                                                          tmp_path):
    result = cli("reproduce", packed["bundle"], "--limit", "24", "--seeds", "0", "--out",
                 tmp_path)
    assert "--limit 24 (the study: --limit 48): another run than the study's (other data " \
           "or training); values are not expected to match" in result.stdout
    assert "BEYOND" not in result.stdout and "within" not in result.stdout
    assert result.stdout.count("not judged |") == 10 + 10  # seed 0's cells, the summary


# ---------------------------------------------------------------- published tables


def test_a_results_block_is_written_from_the_bundle_alone(packed, cli, tmp_path):
    import rambench
    from scripts import docs_tables as tables

    shutil.copytree(packed["study"], tmp_path / "results" / "tiny")
    cli("bundle", "--study", "tiny", "--to", "results/tiny-main")
    expected = rambench.load("tiny", tmp_path / "results").table("main").render("md")
    (tmp_path / "docs").mkdir()
    page = tmp_path / "docs" / "results.md"
    page.write_text("# Results\n\n<!-- results: results/tiny-main view=main -->\n"
                    "<!-- /results -->\n\nText after.\n\n```\n"
                    "<!-- results: results/elsewhere view=main -->\n<!-- /results -->\n```\n")
    (tmp_path / "README.md").write_text("# readme\n")
    assert tables.stale_pages(tmp_path) == ["docs/results.md"]
    assert tables.write(tmp_path) == ["docs/results.md"]
    written = page.read_text()
    assert f"view=main -->\n\n{expected}\n\n<!-- /results -->\n\nText after." in written
    assert "results/elsewhere view=main -->\n<!-- /results -->\n```" in written  # an example

    shutil.rmtree(tmp_path / "results" / "tiny")  # the study folder is gone
    assert tables.stale_pages(tmp_path) == []
    assert tables.render(written, tmp_path) == written
    page.write_text(written.replace("| late_fusion |", "| late_fusion (pasted) |"))
    assert tables.stale_pages(tmp_path) == ["docs/results.md"]
    tables.write(tmp_path)
    assert page.read_text() == written


def test_published_values_are_judged_against_their_range_and_the_binomial_error(tmp_path):
    from rambench.reproduce import compare_published
    from rambench.results import ResultSet
    from rambench.store import Store
    from tests.fake_study import N, write_fake_study

    write_fake_study(tmp_path)
    run = ResultSet.read(Store(tmp_path, "fake"))
    value = float(run.table("main").mean.loc["late_fusion", "clean"])
    sigma = 100 * math.sqrt(value / 100 * (1 - value / 100) / N)  # at the range's middle
    published = {"late_fusion": {"clean": {"values": [value - 1, value + 1],
                                           "sources": ["a", "b"]}},
                 "raml": {"clean": {"values": [value + 3 + 2 * 2.5], "sources": ["c"]}},
                 "absent": {"clean": {"values": [50.0], "sources": ["d"]}}}
    rows = {r.method: r for r in compare_published(published, run, "s").summary}
    assert rows["late_fusion"].stored == pytest.approx(value)
    assert rows["late_fusion"].band == pytest.approx(1 + 2 * sigma)
    assert rows["late_fusion"].within is True
    raml = float(run.table("main").mean.loc["raml", "clean"])  # 92 %: far above 78 %
    assert rows["raml"].new == pytest.approx(raml) and rows["raml"].within is False
    assert rows["absent"].within is False  # a method the run does not have


def test_a_correctness_bundle_is_smaller_and_gives_the_same_tables_of_accuracy(packed, cli,
                                                                                 tmp_path):
    out = str(packed["root"] / "results")
    target = tmp_path / "slim"
    cli("bundle", "--study", "tiny", "--out", out, "--to", target, "--per-sample",
        "correctness")
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["per_sample"] == "correctness"
    full = (packed["bundle"] / "records.jsonl.xz").stat().st_size
    assert (target / "records.jsonl.xz").stat().st_size < full / 2
    lines = [json.loads(line) for line in records_of(target)]
    assert all(r["predictions"] is None for r in lines)
    for view in ("main", "conditions", "missing"):
        assert cli("table", "--from", target, "--view", view).stdout == \
            cli("table", "--from", packed["bundle"], "--view", view).stdout
    assert "--per-sample correctness" in cli("table", "--from", target, "--view",
                                             "calibration").stdout
    assert "ECE clean" in cli("table", "--from", packed["bundle"], "--view",
                              "calibration").stdout
    bad = cli("bundle", "--study", "tiny", "--out", out, "--to", tmp_path / "x",
              "--per-sample", "labels", check=False)
    assert bad.exit_code == 2 and "predictions" in bad.stderr and "correctness" in bad.stderr
