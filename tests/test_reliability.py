"""Nothing wrong is stored as a result: diverged training, damaged checkpoints, an unusable
cache, termination by signal, and reports on studies without corruption cells. `rambench`
runs in this process, except the runs that are sent a signal."""

import os
import signal
import stat
import subprocess
import time

import pytest
import yaml

from rambench.study import parse
from tests.helpers import RAMBENCH, invoke_cli, plugin_source, share_checkpoints

TINY = "conditions: {clean: true, missing_modalities: all, missing_rates: [0.5]}\n"
RUN = ["run", "--method", "late_fusion", "--grid", "tiny.yaml", "--epochs", "1"]

NAN_PLUGIN = plugin_source(
    "NaNLoss", '{"loss": F.cross_entropy(self(batch), batch.y) * float("nan")}')


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An undamaged run: (folder, its export text)."""
    folder = tmp_path_factory.mktemp("reliability")
    (folder / "tiny.yaml").write_text(TINY)
    invoke_cli(*RUN, "--study", "clean", cwd=folder)
    return folder, export(folder, "clean")


def export(folder, study) -> str:
    target = folder / f"{study}.csv"
    invoke_cli("export", "--study", study, "--to", str(target), cwd=folder)
    lines = target.read_text().splitlines()
    study_col = lines[0].split(",").index("study")
    return "\n".join(",".join(v for i, v in enumerate(line.split(",")) if i != study_col)
                     for line in lines)


def test_a_diverged_training_is_refused_named_and_retried(reference):
    folder, _ = reference
    (folder / "nan.py").write_text(NAN_PLUGIN)
    args = ["run", "--method", "nan.py:NaNLoss", "--method", "late_fusion", "--grid",
            "tiny.yaml", "--epochs", "1", "--study", "nan"]
    result = invoke_cli(*args, cwd=folder, check=False)
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert ("Error: training nan:NaNLoss (seed 0) failed: the loss is nan at epoch 1, step 1"
            in result.stderr)
    assert "run the same command again: failed jobs are retried" in result.stderr
    records = list((folder / "results" / "nan" / "records").glob("*.json"))
    assert len(records) == 4  # late fusion's cells only
    assert not any("NaNLoss" in p.read_text() for p in records)
    again = invoke_cli(*args, "--dry-run", cwd=folder)
    assert "4 done, 4 to do (1 training jobs)" in again.stdout  # it will be retried


@pytest.mark.parametrize("damage", ["truncated", "bit-flipped"])
def test_a_damaged_checkpoint_is_named_moved_aside_and_retrained(reference, damage):
    folder, expected = reference
    study = f"ckpt-{damage}"
    share_checkpoints(folder, "clean", study)  # the model this run's one job trains
    root = folder / "results" / study
    (checkpoint,) = root.glob("checkpoints/*.pt")
    data = bytearray(checkpoint.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2] ^= 0x10
    checkpoint.write_bytes(bytes(data))
    # no records: the cells must be computed from the checkpoint
    result = invoke_cli(*RUN, "--study", study, cwd=folder)
    assert f"warning: damaged checkpoint {checkpoint.relative_to(folder)}" in result.stderr
    assert "checksum mismatch" in result.stderr and "retraining" in result.stderr
    assert len(list(root.glob("checkpoints/*.pt.damaged-*"))) == 1
    assert export(folder, study) == expected


@pytest.mark.parametrize("where", ["a file", "read-only"])
def test_an_unusable_cache_costs_speed_not_results(reference, where, tmp_path):
    folder, expected = reference
    if where == "a file":
        cache = tmp_path / "cache-file"
        cache.write_text("not a folder")
    else:
        if os.geteuid() == 0:
            pytest.skip("root can write to a read-only folder")
        cache = tmp_path / "ro"
        cache.mkdir()
        cache.chmod(stat.S_IRUSR | stat.S_IXUSR)
    study = f"cache-{where.replace(' ', '-')}"
    result = invoke_cli(*RUN, "--study", study, "--cache-dir", str(cache), cwd=folder)
    assert "warning: corrupted-data cache" in result.stderr
    assert "continuing without it" in result.stderr
    assert export(folder, study) == expected


def test_sigterm_prints_the_resume_message_and_a_rerun_completes(reference):
    folder, expected = reference
    records = folder / "results" / "term" / "records"
    proc = subprocess.Popen([RAMBENCH, *RUN, "--study", "term"], cwd=folder,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and not list(records.glob("*.json")):
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the run finished before the signal arrived")
    assert proc.returncode == 143, err
    assert "terminated: finished cells are stored; run the same command to resume" in err
    assert "Traceback" not in err
    invoke_cli(*RUN, "--study", "term", cwd=folder)
    assert export(folder, "term") == expected


def test_records_follow_the_umask_and_reports_work_without_corruption_cells(reference):
    folder, _ = reference
    (record, *_) = (folder / "results" / "clean" / "records").glob("*.json")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(record.stat().st_mode) == 0o666 & ~mask
    report = invoke_cli("report", "--study", "clean", cwd=folder)
    assert "report.html" in report.stdout
    plot = invoke_cli("plot", "--study", "clean", cwd=folder)
    assert "missing.png" in plot.stdout
    table = invoke_cli("table", "--study", "clean", "--view", "missing", cwd=folder)
    assert "| late_fusion |" in table.stdout


def test_a_full_cache_disk_costs_speed_not_results(reference, tmp_path, monkeypatch, caplog):
    """The cache's writes fail as on a full disk (ENOSPC): one warning, a correct study."""
    import errno

    from rambench import api, cache

    def full(path, data, sync=True):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    folder, _ = reference
    monkeypatch.setattr(cache, "atomic_write_bytes", full)
    tiny = yaml.safe_load((folder / "tiny.yaml").read_text())
    tiny["conditions"].update(corruptions={"visual": ["gaussian_noise"]}, severities=[3])
    grid = parse(tiny, "tiny", "tiny")
    with caplog.at_level("WARNING", logger="rambench"):
        results = api.benchmark("late_fusion", grid=grid, epochs=1, out=tmp_path,
                                study="full-disk", cache_dir=tmp_path / "cache")
    assert results.summary.computed == 5
    warnings = [r.getMessage() for r in caplog.records]
    # one epoch may also leave the model at chance, which is warned about separately
    about_cache = [w for w in warnings if "trained to chance" not in w]
    assert len(about_cache) == 1 and "No space left on device" in about_cache[0]
    assert not list((tmp_path / "cache").rglob("*.npy"))


@pytest.mark.parametrize("moment", ["checkpoint written", "two records written"])
def test_a_run_killed_at_any_moment_resumes_to_the_same_export(reference, moment):
    folder, expected = reference
    study = "killed-" + moment.split()[0]
    root = folder / "results" / study
    proc = subprocess.Popen([RAMBENCH, *RUN, "--study", study], cwd=folder,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def reached() -> bool:
        if moment == "checkpoint written":
            return bool(list(root.glob("checkpoints/*.pt.sha256")))
        return len(list(root.glob("records/*.json"))) >= 2

    deadline = time.time() + 300
    while time.time() < deadline and not reached() and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    dry = invoke_cli(*RUN, "--study", study, "--dry-run", cwd=folder).stdout
    assert "(0 training jobs)" in dry  # the checkpoint is reused, not retrained
    invoke_cli(*RUN, "--study", study, cwd=folder)
    assert export(folder, study) == expected
