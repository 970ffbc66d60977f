"""What a study costs: feature reuse on and off, the default executor against one process,
and (with --baseline) the same study at an earlier commit, all in one run on this machine.

    python benchmarks/study.py                            # raml + late_fusion, full grid
    python benchmarks/study.py --baseline 922eb24         # ... and that commit's cost
    python benchmarks/study.py --grid smoke --limit 256   # a quick look

Each run is a `rambench run` of its own, in a fresh study folder with an empty
corrupted-data cache (so every run corrupts its test sets):

* **in-process**: `--executor inprocess`, training and evaluating;
* **reuse off**: the same, with `RAMBENCH_FEATURE_REUSE=0`, loading the in-process run's
  trained models (its wall time is all evaluation);
* **default**: the executor `rambench run` picks by itself (`--executor auto`);
* **baseline**: `--baseline REV` runs the study in one process in a git worktree of that
  commit.

A run's training time is the sum of its models' training seconds (stored in every
record); its evaluation phase is the rest of its wall time (corrupting, predicting,
writing, planning). The exports of this commit's runs must be identical; for the
baseline, the table says how many of the cells both ran have the same value (a cell
whose code changed since may differ).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# variables that would choose for the runs what each run sets for itself
CHOICES = ("RAMBENCH_EXECUTOR", "RAMBENCH_FEATURE_REUSE")


def rambench(args: list[str], folder: Path, code: Path = ROOT, **env: str) -> float:
    """Seconds `rambench ARGS` takes in `folder`, run from the source tree at `code`."""
    environment = {k: v for k, v in os.environ.items() if k not in CHOICES}
    # a run without stored timings would first time a few steps (`rambench.timing`): not
    # part of the study's work, nor of the baseline's
    environment.update(env, PYTHONPATH=str(code), RAMBENCH_TIMING_RUN="0")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rambench.cli", *args], cwd=folder, check=True,
                   env=environment, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def training_seconds(folder: Path, study: str) -> float:
    """The training time of the models a study's records were computed with (as they were
    trained: a study that loaded them did not spend it)."""
    jobs = {}
    for path in (folder / "results" / study / "records").glob("*.json"):
        provenance = json.loads(path.read_text())["provenance"]
        jobs[provenance["job_key"]] = provenance["training"]["seconds"]
    return sum(jobs.values())


def export(folder: Path, study: str) -> list[dict]:
    target = folder / f"{study}.csv"
    subprocess.run([sys.executable, "-m", "rambench.cli", "export", "--study", study, "--to",
                    str(target)], cwd=folder, check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    with open(target) as f:
        rows = [{k: v for k, v in row.items() if k != "study"} for row in csv.DictReader(f)]
    return sorted(rows, key=lambda row: json.dumps(row, sort_keys=True))


def values(rows: list[dict]) -> dict[tuple, str]:
    """Each cell's value, by (method, seed, condition, metric)."""
    return {(r["method"], r["seed"], r["condition"], r["metric"]): r["value"] for r in rows}


def agreement(rows: list[dict], reference: list[dict]) -> str:
    """How many of the cells both exports hold have the same value, and the others."""
    a, b = values(rows), values(reference)
    common = sorted(set(a) & set(b))
    differ = sorted({key[2] for key in common if a[key] != b[key]})
    return f"{len(common) - len(differ)} of {len(common)}" + (
        f" (differ: {', '.join(differ)})" if differ else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", action="append", default=None)
    parser.add_argument("--grid", default="full")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--baseline", metavar="REV", help="also run the study at this commit")
    args = parser.parse_args()
    methods = args.method or ["raml", "late_fusion"]
    common = [arg for m in methods for arg in ("--method", m)] + [
        "--grid", args.grid, "--seeds", "0", "--threads", str(args.threads)]
    common += ["--limit", str(args.limit)] if args.limit else []
    common += ["--epochs", str(args.epochs)] if args.epochs else []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)

        def run(study: str, *extra: str, code: Path = ROOT, **env: str) -> float:
            return rambench(["run", *common, "--study", study, "--cache-dir",
                             str(folder / f"cache-{study}"), *extra], folder, code, **env)

        wall = {"in-process": run("in-process", "--executor", "inprocess")}
        shutil.copytree(folder / "results" / "in-process" / "checkpoints",
                        folder / "results" / "reuse-off" / "checkpoints")
        wall["reuse off"] = run("reuse-off", "--executor", "inprocess",
                                RAMBENCH_FEATURE_REUSE="0")
        wall["default"] = run("default")
        if args.baseline:
            tree = folder / "baseline-tree"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree),
                            args.baseline], check=True, capture_output=True)
            try:
                wall["baseline"] = run("baseline", "--executor", "inprocess", code=tree)
            finally:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                                str(tree)], check=True)
        studies = {"in-process": "in-process", "reuse off": "reuse-off",
                   "default": "default", "baseline": "baseline"}
        training = {run_: training_seconds(folder, studies[run_]) for run_ in wall}
        training["reuse off"] = 0.0  # it loaded the in-process run's models
        exports = {run_: export(folder, studies[run_]) for run_ in wall}
    now = exports["in-process"]
    same = {run_: rows == now for run_, rows in exports.items() if run_ != "baseline"}
    # a pool's workers train while others evaluate: its wall time does not split
    evaluation = {run_: wall[run_] - training[run_] for run_ in wall if run_ != "default"}
    cells = len({(r["method"], r["seed"], r["condition"]) for r in now})
    print(f"study: {', '.join(methods)} on the {args.grid} grid, seed 0, {args.threads} torch "
          f"thread(s) per process, {cells} cells; {os.cpu_count()} CPU cores")
    print()
    print("| run | wall s | training s | evaluation s | same values as the first |")
    print("|---|---:|---:|---:|---|")
    labels = {"in-process": "this commit, one process", "reuse off": "... feature reuse off "
              "(trained models loaded)", "default": "this commit, default executor",
              "baseline": f"{args.baseline}, one process"}
    for run_ in wall:
        agree = same.get(run_, False) or agreement(exports[run_], now) + " cells"
        split = (f"{training[run_]:.1f} | {evaluation[run_]:.1f}" if run_ in evaluation
                 else "(in parallel) | ")
        print(f"| {labels[run_]} | {wall[run_]:.1f} | {split} | {agree} |")
    print()
    print("| speed-up | ratio |")
    print("|---|---:|")
    print(f"| evaluation phase, reuse on / off | "
          f"{evaluation['reuse off'] / evaluation['in-process']:.2f} |")
    print(f"| whole study, default executor / one process | "
          f"{wall['in-process'] / wall['default']:.2f} |")
    if "baseline" in wall:
        print(f"| evaluation phase, this commit / {args.baseline} (one process each) | "
              f"{evaluation['baseline'] / evaluation['in-process']:.2f} |")
        print(f"| whole study, this commit (default executor) / {args.baseline} (one process) | "
              f"{wall['baseline'] / wall['default']:.2f} |")
    if not all(same.values()):
        sys.exit("the runs' exports differ")


if __name__ == "__main__":
    main()
