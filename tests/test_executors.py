"""Executors and concurrency: local workers, SLURM through submitit's local executor, a run
killed part-way, two runs on one study. Each must leave exactly the export a plain
in-process run leaves (same thread count: the order of floating-point sums depends on it).
`rambench` runs in this process, except the runs that are killed and the two concurrent
runs, which need processes of their own."""

import json
import os
import signal
import subprocess
import time

import pytest

from tests.helpers import RAMBENCH, export_rows, invoke_cli

RUN = ["run", "--method", "late_fusion", "--method", "tmc", "--grid", "smoke", "--limit", "64",
       "--epochs", "2", "--threads", "1"]




def stored(folder, study):
    """(record files, checkpoint files) of a study."""
    root = folder / "results" / study
    return (sorted(p.name for p in (root / "records").glob("*.json")),
            sorted(p.name for p in (root / "checkpoints").glob("*.pt")))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reference")
    invoke_cli(*RUN, "--study", "ref", cwd=folder)
    return export_rows(folder, "ref"), stored(folder, "ref")


def test_local_workers_leave_the_in_process_export(cli, tmp_path, reference, monkeypatch):
    # one worker: before threads were the study's, it took every core (2 threads in CI)
    monkeypatch.setenv("RAMBENCH_CACHE_DIR", str(tmp_path / "cache"))
    out = cli(*RUN, "--study", "pool", "--executor", "local", "--workers", "1").stderr
    # the workers store the corrupted test sets in the driver's cache, where an in-process
    # run finds them (not in a cache of their own)
    assert not (tmp_path / "cache/corrupted/corrupted").exists()
    again = cli(*RUN, "--study", "pool2").stderr
    assert "corrupted-data cache" in again and " 0 built" in again
    assert "dispatching 2 training job(s) to LocalPool" in out
    assert export_rows(tmp_path, "pool") == reference[0]
    assert stored(tmp_path, "pool") == reference[1]
    numerics = {json.loads(p.read_text())["provenance"]["numerics"]
                for p in (tmp_path / "results/pool/records").glob("*.json")}
    assert len(numerics) == 1 and "; 1 thread; float32" in numerics.pop()


def test_a_slurm_array_killed_part_way_is_finished_by_a_rerun(cli, tmp_path, reference):
    command = [RAMBENCH, *RUN, "--study", "array", "--executor", "slurm", "--slurm-cluster",
               "local"]
    first = subprocess.Popen(command, cwd=tmp_path, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = tmp_path / "results/array/records"
    deadline = time.monotonic() + 300
    while not (records.is_dir() and any(records.glob("*.json"))):
        assert time.monotonic() < deadline and first.poll() is None, "no record appeared"
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)  # the driver and the array's tasks, mid-run
    subprocess.run(["pkill", "-9", "-f", str(tmp_path / "results/array/slurm")], check=False)
    first.wait()
    done_before = len(stored(tmp_path, "array")[0])
    assert 0 < done_before < 26
    cli(*command[1:])
    assert stored(tmp_path, "array") == reference[1]  # nothing lost, nothing twice
    assert export_rows(tmp_path, "array") == reference[0]
    logs = list((tmp_path / "results/array/slurm").glob("*_log.out"))
    assert len(logs) >= 2  # submitit's per-task logs, kept with the study


