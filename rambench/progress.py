"""What a long `rambench run` tells its user while it works.

On a terminal: a live bar over the grid's cells, and one line per training job as it
starts and ends. Elsewhere (a batch job's log, `> run.log 2>&1`): the same job lines and,
between them, a plain progress line at most every `interval` seconds of work (cells done,
elapsed, ETA, what is running), so a log never goes quiet for long. Every line also goes,
with a timestamp, to a log file per invocation under the study folder
(`<study>/logs/run-<UTC time>.log`).
"""

from __future__ import annotations

import datetime
import logging
import os
import sys
import time
from pathlib import Path
from typing import TextIO

from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

INTERVAL_S = 10.0  # plain progress lines: at most this often, and at every job boundary


def duration(seconds: float) -> str:
    """'45s', '3m05s', '1h02m'."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def log_path(study_root: Path) -> Path:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return study_root / "logs" / f"run-{stamp}.log"


def sized_terminal(stream: TextIO) -> bool:
    """Whether `stream` is a terminal with a width: a bar needs one (a pseudo-terminal
    without a size gets plain progress lines instead)."""
    try:
        return stream.isatty() and os.get_terminal_size(stream.fileno()).columns > 0
    except (AttributeError, OSError, ValueError):
        return False


class _LogFileHandler(logging.Handler):
    """The run's warnings (the "rambench" logger, WARNING and above) into its log file."""

    def __init__(self, progress: Progress):
        super().__init__(logging.WARNING)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        self.progress.to_log(f"{record.levelname.lower()}: {record.getMessage()}")


