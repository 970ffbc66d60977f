"""A study's settings have one form: `rambench.study.Study`, built from a study file with
options overriding it, saved beside the results and run again from there alone."""

import pytest
import yaml

from rambench import api
from rambench.errors import UsageError
from rambench.study import FILE_NAME, build, parse, read, stored

TINY = {"description": "two cells", "epochs": 1, "seeds": [3],
        "set": {"train.lr": 0.004, "raml.alpha": 0.5},
        "conditions": {"clean": True, "missing_modalities": ["audio"]}}


def test_options_override_the_study_file_and_set_merges_per_key(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    study = build(str(path), name="s", out=tmp_path, methods="late_fusion", seeds=[1, 1, 2],
                  assignments=["raml.alpha=2", "raml.beta=0"], corruption_backend="reference")
    assert study.methods == ("late_fusion",) and study.seeds == (1, 2)  # options win
    assert study.epochs == 1 and study.description == "two cells"  # the file's, kept
    assert study.set == {"train": {"lr": "0.004"}, "raml": {"alpha": "2", "beta": "0"}}
    assert study.corruption_backend == "reference" and study.device == "auto"  # a default
    assert study.grid.name == "tiny" and study.root == tmp_path / "s"
    assert build(str(path), name="s", out=tmp_path).seeds == (3,)


def test_a_saved_study_reads_back_equal_and_is_the_default_for_its_folder(tmp_path):
    study = build("smoke", name="s", out=tmp_path, methods=["raml[norm=hard]", "late_fusion"],
                  epochs=2, limit=20)
    path = study.save()
    assert path == tmp_path / "s" / FILE_NAME
    again = stored(tmp_path, "s")
    assert again.to_mapping() == study.to_mapping() and again.grid.name == "smoke"
    assert again.methods == study.methods and again.limit == 20
    # no --grid: the stored study, options on top; a --grid replaces it
    assert build(None, name="s", out=tmp_path, seeds=[5]).epochs == 2
    assert build("smoke", name="s", out=tmp_path).epochs == read("smoke").epochs == 15
    assert build(None, name="other", out=tmp_path).to_mapping() == read("smoke").to_mapping()


@pytest.mark.parametrize("raw, message", [
    ({"split": "train", "conditions": {}}, "key 'split': unknown split 'train'"),
    ({"corruption_backend": "cuda", "conditions": {}}, "unknown corruption backend 'cuda'"),
    ({"limit": 0, "conditions": {}}, "key 'limit': expected a positive integer"),
    ({"tuned": {"raml": 0.1}, "conditions": {}}, "key 'tuned'"),
    ({"grid": 3, "conditions": {}}, "key 'grid'"),
    ({"seeds": [-1], "conditions": {}}, "seeds must be integers in 0.."),
])
def test_bad_study_files_name_the_file_and_the_key(raw, message):
    with pytest.raises(UsageError, match="study.yaml") as err:
        parse(raw, "g", "study.yaml")
    assert message in str(err.value)


def test_a_class_method_cannot_be_saved():
    from baselines.late_fusion import LateFusion

    with pytest.raises(UsageError, match="cannot be saved in a study file"):
        build("smoke", methods=[LateFusion]).to_mapping()


def test_run_with_the_study_alone_runs_the_stored_study_again(cli, tmp_path):
    """The first run saves its settings (no settings.json, no tuning.json beside them); the
    same study named alone plans exactly those cells, and an option still overrides."""
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump({**TINY, "set": {"train.lr": 0.004}}))
    first = cli("run", "--method", "late_fusion", "--grid", "tiny.yaml", "--study", "s",
                "--no-cache")
    assert "2 to run" in first.stderr and "settings:" not in first.stderr
    root = tmp_path / "results" / "s"
    assert sorted(p.name for p in root.iterdir() if p.is_file()) == [FILE_NAME]
    saved = yaml.safe_load((root / FILE_NAME).read_text())
    assert saved["methods"] == ["late_fusion"] and saved["seeds"] == [3]
    assert saved["set"] == {"train.lr": "0.004"}
    again = cli("run", "--study", "s", "--dry-run").stdout
    assert "2 cells, 2 done, 0 to do" in again
    more = cli("run", "--study", "s", "--seeds", "3,4", "--dry-run").stdout
    assert "4 cells, 2 done, 2 to do" in more
    rerun = cli("run", "--study", "s")
    assert "settings: results/s/study.yaml (conditions: tiny)" in rerun.stderr
    assert "0 to run" in rerun.stderr
    trained = cli("train", "--method", "visual_only", "--study", "s", "--epochs", "1")
    assert trained.exit_code == 0 and yaml.safe_load((root / FILE_NAME).read_text()) == saved
    plan = api.plan_study(study="s", out=tmp_path / "results")
    assert not plan.todo and {c.job.method.label for c in plan.cells} == {"late_fusion"}
    # each record says which modalities its method reads (unimodal references are found so)
    modalities = {r.method.label: r.method.modalities for r in plan.store.records()}
    assert modalities == {"late_fusion": ("visual", "audio"), "visual_only": ("visual",)}
