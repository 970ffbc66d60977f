"""A study in one process against the same study on a pool of local workers, the evaluation
with and without feature reuse, and where the time of a `rambench run` goes.

    python benchmarks/study.py                       # raml + late_fusion, full grid, seed 0
    python benchmarks/study.py --grid smoke --limit 256

The two whole runs are made here, one after the other, in fresh study folders with an empty
corrupted-data cache (so both corrupt their test sets), and their exports are compared
(they must be identical: the workers use the in-process run's torch thread count unless
--threads says otherwise). The ratio in-process / workers is the speed-up of
`--executor local --workers N`.

Then the in-process run's trained models are evaluated twice more under cProfile, in fresh
studies with empty caches, with feature reuse on and off (`RAMBENCH_FEATURE_REUSE=0`):
their exports must be identical, the ratio of their evaluation phases (corrupting test
inputs, predicting, writing records) is what reuse saves, and the whole study's ratio
adds the in-process run's training time to both. The profile splits each run's wall time
into phases.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import csv
import io
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# benchmarks/corruptions.py would shadow the `corruptions` package: keep this folder off
# the import path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

PHASES = {  # profile entry -> phase (cumulative time of that function)
    "train.py:.*\\(train\\)": "training (with its validation passes)",
    "test_inputs.py:.*\\(build_test_inputs\\)": "corrupting test inputs",
    "evaluate.py:.*\\(predict\\)": "predicting test cells",
    "store.py:.*\\(write\\)": "writing records",
}
VALIDATION = "evaluate.py:.*\\(accuracy\\)"  # predictions inside training, not test cells
EVALUATION = ("corrupting test inputs", "predicting test cells", "writing records")


def rambench(*args: str, cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rambench.cli", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def share_checkpoints(folder: Path, source: str, target: str) -> None:
    """Study `target` loads the models study `source` trained instead of training them."""
    shutil.copytree(folder / "results" / source / "checkpoints",
                    folder / "results" / target / "checkpoints", dirs_exist_ok=True)


def export(folder: Path, study: str) -> list[dict]:
    target = folder / f"{study}.csv"
    subprocess.run([sys.executable, "-m", "rambench.cli", "export", "--study", study, "--to",
                    str(target)], cwd=folder, check=True, stdout=subprocess.DEVNULL)
    with open(target) as f:
        return [{k: v for k, v in row.items() if k != "study"} for row in csv.DictReader(f)]


def profile(args: list[str], folder: Path) -> dict[str, float]:
    """Seconds per phase (cumulative time of its function) of an in-process run."""
    from rambench.cli import cli

    os.chdir(folder)
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the run's table: not for here
            cli.main(args, standalone_mode=False)
    finally:
        profiler.disable()
    total = time.perf_counter() - start
    stats = pstats.Stats(profiler)
    out = {}
    import re

    def cumulative(pattern: str) -> float:
        return sum(value[3] for key, value in stats.stats.items()
                   if re.search(pattern, f"{Path(key[0]).name}:{key[1]}({key[2]})"))

    for pattern, phase in PHASES.items():
        out[phase] = cumulative(pattern)
    out["predicting test cells"] -= cumulative(VALIDATION)
    out["other (planning, loading, tables)"] = total - sum(out.values())
    out["total"] = total
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", action="append", default=None)
    parser.add_argument("--grid", default="full")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args()
    methods = args.method or ["raml", "late_fusion"]
    common = [arg for m in methods for arg in ("--method", m)] + [
        "--grid", args.grid, "--seeds", "0", "--threads", str(args.threads)]
    common += ["--limit", str(args.limit)] if args.limit else []
    common += ["--epochs", str(args.epochs)] if args.epochs else []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        one = rambench("run", *common, "--study", "inprocess", "--cache-dir",
                       str(folder / "cache-a"), cwd=folder)
        pool = rambench("run", *common, "--study", "workers", "--executor", "local",
                        "--workers", str(args.workers), "--cache-dir", str(folder / "cache-b"),
                        cwd=folder)
        same = export(folder, "inprocess") == export(folder, "workers")
        runs = {}
        for study, reuse in (("reused", "1"), ("computed", "0")):
            share_checkpoints(folder, "inprocess", study)
            os.environ["RAMBENCH_FEATURE_REUSE"] = reuse
            runs[study] = profile(["run", *common, "--study", study, "--cache-dir",
                                   str(folder / f"cache-{study}")], folder)
        del os.environ["RAMBENCH_FEATURE_REUSE"]
        same_reuse = export(folder, "reused") == export(folder, "computed")
    print(f"study: {', '.join(methods)} on the {args.grid} grid, seed 0, "
          f"{args.threads} torch thread(s) per process")
    print("| run | wall s | ratio |")
    print("|---|---:|---:|")
    print(f"| in-process | {one:.1f} | 1.00 |")
    print(f"| --executor local --workers {args.workers} | {pool:.1f} | {one / pool:.2f} |")
    print(f"identical exports: {same}")
    print()
    evaluation = {study: sum(phases[p] for p in EVALUATION) for study, phases in runs.items()}
    print("| evaluating the trained models (cProfile) | reuse off s | reuse on s | ratio |")
    print("|---|---:|---:|---:|")
    for phase in (*EVALUATION, "other (planning, loading, tables)"):
        off, on = runs["computed"][phase], runs["reused"][phase]
        print(f"| {phase} | {off:.1f} | {on:.1f} | {off / on:.2f} |")
    off, on = evaluation["computed"], evaluation["reused"]
    print(f"| evaluation phase | {off:.1f} | {on:.1f} | {off / on:.2f} |")
    whole_off = one + off - on  # the in-process run (reuse on) with reuse's saving added back
    print(f"| whole study (the in-process run) | {whole_off:.1f} | {one:.1f} | "
          f"{whole_off / one:.2f} |")
    print(f"identical exports: {same_reuse}")
    if not (same and same_reuse):
        sys.exit("the runs' exports differ")


if __name__ == "__main__":
    main()
