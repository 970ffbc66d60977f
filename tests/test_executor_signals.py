"""Signals and dead workers with the local executor (`rambench.executors.LocalPool`): a
driver sent SIGTERM, or Ctrl-C in its terminal, stops its workers at once and prints the
resume line; a worker killed by the system costs only its own job in progress, which runs
again in a new worker (a second death leaves it to the next run). Real processes and real
signals: every run here is a `rambench` process of its own, and each study is finished by
a re-run to exactly the export of an uninterrupted in-process run."""

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from scripts.reliability import workers  # the driver's worker processes, from /proc
from tests.helpers import RAMBENCH, export_rows, invoke_cli

# Each test runs real processes for 10-20 s: slow checks (RAMBENCH_SLOW=1). CI runs the same
# scenarios end to end in `scripts/reliability.py` (SIGTERM to a local driver, kill -9 of a
# worker, a damaged record; an export identical to an uninterrupted run's).
pytestmark = pytest.mark.slow

# long enough trainings (a few seconds each) for a signal to find both jobs in progress
RUN = ["run", "--method", "late_fusion", "--method", "tmc", "--grid", "smoke", "--limit", "64",
       "--epochs", "6", "--set", "train.patience=100", "--threads", "1"]
LOCAL = [*RUN, "--executor", "local", "--workers", "2"]
RESUME = "finished cells are stored; run the same command to resume"




@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> list[dict]:
    """The export of an uninterrupted in-process run."""
    folder = tmp_path_factory.mktemp("signals-reference")
    invoke_cli(*RUN, "--study", "ref", cwd=folder)
    return export_rows(folder, "ref", ("study", "code_version"))


# ------------------------------------------------------------------ processes, from /proc
def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def ignores(pid: int, signum: int) -> bool:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    raise AssertionError(f"no SigIgn in /proc/{pid}/status")


def training(driver: int, locks: Path) -> dict[int, str]:
    """{worker pid: job key} of the workers training now (holding their job's lock)."""
    held = {}
    for pid in workers(driver):
        for fd in Path(f"/proc/{pid}").glob("fd/*"):
            try:
                target = Path(os.readlink(fd))
            except (FileNotFoundError, ProcessLookupError):
                continue
            if target.parent == locks and target.suffix == ".lock":
                held[pid] = target.stem
    return held


def wait_for(what: str, condition, proc: subprocess.Popen, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"{what}: not seen (exit status {proc.returncode})\n{err}")
        time.sleep(0.02)
    return found


def start(folder: Path, study: str) -> subprocess.Popen:
    return subprocess.Popen([RAMBENCH, *LOCAL, "--study", study], cwd=folder,
                            start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


# ------------------------------------------------------------------------------- tests
@pytest.mark.parametrize(("how", "status", "what"), [
    ("SIGTERM to the driver", 143, "terminated"),
    pytest.param("Ctrl-C to the process group", 130, "interrupted")])
def test_a_signalled_driver_stops_its_workers_at_once_and_a_rerun_completes(
        tmp_path, reference, how, status, what):
    root = tmp_path / "results" / "sig"
    proc = start(tmp_path, "sig")
    busy = wait_for("both workers training", lambda: len(
        held := training(proc.pid, root / "locks")) == 2 and held, proc)
    assert all(ignores(pid, signal.SIGINT) for pid in busy)  # Ctrl-C is the driver's
    if how.startswith("SIGTERM"):
        proc.send_signal(signal.SIGTERM)
    else:  # what a terminal sends: the whole foreground process group
        os.killpg(proc.pid, signal.SIGINT)
    sent = time.monotonic()
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 10, err
    assert proc.returncode == status, err
    assert f"{what}: {RESUME}" in err
    assert "Traceback" not in err, err
    assert not any(alive(pid) for pid in busy), "a worker outlived its driver"
    # stopped at once: neither job in progress got as far as its checkpoint
    assert not list(root.glob("checkpoints/*.pt"))
    invoke_cli(*LOCAL, "--study", "sig", cwd=tmp_path)
    assert export_rows(tmp_path, "sig", ("study", "code_version")) == reference


def test_a_killed_worker_costs_only_its_job_in_progress_which_runs_again(
        tmp_path, reference):
    root = tmp_path / "results" / "kill"
    proc = start(tmp_path, "kill")
    busy = wait_for("both workers training", lambda: len(
        held := training(proc.pid, root / "locks")) == 2 and held, proc)
    victim, survivor = busy
    os.kill(victim, signal.SIGKILL)
    new = wait_for("a new worker", lambda: set(workers(proc.pid)) - {victim, survivor}, proc)
    assert survivor in workers(proc.pid) and alive(survivor)  # not stopped by the death
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err
    died = [line for line in err.splitlines() if "worker process died" in line]
    assert len(died) == 1, err
    assert re.search(r"warning: a worker process died \(killed by signal 9 \(SIGKILL\)\) "
                     r"while running (late_fusion|tmc) seed 0; it runs again in a new worker",
                     died[0]), died
    assert new and not alive(victim)
    assert len(list(root.glob("records/*.json"))) == 26  # both jobs: nothing left to do
    rerun = invoke_cli(*LOCAL, "--study", "kill", cwd=tmp_path)
    assert "26 already done, 0 to run" in rerun.stderr
    assert export_rows(tmp_path, "kill", ("study", "code_version")) == reference


def test_a_job_whose_worker_dies_twice_is_left_for_the_resume(tmp_path, reference):
    root = tmp_path / "results" / "twice"
    proc = start(tmp_path, "twice")
    busy = wait_for("both workers training", lambda: len(
        held := training(proc.pid, root / "locks")) == 2 and held, proc)
    victim, job = next(iter(busy.items()))
    os.kill(victim, signal.SIGKILL)
    again = wait_for("the job in a new worker", lambda: [
        pid for pid, key in training(proc.pid, root / "locks").items()
        if key == job and pid != victim], proc)
    os.kill(again[0], signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    assert "Traceback" not in err, err
    label = re.search(r"died \(killed by signal 9 \(SIGKILL\)\) while running "
                      r"(\w+ seed 0); it runs again", err)
    assert label, err
    label = label[1]
    assert (f"warning: a worker process died again (killed by signal 9 (SIGKILL)) while "
            f"running {label}; it is left for the resume") in err
    assert (f"Error: {label} did not finish: its worker process died twice (killed by "
            "signal 9 (SIGKILL)); run the same command to resume") in err
    assert len(list(root.glob("records/*.json"))) == 13  # the other job's cells
    invoke_cli(*LOCAL, "--study", "twice", cwd=tmp_path)
    assert export_rows(tmp_path, "twice", ("study", "code_version")) == reference
