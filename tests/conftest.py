import os

import pytest
import torch

from tests.helpers import invoke_cli

# Small models: one intra-op thread is as fast, and immune to OpenMP oversubscription
# when the machine is shared (two threads per process on a busy 2-core box ran 30x slower).
# RAMBENCH_TEST_THREADS=2 runs the suite on two (`scripts/suite_threads.sh`): a tolerance
# that holds on one thread count only is a flaky test.
THREADS = int(os.environ.get("RAMBENCH_TEST_THREADS", "1"))
torch.set_num_threads(THREADS)
# ... and so does every `rambench` the tests start (the suite runs one worker per core); set
# for the whole environment, so that processes started directly (killed runs) inherit it
os.environ["OMP_NUM_THREADS"] = str(THREADS)

@pytest.fixture(autouse=True, scope="session")
def _isolated_corruption_cache(tmp_path_factory):
    """Every test (and every `rambench` it runs) uses a fresh corrupted-data cache."""
    os.environ["RAMBENCH_CACHE_DIR"] = str(tmp_path_factory.mktemp("corruption-cache"))
    # `rambench run` runs in-process unless a test asks for workers (--executor auto, the
    # users' default, spawns them where a study has several jobs: tested on its own)
    os.environ["RAMBENCH_EXECUTOR"] = "inprocess"
    # a study without stored timings estimates from them alone (the timing run that gives
    # a first estimate on a new machine is tested on its own)
    os.environ["RAMBENCH_TIMING_RUN"] = "0"


@pytest.fixture
def cli(tmp_path):
    """`cli(*args, check=True, cwd=tmp_path)`: `rambench ARGS` run in this process (see
    `invoke_cli`); a CliResult with exit_code, stdout and stderr."""

    def call(*args, check=True, cwd=None):
        return invoke_cli(*args, cwd=tmp_path if cwd is None else cwd, check=check)

    return call


def pytest_collection_modifyitems(config, items):
    """Tests marked slow run only with RAMBENCH_SLOW=1; a faster equivalent of each runs
    in the default suite (and in CI)."""
    if os.environ.get("RAMBENCH_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow check: set RAMBENCH_SLOW=1 to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
