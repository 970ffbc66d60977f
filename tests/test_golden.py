"""The harness computes what HARNESS_VERSION says: the golden run's outputs are the ones
recorded for this version (`tests/golden_run.py`)."""

import pytest

from rambench.identity import HARNESS_VERSION
from tests import golden_run


def test_the_golden_run_gives_the_recorded_outputs(tmp_path):
    golden = golden_run.load()
    assert golden.get("harness_version") == HARNESS_VERSION, (
        f"the golden outputs are of harness version {golden.get('harness_version')} and "
        f"HARNESS_VERSION is {HARNESS_VERSION}: record them with "
        "`python -m tests.golden_run --record`")
    env = golden_run.environment()
    if env not in golden["runs"]:
        pytest.skip(f"no golden outputs recorded for this numerics environment ({env}); "
                    "`python -m tests.golden_run --record` adds them")
    expected = golden["runs"][env]
    outputs = golden_run.run(tmp_path)
    changed = sorted(k for k in expected.keys() | outputs.keys()
                     if expected.get(k) != outputs.get(k))
    assert not changed, (
        f"the harness computes something else than harness version {HARNESS_VERSION} did "
        f"({len(changed)} of {len(expected)} outputs changed, e.g. {changed[:3]}). If the "
        "change is intended, bump HARNESS_VERSION in rambench/identity.py (stored results "
        "become stale) and run `python -m tests.golden_run --record`; if not, the change "
        "has altered behaviour it should have kept")