def test_two_concurrent_runs_on_one_study_train_each_job_once(tmp_path, reference):
    runs = [subprocess.Popen([RAMBENCH, *RUN, "--study", "both"], cwd=tmp_path,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    errors = [run.communicate(timeout=600)[1] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], errors
    assert export_rows(tmp_path, "both") == reference[0]
    assert stored(tmp_path, "both") == reference[1]
    logs = "".join(p.read_text() for p in (tmp_path / "results/both/logs").glob("*.log"))
    for method in ("late_fusion", "tmc"):
        assert logs.count(f"trained {method} seed 0 in") == 1, logs


def test_auto_picks_single_thread_workers_per_core_and_one_process_for_one_job(tmp_path):
    """--executor auto: min(cores // threads, jobs) local workers where that is 2 or more,
    else this process; the dry run and the first line say which."""
    from corruptions.reference_pool import usable_cpus
    from rambench import executors
    from rambench.api import plan_study

    cores = usable_cpus()
    for seeds, threads in (([0, 1, 2], 1), ([0], 1), ([0, 1], 2)):
        plan = plan_study("late_fusion", grid="smoke", seeds=seeds, out=tmp_path,
                          study=f"auto{len(seeds)}{threads}", threads=threads, limit=16)
        chosen, how = executors.auto_executor(plan)
        expected = min(cores // threads, len(seeds))
        if expected >= 2:
            assert isinstance(chosen, executors.LocalPool) and chosen.workers == expected
            assert how.startswith(f"a local pool of {expected} workers with {threads} thread")
        else:
            assert chosen is None and how.startswith("this process (auto: ")
    one = invoke_cli("run", "--executor", "auto", "--method", "late_fusion", "--grid", "smoke",
                     "--epochs", "1",
                     "--limit", "16", "--study", "one", "--out", str(tmp_path), cwd=tmp_path)
    assert "runs in this process (auto: one training job)" in one.stderr
    # with that run's timings stored beside it, three such jobs are seconds of work
    small = plan_study("late_fusion", grid="smoke", seeds=[0, 1, 2], out=tmp_path,
                       study="small", epochs=1, limit=16)
    estimate = small.estimate_seconds(1)
    assert estimate is not None and sum(estimate) < executors.POOL_PAYS_SECONDS
    if cores >= 2:
        chosen, how = executors.auto_executor(small)
        assert chosen is None and "too little for a pool's start-up" in how


def test_the_next_test_inputs_are_built_in_a_thread_within_the_memory_budget():
    """While the cells of one data key are evaluated, the next key's inputs are built in a
    thread, holding their size of the memory budget; without room, everything is built in
    order in the caller's thread."""
    import threading

    from rambench.execute import _ahead
    from rambench.memory import MemoryBudget

    by_data = {"a": ["cell a"], "b": ["cell b"], "c": ["cell c"]}
    for mb, threaded in ((1, {"a": False, "b": True, "c": True}),
                         (0, {"a": False, "b": False, "c": False})):
        built: dict[str, bool] = {}
        done = {key: threading.Event() for key in by_data}

        def build(key, cells, built=built, done=done):
            built[key] = threading.current_thread() is not threading.main_thread()
            done[key].set()
            return key.upper()

        memory, out = MemoryBudget(mb), []
        for cells, inputs in _ahead(build, by_data, memory, 1000):
            out.append((cells, inputs))
            following = chr(ord(inputs.lower()) + 1)
            if mb and following in done:  # built meanwhile, before this key's cells end
                assert done[following].wait(10) and memory.used == 1000
        assert out == [(["cell a"], "A"), (["cell b"], "B"), (["cell c"], "C")]
        assert built == threaded and memory.used == 0


def test_a_pool_reports_each_cell_once_as_soon_as_a_worker_stores_it(tmp_path, monkeypatch):
    """While the workers run, the driver reads the records they stored (every POLL_SECONDS)
    and reports them: cells are reported before their job's task returns, none twice."""
    from rambench import executors
    from rambench.api import plan_study
    from rambench.execute import execute

    monkeypatch.setattr(executors, "POLL_SECONDS", 0.05)
    plan = plan_study(["late_fusion"], grid="smoke", seeds=[0], out=tmp_path,
                      study="polled", epochs=1, limit=16)
    events = []

    class Events:
        def job(self, job, summary):
            events.append(("job", job.method.label))

        def cell(self, record):
            events.append(("cell", record.key))

        def close(self):
            pass

    outcome = execute(plan, executor=executors.LocalPool(1), trackers=[Events()])
    cells = [key for kind, key in events if kind == "cell"]
    assert sorted(cells) == sorted(c.key for c in plan.todo) == sorted(
        r.key for r in outcome.records)
    assert events.index(("job", "late_fusion")) > 0  # cells came before its task returned
