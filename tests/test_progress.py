"""The ETA of a run's progress lines: from the plan's estimate and the work done, and
never jumping by more than 2x once a tenth is done."""

import io

import pytest

from rambench import progress as progress_module
from rambench.progress import Progress


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(progress_module.time, "monotonic", clock)
    return clock


def reporter(**kwargs):
    return Progress(10, 2, live=False, stream=io.StringIO(), **kwargs)


class Summary:
    seconds, best_val_accuracy, best_epoch, epochs_run = 1.0, 0.5, 0, 1


def test_with_an_estimate_the_eta_blends_it_with_the_rate_of_the_work_done(clock):
    p = reporter(estimate=(100.0, 100.0))  # 2 trainings of ~50 s, 10 cells of ~10 s
    assert p.eta() == pytest.approx(200.0)  # nothing done: the estimate
    clock.now += 80  # one training finished, slower than estimated
    p.job_finished("m", 0, Summary, trained=True)
    # done 50 of 200 s of work: expected 120 s left, measured 80 / 0.25 - 80 = 240 s
    assert p.eta() == pytest.approx(0.75 * 120 + 0.25 * 240)
    assert "ETA 2m30s" in p.status()


def test_without_an_estimate_the_eta_waits_for_a_tenth_and_then_never_jumps(clock):
    p = reporter()
    assert p.eta() is None and "ETA" not in p.status()
    clock.now += 10
    p.cell_done("a")  # 1 of 10 cells in 10 s
    assert p.eta() == pytest.approx(90.0)
    clock.now += 1
    p.cell_done("b")  # 2 of 10 in 11 s: the rate says 44 s; 89 s were left, so >= 44.5
    assert p.eta() == pytest.approx(44.5)


def test_warnings_and_progress_lines_reach_the_log_even_under_a_bar(tmp_path, clock):
    import logging

    log = tmp_path / "run.log"
    p = Progress(10, 1, log, live=True, stream=io.StringIO(), interval=5)
    logging.getLogger("rambench.checkpoints").warning("m (seed 0) trained to chance")
    clock.now += 6
    p.cell_done("m seed 0 clean")
    p.close()
    logging.getLogger("rambench.checkpoints").warning("after the run")
    text = log.read_text()
    assert "warning: m (seed 0) trained to chance" in text
    assert "cells 1/10 (10%)" in text  # the bar's state, as a plain line in the log
    assert "after the run" not in text  # the handler leaves with the run


def test_a_terminal_without_a_size_gets_plain_lines():
    import fcntl
    import os
    import struct
    import termios

    from rambench.progress import sized_terminal

    leader, follower = os.openpty()
    with os.fdopen(follower, "w") as terminal:
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 0, 0, 0, 0))
        assert terminal.isatty() and not sized_terminal(terminal)
        assert not Progress(1, 0, stream=terminal).live
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        assert sized_terminal(terminal)
    os.close(leader)
    assert not sized_terminal(io.StringIO())
