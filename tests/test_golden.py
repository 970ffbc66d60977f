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


def test_every_corruption_computes_what_its_code_hash_says():
    """Per kind and backend, the corruptions' outputs (every corruption, every severity, a
    few samples) are the recorded ones of the code they were recorded from. Changed code
    (a new hash) fails too: equal outputs mean the change may be declared equivalent
    (stored results stay current), other outputs mean it must be recorded again."""
    from rambench.identity import CODE_EQUIVALENTS

    env = golden_run.environment()
    golden = golden_run.load().get("corruptions", {})
    if env not in golden:
        pytest.skip(f"no golden corruption outputs recorded for this numerics environment "
                    f"({env}); `python -m tests.golden_run --record` adds them")
    expected = golden[env]
    outputs = golden_run.corruption_run()
    assert outputs.keys() == expected.keys()
    for part, now in outputs.items():
        then = expected[part]
        changed = sorted(k for k in now["outputs"].keys() | then["outputs"].keys()
                         if now["outputs"].get(k) != then["outputs"].get(k))
        if now["code"] != then["code"]:
            raw = [k for k, v in CODE_EQUIVALENTS.items() if v == then["code"]]
            advice = (f"its outputs are unchanged: add {{'<new hash>': '{then['code']}'}} to "
                      "CODE_EQUIVALENTS in rambench/identity.py to keep stored results current"
                      if not changed else "its outputs changed: record the golden outputs "
                      "again with `python -m tests.golden_run --record`")
            pytest.fail(f"the {part} corruption code changed since its golden outputs were "
                        f"recorded (hash {then['code']} -> {now['code']}; declared "
                        f"equivalents: {raw}): {advice}")
        assert not changed, (
            f"the {part} corruptions compute something else under the same code hash "
            f"{now['code']} ({len(changed)} outputs, e.g. {changed[:3]}): an equivalence in "
            "CODE_EQUIVALENTS is wrong, or the outputs depend on something the hash misses")
