"""The CLI as a user calls it, in a fresh folder: `rambench.cli:main` (what the console script
runs) in this process, and the installed console script where a test kills the process."""

import json
import re
import signal
import subprocess
import textwrap
import time

import pytest

from tests.helpers import (
    RAMBENCH,
    assert_usage_error,
    export_rows,
    invoke_cli,
    plugin_source,
    share_checkpoints,
)


@pytest.mark.parametrize("args, fragments", [
    (["train", "--method", "ramll"], ["unknown method 'ramll'", "did you mean 'raml'",
                                      "late_fusion"]),
    (["train", "--method", "raml", "--dataset", "avdigit"], ["did you mean 'avdigits'"]),
    (["train", "--method", "raml", "--set", "raml.alpah=1"], ["did you mean 'alpha'"]),
    (["train", "--method", "raml", "--set", "raml.alpha=big"], ["raml.alpha expects a float"]),
    (["train", "--method", "raml", "--set", "raml.norm=l1"], ["norm must be one of soft"]),
    (["train", "--method", "raml", "--set", "alpha"], ["scope.key=value"]),
    (["train", "--method", "raml", "--set", "late_fusion.x=1"], ["match no selected method"]),
    (["train", "--method", "nofile.py:Mine"], ["no such file 'nofile.py'"]),
    (["run", "--method", "raml", "--grid", "bigg"], ["unknown grid 'bigg'"]),
    (["run", "--method", "raml", "--seeds", "a,b"], ["--seeds expects"]),
    (["table", "--study", "nothing"], ["no study 'nothing'"]),
    (["ls", "things"], ["unknown value 'things'"]),
])
def test_usage_errors_exit_2_without_traceback(cli, args, fragments):
    assert_usage_error(cli(*args, check=False), *fragments)


def test_bad_grid_file_names_file_and_key(cli, tmp_path):
    grid = tmp_path / "mine.yaml"
    grid.write_text("conditions:\n  corruptions:\n    visual: [fogg]\n")
    result = cli("run", "--method", "raml", "--grid", str(grid), check=False)
    assert_usage_error(result, str(grid), "conditions.corruptions.visual", "did you mean 'fog'")


def test_ls_lists_methods_with_family_and_corruptions_with_tables(cli):
    methods = cli("ls", "methods").stdout
    for name, family in [("raml", "reference"), ("late_fusion", "vanilla"),
                         ("audio_only", "vanilla"), ("visual_only", "vanilla")]:
        line = next(ln for ln in methods.splitlines() if ln.startswith(name + " "))
        assert family in line
    corruptions = cli("ls", "corruptions").stdout.splitlines()
    image = [ln for ln in corruptions if re.match(r"\S+\s+image\s", ln)]
    assert len(image) == 20 and sum("(protocol: qmf)" in ln for ln in image) == 1
    # one severity table per scale under each scaled image corruption
    at = corruptions.index(next(ln for ln in corruptions if ln.startswith("contrast ")))
    assert [ln.split()[0] for ln in corruptions[at + 1:at + 4]] == [
        "imagenet", "tinyimagenet", "cifar"]
    assert corruptions[at + 3].split(None, 1)[1].startswith("contrast factor=0.75 |")
    assert any(ln.startswith("reverb ") for ln in corruptions)
    # each corruption's torch port with its fidelity class, from its spec
    listed = {(c["kind"], c["name"]): c for c in json.loads(cli("ls", "corruptions",
                                                                "--json").stdout)}
    assert listed[("image", "jpeg_compression")]["torch"].startswith("the reference code")
    assert listed[("image", "contrast")]["torch"] == "exact port"
    assert listed[("audio", "reverb")]["unit"] == "room m, absorption, mic distance m"
    assert "smoke" in cli("ls", "grids").stdout


PLUGIN = textwrap.dedent('''
    import torch.nn.functional as F
    from torch import nn

    from rambench.methods import Method


    class MeanFusion(Method):
        """Average of per-modality linear classifiers (a user's own method)."""

        family = "vanilla"

        def __init__(self, ctx, params=None):
            super().__init__(ctx, params)
            self.heads = nn.ModuleDict(
                {m: nn.Linear(ctx.feature_dim, ctx.num_classes) for m in ctx.modalities})

        def forward(self, batch):
            logits = [self.heads[m](z) for m, z in self.encode(batch).items()]
            return sum(logits) / len(logits)

        def training_loss(self, batch):
            return {"loss": F.cross_entropy(self(batch), batch.y)}
''')


