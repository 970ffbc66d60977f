"""Nothing wrong is stored, nothing of the user's is deleted, and what cannot be trusted says
so: non-finite outputs at evaluation, the cache's `clear`, a diverging tuning candidate, a
reference model at chance, a damaged study, and a dry run that writes nothing."""

import json
import textwrap

import numpy as np
import pytest
import yaml

from rambench.cache import CorruptionCache
from rambench.calibrate import Ladder

NAN_WHEN_ABSENT = '''
import torch
import torch.nn.functional as F
from torch import nn
from rambench.methods import Method


class NanWhenAbsent(Method):
    """Fine on complete inputs; NaN logits for a sample missing any modality."""

    def __init__(self, ctx, params=None):
        super().__init__(ctx, params)
        self.head = nn.Linear(ctx.feature_dim, ctx.num_classes)

    def forward(self, batch):
        logits = sum(self.head(z) for z in self.encode(batch).values())
        absent = ~torch.stack(list(batch.present.values())).all(0)
        return logits.masked_fill(absent[:, None], float("nan"))

    def training_loss(self, batch):
        return {"loss": F.cross_entropy(self(batch), batch.y)}
'''

SMALL = ["--epochs", "1", "--limit", "48"]


def test_non_finite_outputs_at_evaluation_are_never_stored(cli, tmp_path):
    (tmp_path / "nan.py").write_text(NAN_WHEN_ABSENT)
    (tmp_path / "grid.yaml").write_text("conditions: {clean: true, missing_modalities: "
                                        "[visual]}\n")
    result = cli("run", "--method", "nan.py:NanWhenAbsent", "--grid", "grid.yaml", *SMALL,
                 check=False)
    assert result.exit_code == 1, result.stderr
    assert ("method nan:NanWhenAbsent (seed 0) gave non-finite outputs for 48 of 48 samples "
            "on missing:visual; nothing was stored for this cell") in result.stderr
    assert "Traceback" not in result.stderr
    records = [json.loads(p.read_text()) for p in (tmp_path / "results/default/records")
               .glob("*.json")]
    assert [r["condition"]["kind"] for r in records] == ["clean"]  # the finite cell only


def test_cache_clear_deletes_its_entries_and_nothing_else(cli, tmp_path):
    cache = CorruptionCache(tmp_path / "cache")
    cache.put("ab" * 10, "visual", np.zeros((2, 3), np.uint8), {"dataset_version": "1"})
    cache.put("cd" * 10, "audio", np.ones(4, np.float32), {"dataset_version": "1"})
    cache.flush()
    partial = cache.root / "ab" / ("ab" * 10) / ".visual.npy.x1.tmp"  # an interrupted write
    partial.write_bytes(b"\0")
    mine = [cache.root / "notes.txt", cache.root / "ab" / "README", cache.root / "zz" / "x.npy",
            cache.root / "ab" / ("ab" * 10) / "sub" / "y.json"]
    for path in mine:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("the user's")
    result = cli("cache", "clear", "--cache-dir", str(tmp_path / "cache"))
    assert result.stdout.startswith("deleted 2 entries")
    assert f"left {len(mine)} file(s) there that the cache did not write" in result.stderr
    left = sorted(p for p in cache.root.rglob("*") if p.is_file())
    assert left == sorted(mine)
    assert not partial.exists() and not (cache.root / "cd").exists()  # emptied folders go


def tuned_run(cli, tmp_path, lrs: str, check: bool = True):
    (tmp_path / "grid.yaml").write_text(f"tune: {{lr: [{lrs}]}}\nconditions: {{clean: true}}\n")
    return cli("run", "--method", "late_fusion", "--grid", "grid.yaml", *SMALL, check=check)


def test_a_diverging_tuning_candidate_is_recorded_and_the_tuning_goes_on(cli, tmp_path):
    tuned_run(cli, tmp_path, "0.001, 1.0e+30")
    study = yaml.safe_load((tmp_path / "results/default/study.yaml").read_text())
    choice = study["tuned"]["late_fusion"]
    assert choice["lr"] == pytest.approx(1e-3) and list(choice["val_accuracy"]) == ["0.001"]
    assert choice["diverged"] == ["1e+30"]


def test_tuning_where_every_candidate_diverges_is_one_error(cli, tmp_path):
    result = tuned_run(cli, tmp_path, "1.0e+30", check=False)
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert "tuning late_fusion: no candidate learning rate trained (lr 1e+30: training " \
        "late_fusion (seed 0) failed: the outputs on the validation split became non-finite " \
        "after epoch 1 (the weights diverged)" in result.stderr


@pytest.mark.parametrize("clean, n, at_chance", [
    # chance 0.1, n 400: two binomial standard errors are 2 * sqrt(0.09 / 400) = 0.03
    (0.129, 400, True), (0.131, 400, False), (0.05, 400, True), (0.9, 400, False),
    # n 100: 0.06
    (0.159, 100, True), (0.161, 100, False)])
def test_a_reference_model_at_chance_flags_its_ladders(clean, n, at_chance):
    ladder = Ladder("visual", "fog", "visual_only", clean, [clean] * 5, 0.1, n).check()
    assert ladder.at_chance is at_chance
    assert (ladder.flags == [f"reference at chance (clean {clean:.1%}, chance 10.0%)"]) \
        is at_chance


def test_a_damaged_study_names_the_record_and_the_command_that_recomputes_it(cli, tmp_path):
    (tmp_path / "grid.yaml").write_text("conditions: {clean: true}\n")
    cli("run", "--method", "late_fusion", "--grid", "grid.yaml", *SMALL)
    (record,) = (tmp_path / "results/default/records").glob("*.json")
    record.write_text(record.read_text()[:200])  # a half-written file
    for command in (["report"], ["export"], ["table"]):
        result = cli(*command, check=False)
        assert result.exit_code == 2, (command, result.stderr)
        assert f"no readable results: 1 damaged record(s), e.g. {record.relative_to(tmp_path)}" \
            in result.stderr
        assert "`rambench run --study default --out results` recomputes them" in result.stderr
    assert not (tmp_path / "results/default/export.csv").exists()
    cli("run", "--study", "default")  # the command it names
    assert "wrote 5 rows" in cli("export").stdout


def test_a_dry_run_with_tuning_computes_and_writes_nothing(cli, tmp_path):
    (tmp_path / "grid.yaml").write_text(textwrap.dedent("""\
        tune: {lr: [0.001, 0.002]}
        conditions: {clean: true}
    """))
    result = cli("run", "--method", "late_fusion", "--grid", "grid.yaml", *SMALL, "--dry-run")
    assert "(1 training jobs)" in result.stdout, result.stdout
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["grid.yaml"]


def test_a_study_of_two_numerics_environments_says_so(cli, tmp_path):
    (tmp_path / "grid.yaml").write_text("conditions: {clean: true}\n")
    cli("run", "--method", "late_fusion", "--grid", "grid.yaml", *SMALL)
    # the thread count is not in the key: the first method's result stays current
    cli("run", "--method", "late_fusion", "--method", "visual_only", "--grid", "grid.yaml",
        *SMALL, "--threads", "2")
    listing = cli("ls", "studies").stdout
    assert "warning: results from 2 numerics environments: " in listing
    assert "; 1 thread; float32]" in listing and "; 2 threads; float32]" in listing
    table = cli("table", "--view", "leaderboard")  # the table says so itself, once
    assert "Note: the results come from 2 numerics environments (1 from [" in table.stdout
    assert "rerun with --force in one to compare bit for bit" in table.stdout
    assert "numerics environments" not in table.stderr
