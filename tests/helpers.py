"""Shared by tests: feature-level contexts, hand-made batches, plugin sources, and running
the `rambench` command line (in this process, or in one of its own where that matters)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from rambench.batch import Batch
from rambench.methods import MethodContext


def identity_context(modalities=("audio", "visual"), dim=8, num_classes=3) -> MethodContext:
    """Encoders are identities: inputs are already (B, dim) features, so tests control z."""
    return MethodContext(tuple(modalities), num_classes, dim, lambda m: nn.Identity())


def linear_context(modalities=("audio", "visual"), dim=8, num_classes=3, in_dim=5):
    return MethodContext(tuple(modalities), num_classes, dim, lambda m: nn.Linear(in_dim, dim))


def make_batch(inputs: dict[str, torch.Tensor], y, present=None) -> Batch:
    n = len(y)
    present = present or {m: torch.ones(n, dtype=torch.bool) for m in inputs}
    return Batch(dict(inputs), dict(present), torch.as_tensor(y), torch.arange(n))


def plugin_source(class_name: str, loss: str) -> str:
    """A method file a user could write: per-modality linear heads summed, with `loss` (an
    expression of `self`, `batch` and `F`) as what `training_loss` returns."""
    return f'''
import torch.nn.functional as F
from torch import nn
from rambench.methods import Method


class {class_name}(Method):
    def __init__(self, ctx, params=None):
        super().__init__(ctx, params)
        self.head = nn.Linear(ctx.feature_dim, ctx.num_classes)

    def forward(self, batch):
        return sum(self.head(z) for z in self.encode(batch).values())

    def training_loss(self, batch):
        return {loss}
'''


# ------------------------------------------------------------------------------ the CLI

RAMBENCH = str(Path(sys.executable).with_name("rambench"))


@dataclass
class CliResult:
    """What a `rambench` command left: its exit code and its two output streams."""

    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None = None

    @property
    def returncode(self) -> int:  # subprocess.CompletedProcess's name, for older callers
        return self.exit_code


def _checked(args, result: CliResult, check: bool) -> CliResult:
    if check and result.exit_code != 0:
        raise AssertionError(f"rambench {' '.join(map(str, args))} failed "
                             f"({result.exit_code}):\n{result.stdout}\n{result.stderr}")
    return result


def run_cli(*args: str, cwd: Path, check: bool = True, timeout: int = 600) -> CliResult:
    """Run the installed `rambench` console script in a process of its own. Only for what
    needs one (signals, kills, concurrent runs); everything else uses `invoke_cli`."""
    result = subprocess.run([RAMBENCH, *args], cwd=cwd, capture_output=True, text=True,
                            timeout=timeout)
    return _checked(args, CliResult(result.returncode, result.stdout, result.stderr), check)


def invoke_cli(*args: str, cwd: Path, check: bool = True) -> CliResult:
    """Run `rambench ARGS` in this process, in the folder `cwd`, as the console script does:
    through `rambench.cli:main` (which turns errors into exit codes 1 and 2 and messages on
    stderr), with click's CliRunner capturing stdout and stderr apart.

    It starts as a fresh process would, without handlers on the "rambench" logger (a test
    that called `main` itself may have left one writing to a closed stream), and what a
    fresh process would not pass on is undone after the call: the handler `main` puts on
    that logger, its SIGTERM handler, environment variables, the torch
    thread count (`--threads`), the working folder, plugin modules loaded from files (a
    re-run must read an edited plugin again) and the cached git commit of the code."""
    import logging
    import signal
    import traceback

    import torch
    from click.testing import CliRunner

    from rambench import cli, provenance

    args = tuple(str(a) for a in args)
    logger = logging.getLogger("rambench")
    handlers, level = logger.handlers[:], logger.level
    logger.handlers[:] = []  # as in a fresh process: `main` adds the one it writes through
    sigterm = signal.getsignal(signal.SIGTERM)
    environ, threads, modules = dict(os.environ), torch.get_num_threads(), set(sys.modules)
    if hasattr(provenance, "git_commit") and hasattr(provenance.git_commit, "cache_clear"):
        provenance.git_commit.cache_clear()  # another engineer may have committed since

    def console_script(args, prog_name, **_):
        sys.argv = [prog_name, *args]
        try:
            return cli.main()
        except Exception:  # uncaught: what the interpreter prints, and exit status 1
            traceback.print_exc()
            raise

    console_script.main = console_script  # what CliRunner.invoke calls
    argv, folder = sys.argv, os.getcwd()
    try:
        os.chdir(cwd)  # (contextlib.chdir is Python 3.11+; rambench supports 3.10)
        try:
            runner = CliRunner(mix_stderr=False)  # click 8.1; 8.2+ always keeps them apart
        except TypeError:
            runner = CliRunner()
        result = runner.invoke(console_script, args, prog_name="rambench")
    finally:
        os.chdir(folder)
        sys.argv = argv
        logger.handlers[:], logger.level = handlers, level
        signal.signal(signal.SIGTERM, sigterm)
        os.environ.clear()
        os.environ.update(environ)
        torch.set_num_threads(threads)
        for name in set(sys.modules) - modules:
            if name.startswith("rambench_plugin_"):
                del sys.modules[name]
    return _checked(args, CliResult(result.exit_code, result.stdout, result.stderr,
                                    result.exception), check)


def export_rows(folder: Path, study: str, ignore: tuple[str, ...] = ("study",)) -> list[dict]:
    """The rows of `rambench export` of a study under folder/results, without the columns
    `ignore` (by default its name, so that two studies of the same cells compare equal)."""
    import csv

    target = folder / f"{study}.csv"
    invoke_cli("export", "--study", study, "--to", str(target), cwd=folder)
    with open(target) as f:
        return [{k: v for k, v in row.items() if k not in ignore} for row in csv.DictReader(f)]


def share_checkpoints(folder: Path, source: str, target: str) -> None:
    """Give study `target` (under folder/results) the checkpoints that study `source` trained:
    a run of the same jobs there loads them instead of training the same models again."""
    import shutil

    from rambench.store import Store

    shutil.copytree(Store(folder / "results", source).checkpoints_dir,
                    Store(folder / "results", target).checkpoints_dir, dirs_exist_ok=True)


def assert_usage_error(result: CliResult, *fragments: str) -> None:
    """A usage error: exit status 2 and a message on stderr, no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


