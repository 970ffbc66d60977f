"""The Python API reports a run's progress as the CLI does, unless told to be silent."""

import re

from rambench import api


def test_benchmark_prints_progress_lines_unless_silenced(tmp_path, capfd):
    kwargs = dict(grid="smoke", epochs=1, limit=32, out=tmp_path / "results")
    api.benchmark("late_fusion", study="loud", **kwargs)
    loud = capfd.readouterr().err
    assert re.search(r"run of study 'loud': 13 of 13 cells to compute, 1 training job", loud)
    assert "trained late_fusion seed 0" in loud
    api.benchmark("late_fusion", study="quiet", progress=False, **kwargs)
    assert capfd.readouterr().err == ""
    logs = list((tmp_path / "results/quiet/logs").glob("run-*.log"))
    assert len(logs) == 1 and "trained late_fusion seed 0" in logs[0].read_text()
