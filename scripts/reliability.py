"""Reliability check for CI: a study survives a signalled driver, a killed worker and a
damaged record, and ends as exactly the study an uninterrupted run makes.

    python scripts/reliability.py [--keep]

With rambench installed (its `rambench` command next to this Python), in a fresh folder:
an uninterrupted in-process run of a tiny study is the reference; the same study run with
`--executor local --workers 2` is sent SIGTERM while both workers train (it must exit with
status 143 and the resume line within 10 s, its workers stopped before either job's
checkpoint), run again with one worker
killed (kill -9) while it trains (the run must finish, naming the dead worker in one
line), one of its records is truncated, and the same command is run once more. Then
`rambench export` must equal the reference's export (but the study's name and the commit
of the code). No traceback anywhere. Exits 1 with a message naming the step that failed,
keeping the folder; `--keep` keeps it also on success. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RAMBENCH = str(Path(sys.executable).with_name("rambench"))
TINY = "conditions: {clean: true, missing_modalities: all, missing_rates: [0.5]}\n"
RUN = ["run", "--method", "late_fusion", "--method", "tmc", "--grid", "tiny.yaml",
       "--limit", "64", "--epochs", "6", "--set", "train.patience=100", "--threads", "1"]
LOCAL = [*RUN, "--executor", "local", "--workers", "2"]
RESUME = "terminated: finished cells are stored; run the same command to resume"
STUDY = "study"


class Failed(Exception):
    """A check that did not hold."""


def check(condition: object, message: str, output: str = "") -> None:
    if not condition:
        raise Failed(message + (f"\n--- its output:\n{output}" if output else ""))


def rambench(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([RAMBENCH, *args], cwd=folder, capture_output=True, text=True,
                          timeout=300)


def export(folder: Path, study: str) -> list[dict]:
    """The export's rows but the study's name and the commit of the code."""
    target = folder / f"{study}.csv"
    done = rambench(folder, "export", "--study", study, "--to", str(target))
    check(done.returncode == 0 and "Traceback" not in done.stderr,
          f"rambench export --study {study} failed ({done.returncode})", done.stderr)
    with open(target) as f:
        return [{k: v for k, v in row.items() if k not in ("study", "code_version")}
                for row in csv.DictReader(f)]


def workers(driver: int) -> list[int]:
    """The driver's worker processes (its children but multiprocessing's tracker)."""
    pids = []
    for children in Path(f"/proc/{driver}/task").glob("*/children"):
        try:
            pids += [int(p) for p in children.read_text().split()]
        except OSError:  # a thread or the process ended meanwhile
            pass
    found = []
    for pid in pids:
        try:
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            pass
    return found


def training(driver: int, locks: Path) -> list[int]:
    """The workers training now: holding their job's lock file open."""
    busy = []
    for pid in workers(driver):
        try:
            if any(Path(os.readlink(fd)).parent == locks
                   for fd in Path(f"/proc/{pid}").glob("fd/*")):
                busy.append(pid)
        except OSError:
            pass
    return busy


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def both_training(proc: subprocess.Popen, locks: Path, what: str) -> list[int]:
    deadline = time.monotonic() + 120
    while len(busy := training(proc.pid, locks)) < 2:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            _, err = proc.communicate()
            raise Failed(f"{what}: the two workers were never seen training (exit status "
                         f"{proc.returncode})\n--- its output:\n{err}")
        time.sleep(0.02)
    return busy


def start(folder: Path) -> subprocess.Popen:
    return subprocess.Popen([RAMBENCH, *LOCAL, "--study", STUDY], cwd=folder,
                            start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def steps(folder: Path) -> None:
    (folder / "tiny.yaml").write_text(TINY)
    root = folder / "results" / STUDY
    step("an uninterrupted in-process run (the reference)")
    done = rambench(folder, *RUN, "--study", "reference")
    check(done.returncode == 0, "the reference run failed", done.stderr)
    expected = export(folder, "reference")

    step("a local-executor run sent SIGTERM while both workers train")
    proc = start(folder)
    busy = both_training(proc, root / "locks", "SIGTERM")
    proc.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise Failed("the driver did not exit within 10 s of SIGTERM") from None
    check(proc.returncode == 143, f"exit status {proc.returncode} after SIGTERM, not 143", err)
    check(RESUME in err, "no resume line after SIGTERM", err)
    check("Traceback" not in err, "a traceback after SIGTERM", err)
    time.sleep(0.5)
    check(not any(alive(pid) for pid in busy), "a worker outlived its SIGTERM'd driver")
    check(not list(root.glob("checkpoints/*.pt")), "the workers were not stopped at once: "
          "a job in progress went on to its checkpoint after SIGTERM")
    print(f"  exited {time.monotonic() - sent:.1f} s after the signal")

    step("the same command, one worker killed (kill -9) while it trains")
    proc = start(folder)
    victim = both_training(proc, root / "locks", "kill -9")[0]
    os.kill(victim, signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    check(proc.returncode == 0, f"exit status {proc.returncode} after a worker was killed",
          err)
    check("Traceback" not in err, "a traceback after a worker was killed", err)
    died = [line for line in err.splitlines() if "worker process died" in line]
    check(len(died) == 1, f"{len(died)} lines about the dead worker, not 1", err)
    print(f"  {died[0]}")

    step("one record truncated, the same command again")
    record = sorted((root / "records").glob("*.json"))[0]
    data = record.read_bytes()
    record.write_bytes(data[: len(data) // 2])
    done = rambench(folder, *LOCAL, "--study", STUDY)
    check(done.returncode == 0, f"exit status {done.returncode} of the re-run", done.stderr)
    check("Traceback" not in done.stderr, "a traceback in the re-run", done.stderr)
    check(f"unreadable record results/{STUDY}/records/{record.name}" in done.stderr,
          "the truncated record was not named", done.stderr)
    check("1 to run" in done.stderr, "the re-run did not recompute exactly one cell",
          done.stderr)

    step("rambench export equals the reference's")
    got = export(folder, STUDY)
    check(len(got) == len(expected), f"{len(got)} rows exported, the reference has "
          f"{len(expected)}")
    for row, want in zip(got, expected, strict=True):
        check(row == want, "a row differs from the reference's:\n"
              f"  got      {row}\n  expected {want}")


START = time.monotonic()


def step(text: str) -> None:
    print(f"[{time.monotonic() - START:5.1f}s] {text}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="rambench-reliability-"))
    os.environ["OMP_NUM_THREADS"] = "1"  # one thread per process: fast on shared cores
    os.environ["RAMBENCH_CACHE_DIR"] = str(folder / "cache")
    try:
        steps(folder)
    except Failed as failure:
        print(f"reliability: FAILED: {failure}\n(work folder kept: {folder})", file=sys.stderr)
        sys.exit(1)
    step("reliability: OK")
    if args.keep:
        print(f"work folder: {folder}")
    else:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
