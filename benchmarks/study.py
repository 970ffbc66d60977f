"""A study in one process against the same study on a pool of local workers, and where the
time of a `rambench run` goes.

    python benchmarks/study.py                       # raml + late_fusion, quick grid, seed 0
    python benchmarks/study.py --grid smoke --limit 256

Both runs are made here, one after the other, in fresh study folders with an empty
corrupted-data cache (so both corrupt their test sets), and their exports are compared
(they must be identical: the workers use the in-process run's torch thread count unless
--threads says otherwise). The ratio in-process / workers is the speed-up of
`--executor local --workers N`. The profile (cProfile over the in-process run) splits the
wall time into training, corrupting test inputs, predicting and writing records.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import pstats
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


def rambench(*args: str, cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rambench.cli", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def export(folder: Path, study: str) -> list[dict]:
    target = folder / f"{study}.csv"
    subprocess.run([sys.executable, "-m", "rambench.cli", "export", "--study", study, "--to",
                    str(target)], cwd=folder, check=True, stdout=subprocess.DEVNULL)
    with open(target) as f:
        return [{k: v for k, v in row.items() if k != "study"} for row in csv.DictReader(f)]


def profile(args: list[str], folder: Path) -> dict[str, float]:
    """Seconds per phase (cumulative time of its function) of an in-process run."""
    import os

    from rambench.cli import cli

    os.chdir(folder)
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    try:
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
    parser.add_argument("--grid", default="quick")
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
        caches = [folder / "cache-a", folder / "cache-b"]
        one = rambench("run", *common, "--study", "inprocess", "--cache-dir", str(caches[0]),
                       cwd=folder)
        pool = rambench("run", *common, "--study", "workers", "--executor", "local",
                        "--workers", str(args.workers), "--cache-dir", str(caches[1]),
                        cwd=folder)
        same = export(folder, "inprocess") == export(folder, "workers")
        phases = profile(["run", *common, "--study", "profiled", "--cache-dir",
                          str(folder / "cache-c")], folder)
    print(f"study: {', '.join(methods)} on the {args.grid} grid, seed 0, "
          f"{args.threads} torch thread(s) per process")
    print("| run | wall s | ratio |")
    print("|---|---:|---:|")
    print(f"| in-process | {one:.1f} | 1.00 |")
    print(f"| --executor local --workers {args.workers} | {pool:.1f} | {one / pool:.2f} |")
    print(f"identical exports: {same}")
    print()
    print("| phase (in-process run, cProfile) | s | share |")
    print("|---|---:|---:|")
    for phase, seconds in phases.items():
        print(f"| {phase} | {seconds:.1f} | {100 * seconds / phases['total']:.0f} % |")
    if not same:
        sys.exit("the two runs' exports differ")


if __name__ == "__main__":
    main()