def test_plugin_method_from_a_file_outside_the_package_trains(cli, tmp_path):
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "mine.py").write_text(PLUGIN)
    out = cli("train", "--method", "outside/mine.py:MeanFusion", "--epochs", "4").stdout
    accuracy = float(out.split("clean test accuracy ")[1].split("%")[0])
    assert accuracy > 25.0  # far above chance (10 %) after four epochs
    assert (tmp_path / "results" / "default" / "checkpoints").is_dir()
    as_json = json.loads(cli("train", "--method", "outside/mine.py:MeanFusion", "--epochs",
                             "4", "--json").stdout)
    assert as_json["method"] == "mine:MeanFusion" and as_json["clean_accuracy"] > 0.25
    assert len(as_json["training"]["history"]) == 4  # per-epoch losses and validation
    assert {"loss", "val_accuracy", "lr"} <= set(as_json["training"]["history"][0])
    missing = cli("train", "--method", "outside/mine.py:Nope", check=False)
    assert_usage_error(missing, "unknown class in outside/mine.py 'Nope'", "MeanFusion")


SMOKE = ["run", "--method", "raml", "--method", "late_fusion", "--grid", "smoke",
         "--epochs", "1"]


@pytest.fixture(scope="module")
def smoke_study(tmp_path_factory):
    """One uninterrupted smoke run, shared by the tests below: (folder, its stdout)."""
    folder = tmp_path_factory.mktemp("smoke")
    return folder, invoke_cli(*SMOKE, "--study", "straight", cwd=folder).stdout




def test_smoke_run_prints_table_resumes_and_exports(smoke_study):
    folder, out = smoke_study
    header = out.splitlines()[0]
    assert "raml" in header and "late_fusion" in header
    for condition in ("clean", "visual gaussian_noise s5", "audio gaussian_noise s1",
                      "missing audio", "missing rate 0.5"):
        assert any(line.startswith(f"| {condition} |") for line in out.splitlines())
    again = invoke_cli(*SMOKE, "--study", "straight", "--dry-run", cwd=folder).stdout
    assert ", 0 to do" in again
    rows = export_rows(folder, "straight")
    assert {r["method"] for r in rows} == {"raml", "late_fusion"}
    # one row per cell and metric: accuracy, and calibration and F1 from the predictions
    assert {r["metric"] for r in rows} == {"accuracy", "ece", "nll", "brier", "macro_f1"}
    assert len(rows) == 2 * 13 * 5
    assert {"dataset", "method_family", "family", "seed", "condition", "condition_kind",
            "test_modality", "modality_kind", "corruption", "corruption_family", "severity",
            "missing_pattern", "missing_rate", "metric", "value", "n", "higher_is_better",
            "corruption_backend", "key", "code_version"} <= set(rows[0])
    by_condition = {(r["method"], r["condition"]): r for r in rows}
    noise = by_condition["raml", "visual:gaussian_noise@5"]
    assert (noise["condition_kind"], noise["modality_kind"], noise["corruption_family"],
            noise["severity"]) == ("corruption", "image", "noise", "5")
    clean = by_condition["late_fusion", "clean"]
    assert (clean["condition_kind"], clean["test_modality"], clean["severity"],
            clean["method_family"]) == ("clean", "", "", "vanilla")
    assert by_condition["raml", "missing:rate=0.5"]["condition_kind"] == "random_missing"
    assert {r["corruption_backend"] for r in rows} == {"torch"}  # the default