# ------------------------------------------------------------ training on a toy problem

def blobs(seed: int = 0, n: int = 150, modalities=("audio", "visual")):
    """((x, y) train, (x, y) test): `n` samples each of 3 classes, per modality a (5,)
    feature = the class's mean (drawn N(0, 1.5^2) once) + N(0, 1.5^2) noise."""
    g = torch.Generator().manual_seed(seed)
    means = {m: torch.randn(3, 5, generator=g) * 1.5 for m in modalities}

    def draw():
        y = torch.arange(n) % 3
        return {m: mu[y] + 1.5 * torch.randn(n, 5, generator=g) for m, mu in means.items()}, y

    return draw(), draw()


def train_epochs(method, train, epochs: int, lr: float, batch_size: int = 50) -> list[float]:
    """AdamW on `train` (blobs) in order, `start_epoch` before each epoch, every loss
    asserted finite; the losses. Leaves the method in eval mode."""
    x, y = train
    optimiser = torch.optim.AdamW(method.parameters(), lr=lr)
    losses = []
    for epoch in range(epochs):
        method.train()
        method.start_epoch(epoch, epochs)
        for start in range(0, len(y), batch_size):
            rows = slice(start, start + batch_size)
            batch = make_batch({m: v[rows] for m, v in x.items()}, y[rows])
            batch.index = torch.arange(start, start + len(y[rows]))  # ids within the split
            out = method.training_loss(batch)
            assert torch.isfinite(out["loss"])
            optimiser.zero_grad(set_to_none=True)
            out["loss"].backward()
            optimiser.step()
            losses.append(out["loss"].item())
    method.eval()
    return losses


def accuracy_on(method, test, present=None) -> float:
    """Top-1 accuracy of `method` on `test` (blobs), `present` masks optional."""
    x, y = test
    with torch.no_grad():
        return (method(make_batch(x, y, present)).argmax(1) == y).float().mean().item()