class Progress:
    """Progress of one run over `total` cells and `jobs` trainings (see the module doc).

    `live`: a bar on the terminal (default: when stderr is a terminal); `quiet`: nothing on
    the screen (the log file still gets every line)."""

    def __init__(self, total: int, jobs: int, log_file: Path | None = None,
                 live: bool | None = None, quiet: bool = False,
                 interval: float = INTERVAL_S, stream: TextIO | None = None,
                 estimate: tuple[float, float] | None = None):
        self.total, self.jobs, self.interval = total, jobs, interval
        self.estimate = estimate  # the plan's (training, evaluating) seconds, if it has one
        self.finished = 0  # trainings finished
        self._eta: tuple[float, float] | None = None  # (when, the ETA given then)
        self.stream = stream or sys.stderr
        self.live = (sized_terminal(self.stream) if live is None else live) and not quiet
        self.quiet = quiet
        self.done = self.trained = 0
        self.start = self.last = time.monotonic()
        self.current = ""
        self.log = None
        if log_file is not None:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            self.log = open(log_file, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self.log_file = log_file
        self.bar = tqdm(total=total, desc="grid", unit="cell", file=self.stream,
                        disable=not self.live, dynamic_ncols=True)
        # warnings of the run go to its log too, and above the bar, never into its line
        self._warnings = _LogFileHandler(self)
        logging.getLogger("rambench").addHandler(self._warnings)
        self._redirect = logging_redirect_tqdm([logging.getLogger("rambench")]) \
            if self.live else None
        if self._redirect is not None:
            self._redirect.__enter__()

    # ----------------------------------------------------------------- events
    def job_started(self, label: str, seed: int, loading: bool) -> None:
        if loading:
            self.current = f"loading {label} seed {seed}"
            return
        self.trained += 1
        self.current = f"training {label} seed {seed}"
        self.line(f"training {label} seed {seed} (job {self.trained}/{self.jobs})")

    def job_finished(self, label: str, seed: int, summary, trained: bool) -> None:
        if trained:
            self.finished += 1
            self.line(f"trained {label} seed {seed} in {duration(summary.seconds)}: best "
                      f"validation accuracy {100 * summary.best_val_accuracy:.1f}% at epoch "
                      f"{summary.best_epoch + 1}/{summary.epochs_run}")
        self.current = f"evaluating seed {seed}"

    def trained_elsewhere(self) -> None:
        """A job trained in a worker process (its first cell arrived): counts for the ETA."""
        self.finished += 1

    def epoch(self, label: str, seed: int, epoch: int, epochs: int,
              values: dict[str, float]) -> None:
        """After each training epoch: on the bar, or a plain line at the usual rate."""
        terms = " ".join(f"{k} {v:.3f}" for k, v in values.items()
                         if k not in ("epoch", "lr", "seconds"))
        self.current = f"training {label} seed {seed}: epoch {epoch + 1}/{epochs} {terms}"
        self._tick()

    def cell_done(self, label: str) -> None:
        self.done += 1
        self.current = label
        if self.live:
            self.bar.set_postfix_str(label, refresh=False)
            self.bar.update()
        self._tick()

    # ----------------------------------------------------------------- output
    def _tick(self) -> None:
        now = time.monotonic()
        if now - self.last >= self.interval:
            if self.live:  # the bar on the screen, the same line as elsewhere in the log
                self.last = now
                self.bar.set_postfix_str(self.current[-60:])
                self.to_log(self.status())
            else:
                self.line(self.status())

    def eta(self) -> float | None:
        """Seconds still to go. With the plan's estimate: the work done is the estimated
        time of the trainings finished and the cells done, and the ETA blends what the
        estimate leaves with what the rate so far gives, by the share done. Without one:
        from the cells' rate, once a tenth is done. Once a tenth is done it moves by at
        most 2x from the previous ETA (less the time since), so it never jumps."""
        now = time.monotonic()
        elapsed = now - self.start
        if self.estimate is not None and sum(self.estimate) > 0:
            train_s, eval_s = self.estimate
            done = (train_s * self.finished / self.jobs if self.jobs else 0.0) + \
                (eval_s * self.done / self.total if self.total else 0.0)
            share = min(1.0, done / (train_s + eval_s))
            expected = max(0.0, train_s + eval_s - elapsed)
            measured = elapsed / share - elapsed if share > 0 else expected
            eta = (1 - share) * expected + share * measured
        else:
            share = self.done / self.total if self.total else 1.0
            if share < 0.1:
                return None
            eta = elapsed / share - elapsed
        if share >= 0.1 and self._eta is not None:
            before = max(0.0, self._eta[1] - (now - self._eta[0]))
            eta = min(max(eta, before / 2), 2 * before) if before > 0 else eta
        self._eta = (now, eta)
        return eta

    def status(self) -> str:
        elapsed = time.monotonic() - self.start
        share = self.done / self.total if self.total else 1.0
        eta = self.eta() if share < 1 else None
        left = f", ETA {duration(eta)}" if eta is not None else ""
        return (f"cells {self.done}/{self.total} ({100 * share:.0f}%), "
                f"{duration(elapsed)} elapsed{left}; {self.current}")

    def detail(self, text: str) -> None:
        """Text for the log file (e.g. the traceback of a method's error), also shown on the
        screen by `-v` (the "rambench" logger at DEBUG)."""
        if not text:
            return
        if self.log is not None:
            self.log.write(text.rstrip("\n") + "\n")
            self.log.flush()
        logging.getLogger("rambench").debug("%s", text.rstrip("\n"))

    def to_log(self, text: str) -> str:
        """`text` timestamped, written to the log file (if any); returns the stamped line."""
        stamped = f"{datetime.datetime.now():%H:%M:%S} {text}"
        if self.log is not None:
            self.log.write(stamped + "\n")
            self.log.flush()
        return stamped

    def line(self, text: str) -> None:
        """A timestamped line: to the log file, and to the screen unless quiet."""
        self.last = time.monotonic()
        stamped = self.to_log(text)
        if self.quiet:
            return
        if self.live:
            self.bar.write(text, file=self.stream)
        else:
            print(stamped, file=self.stream, flush=True)

    def close(self) -> float:
        """Ends the bar and the log; returns the elapsed seconds."""
        logging.getLogger("rambench").removeHandler(self._warnings)
        if self._redirect is not None:
            self._redirect.__exit__(None, None, None)
        self.bar.close()
        if self.log is not None:
            self.log.close()
            self.log = None
        return time.monotonic() - self.start