def test_killed_run_resumes_without_recomputing_and_matches_uninterrupted(smoke_study):
    folder, _ = smoke_study
    records = folder / "results" / "killed" / "records"
    proc = subprocess.Popen([RAMBENCH, *SMOKE, "--study", "killed"], cwd=folder,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and len(list(records.glob("*.json"))) < 5:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = {p.name: p.stat().st_mtime_ns for p in records.glob("*.json")}
    assert 5 <= len(done_before) < 26
    dry = invoke_cli(*SMOKE, "--study", "killed", "--dry-run", cwd=folder).stdout
    assert f"{len(done_before)} done, {26 - len(done_before)} to do" in dry
    invoke_cli(*SMOKE, "--study", "killed", cwd=folder)
    after = {p.name: p.stat().st_mtime_ns for p in records.glob("*.json")}
    assert len(after) == 26
    assert all(after[name] == mtime for name, mtime in done_before.items())  # not recomputed
    assert export_rows(folder, "killed") == export_rows(folder, "straight")


def test_the_corruption_backend_is_part_of_every_corrupted_cell_key(smoke_study):
    folder, _ = smoke_study
    dry = invoke_cli("-v", *SMOKE, "--study", "straight", "--corruption-backend", "reference",
                     "--dry-run", cwd=folder).stdout
    todo = [line.split()[4] for line in dry.splitlines() if line.startswith("  todo")]
    # clean and missing-modality cells do not depend on the backend: already done
    assert todo and all(label.split(":")[0] in ("visual", "audio", "mixed") for label in todo)
    assert len(todo) == 2 * 9  # the smoke grid's corrupted conditions, for both methods
    summary = invoke_cli(*SMOKE, "--study", "straight", "--corruption-backend", "reference",
                         "--dry-run", cwd=folder).stdout.splitlines()
    assert "  raml: 9 cells to do, seeds 0 (corruption 9)" in summary
    assert not any(line.startswith("  todo") for line in summary) and len(summary) == 6
    bad = invoke_cli(*SMOKE, "--corruption-backend", "jax", "--dry-run", cwd=folder,
                     check=False)
    assert_usage_error(bad, "unknown value 'jax' Valid: reference, torch")


def test_corrupted_test_sets_are_cached_across_studies(smoke_study, tmp_path):
    folder, _ = smoke_study
    info = invoke_cli("cache", "info", cwd=folder).stdout
    entries = int(info.split("entries: ")[1].split()[0])
    assert entries >= 9  # every corrupted condition of the smoke grid
    # the new studies evaluate the raml model the smoke study trained: the test sets are
    # what they are about
    share_checkpoints(folder, "straight", "third")
    again = invoke_cli(*SMOKE[:3], "--grid", "smoke", "--epochs", "1", "--study", "third",
                       cwd=folder)
    assert "corrupted-data cache" in again.stderr and " 0 built" in again.stderr
    own = tmp_path / "own-cache"
    share_checkpoints(folder, "straight", "fourth")
    invoke_cli(*SMOKE[:3], "--grid", "smoke", "--epochs", "1", "--study", "fourth",
               "--cache-dir", str(own), cwd=folder)
    assert "entries: 9 " in invoke_cli("cache", "info", "--cache-dir", str(own),
                                       cwd=folder).stdout
    cleared = invoke_cli("cache", "clear", "--cache-dir", str(own), cwd=folder).stdout
    assert cleared.startswith("deleted 9 entries")
    assert "entries: 0 " in invoke_cli("cache", "info", "--cache-dir", str(own),
                                       cwd=folder).stdout


@pytest.mark.parametrize("modality, rows", [("visual", 19), ("audio", 11)])
def test_preview_draws_every_corruption_at_every_severity(cli, tmp_path, modality, rows):
    from PIL import Image

    out = cli("preview", "--modality", modality, "--to", "p.png").stdout
    assert out.strip() == "wrote p.png"
    with Image.open(tmp_path / "p.png") as image:
        width, height = image.size
    assert height > width and height > rows * 60  # one row per corruption, 6 columns
    bad = cli("preview", "--modality", "smell", check=False)
    assert_usage_error(bad, "no modality 'smell'", "visual, audio")
    bad = cli("preview", "--index", "100000", check=False)
    assert_usage_error(bad, "--index must be in 0..358")


def test_a_registered_method_loaded_by_path_has_the_same_identity(cli):
    import json
    from pathlib import Path

    import baselines

    path = Path(baselines.__file__).with_name("late_fusion.py")
    by_path = json.loads(cli("run", "--method", f"{path}:LateFusion", "--grid", "smoke",
                             "--dry-run", "--json").stdout)
    by_name = json.loads(cli("run", "--method", "late_fusion", "--grid", "smoke",
                             "--dry-run", "--json").stdout)
    assert by_path["cells"] == 13 and {t["method"] for t in by_path["todo"]} == {"late_fusion"}
    assert [t["key"] for t in by_path["todo"]] == [t["key"] for t in by_name["todo"]]


def test_a_validation_split_study_evaluates_val_samples_and_never_mixes_with_test(
        cli, tmp_path):
    grid = tmp_path / "select.yaml"
    grid.write_text("split: val\nconditions:\n  clean: true\n  corruptions: {audio: held_out}\n"
                    "  severities: [5]\n")
    cli("run", "--method", "late_fusion", "--grid", str(grid), "--epochs", "2", "--study",
        "select")
    rows = [r for r in export_rows(tmp_path, "select") if r["metric"] == "accuracy"]
    from rambench.datasets import datasets

    n_val = len(datasets.get("avdigits")().split("val"))
    assert {r["split"] for r in rows} == {"val"} and {int(r["n"]) for r in rows} == {n_val}
    assert {r["corruption"] for r in rows} == {"", "brown_noise", "clipping", "band_stop"}
    # the clean validation cell is the accuracy early stopping chose the checkpoint by
    record = next(json.loads(p.read_text()) for p in (tmp_path / "results/select/records")
                  .glob("*.json") if json.loads(p.read_text())["condition"]["kind"] == "clean")
    assert record["metrics"]["accuracy"] == pytest.approx(
        record["provenance"]["training"]["best_val_accuracy"], abs=1e-9)
    mixed = cli("run", "--method", "late_fusion", "--grid", "smoke", "--epochs", "2",
                "--study", "select", check=False)
    assert_usage_error(mixed, "holds results on the val split", "another --study")


def test_a_redirected_run_logs_progress_lines_and_ends_with_a_summary(cli, tmp_path):
    import datetime

    result = cli("run", "--method", "late_fusion", "--grid", "smoke", "--epochs", "1",
                 "--study", "logged")
    stamped = [line for line in result.stderr.splitlines()
               if re.match(r"\d\d:\d\d:\d\d ", line)]
    assert any("training late_fusion seed 0 (job 1/1)" in line for line in stamped)
    assert any(re.search(r"trained late_fusion seed 0 in \d+s: best validation", line)
               for line in stamped)
    times = [datetime.datetime.strptime(line[:8], "%H:%M:%S") for line in stamped]
    gaps = [(b - a).total_seconds() % 86400 for a, b in zip(times, times[1:], strict=False)]
    assert len(stamped) >= 3 and max(gaps) <= 30
    tail = result.stderr.splitlines()[-3:]
    assert re.match(r"done in \d+s: 13 cells computed, 0 reused, 0 failed job\(s\)", tail[0])
    logs = list((tmp_path / "results/logged/logs").glob("run-*.log"))
    assert len(logs) == 1 and f"log: {logs[0].relative_to(tmp_path)}" in tail[1]
    assert "next: rambench report --study logged" in tail[2]
    logged = logs[0].read_text()
    assert all(line in logged for line in stamped) and "done in" in logged
    again = cli("run", "--method", "late_fusion", "--grid", "smoke", "--epochs", "1",
                "--study", "logged", "--dry-run").stdout
    assert "0 to do" in again
    estimate = cli("run", "--method", "late_fusion", "--method", "tmc", "--grid", "smoke",
                   "--epochs", "1", "--study", "logged", "--dry-run").stdout
    assert re.search(r"estimated time: \d+s \(training 1 job\(s\)", estimate), estimate
    # training is estimated per epoch: late fusion's stored rate times the epochs planned
    from rambench.api import plan_study

    training = next(json.loads(p.read_text()) for p in (tmp_path / "results/logged/records")
                    .glob("*.json"))["provenance"]["training"]
    plan = plan_study("late_fusion", grid="smoke", epochs=4, study="logged",
                      out=tmp_path / "results")
    assert len(plan.todo) == 13 and plan.estimate_seconds()[0] == pytest.approx(
        4 * training["seconds"] / training["epochs_run"], rel=1e-12)
    # workers share the jobs: two jobs (two seeds) over 2 workers take half the time, one
    # job cannot be split
    assert plan.estimate_seconds(parallel=2) == plan.estimate_seconds()
    two = plan_study("late_fusion", grid="smoke", epochs=4, seeds=[0, 1], study="logged",
                     out=tmp_path / "results")
    serial, spread = two.estimate_seconds(), two.estimate_seconds(parallel=2)
    assert spread == pytest.approx((serial[0] / 2, serial[1] / 2), rel=1e-12)
    assert two.estimate_seconds(parallel=8) == pytest.approx(spread, rel=1e-12)
    dry = cli("run", "--method", "late_fusion", "--grid", "smoke", "--epochs", "4",
              "--seeds", "0,1", "--study", "logged", "--dry-run", "--executor", "local",
              "--workers", "2").stdout
    assert "2 workers in parallel" in dry
    # a new study on the same dataset estimates from the studies stored beside it
    fresh = plan_study("tmc", grid="smoke", epochs=4, study="fresh", out=tmp_path / "results")
    assert fresh.estimate_seconds()[0] == pytest.approx(
        4 * training["seconds"] / training["epochs_run"], rel=1e-12)  # late fusion's rate
    assert "from the stored timings of logged on avdigits" in fresh.estimate()
    other = plan_study("tmc", dataset="avmnist", grid="smoke", study="fresh",
                       out=tmp_path / "results")
    assert other.estimate() is None  # no timings on that dataset


def test_ls_grids_name_prints_the_preset_and_history_reads_training_curves(cli, tmp_path):
    import yaml

    from rambench.study import parse, read

    shown = cli("ls", "grids", "quick").stdout
    assert parse(yaml.safe_load(shown), "quick", "ls").to_mapping() == read("quick").to_mapping()
    assert_usage_error(cli("ls", "grids", "quik", check=False), "did you mean 'quick'")
    assert_usage_error(cli("ls", "methods", "raml", check=False), "takes no NAME")
    cli("run", "--method", "late_fusion", "--grid", "smoke", "--epochs", "3", "--study", "h")
    rows = json.loads(cli("history", "--study", "h", "--json").stdout)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert all({"loss", "val_accuracy", "lr"} <= set(r) and r["method"] == "late_fusion"
               for r in rows)
    assert "wrote" in cli("history", "--study", "h", "--to", "curves.png").stdout
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    assert_usage_error(cli("history", "--study", "h", "--method", "raml", check=False),
                       "--method", "late_fusion")


def test_limit_runs_a_plugin_on_a_debug_subset_that_never_mixes_with_full_results(
        cli, tmp_path):
    (tmp_path / "mine.py").write_text(PLUGIN)
    cli("run", "--method", "mine.py:MeanFusion", "--grid", "smoke", "--limit", "64",
        "--study", "debug")
    records = [json.loads(p.read_text())
               for p in (tmp_path / "results/debug/records").glob("*.json")]
    assert len(records) == 13 and {r["n"] for r in records} == {64}
    assert {r["dataset_version"].rsplit("+", 1)[1] for r in records} == {"limit64"}
    full = cli("run", "--method", "mine.py:MeanFusion", "--grid", "smoke", "--epochs", "1",
               "--study", "debug", check=False)
    assert_usage_error(full, "holds results of a --limit subset", "another --study")
    again = cli("run", "--method", "mine.py:MeanFusion", "--grid", "smoke", "--limit", "64",
                "--study", "debug", "--dry-run").stdout
    assert "13 done, 0 to do" in again
    assert_usage_error(cli("run", "--limit", "0", check=False), "--limit")


# the probe's first samples (indices 0-3) pass; the training batches reach further
BUGGY = plugin_source("Buggy", "{'loss': F.cross_entropy(self(batch), batch.y) "
                               "+ self.history[int(batch.index.max())]}").replace(
    "self.head = nn.Linear(ctx.feature_dim, ctx.num_classes)",
    "self.head = nn.Linear(ctx.feature_dim, ctx.num_classes)\n        self.history = [0.0] * 8")


def test_a_plugin_bug_during_training_names_its_line_and_logs_the_traceback(cli, tmp_path):
    (tmp_path / "buggy.py").write_text(BUGGY)
    (tmp_path / "clean.yaml").write_text("conditions: {clean: true}\n")
    line = next(i for i, text in enumerate(BUGGY.splitlines(), 1) if "self.history[" in text)
    args = ("run", "--method", "buggy.py:Buggy", "--grid", "clean.yaml", "--limit", "40",
            "--epochs", "1", "--study", "b")
    plain = cli(*args, check=False)
    assert plain.exit_code == 1 and "Traceback" not in plain.stderr
    assert f"IndexError: list index out of range (at buggy.py:{line}, in training_loss)" \
        in plain.stderr
    verbose = cli("-v", *args, check=False)
    assert verbose.exit_code == 1 and "Traceback (most recent call last)" in verbose.stderr
    assert f'buggy.py", line {line}, in training_loss' in verbose.stderr
    logs = "".join(p.read_text() for p in (tmp_path / "results/b/logs").glob("*.log"))
    assert f'buggy.py", line {line}, in training_loss' in logs


def test_rows_trained_with_other_settings_are_named_in_the_run_and_in_every_table(cli):
    base = ["--grid", "smoke", "--limit", "64", "--study", "mix"]
    cli("run", "--method", "late_fusion", "--method", "tmc", "--epochs", "1", *base)
    rerun = cli("run", "--method", "tmc", "--epochs", "2", *base).stderr
    assert "(tmc: trained with epochs 1 -> 2): re-running it" in rerun
    note = ("the rows were trained with different settings: epochs 1 (late_fusion), "
            "2 (tmc)")
    shown = cli("table", "--study", "mix", "--view", "leaderboard")
    assert f"Note: {note}" in shown.stdout and note not in shown.stderr
    latex = cli("table", "--study", "mix", "--format", "latex").stdout
    assert "epochs 1 (late\\_fusion), 2 (tmc)" in latex
    same = cli("run", "--method", "late_fusion", "--epochs", "2", *base)
    assert "the rows were trained" not in cli("table", "--study", "mix").stdout, same.stderr
