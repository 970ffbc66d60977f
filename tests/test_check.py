"""`rambench check`: every registered method passes the method contract on still images and
on multi-frame clips; a broken plug-in fails with a clear line and exit 1."""

import json

import pytest

from rambench.check import conformance, fixtures
from rambench.config import resolve_methods
from rambench.methods import methods
from tests.helpers import plugin_source

FIXTURES = fixtures()


def passes_the_contract(name: str, fixture: str) -> None:
    """`name` passes every check of `rambench check` on the fixture `fixture`."""
    spec = resolve_methods([name], {})[0]
    results = conformance(spec, FIXTURES[fixture])
    assert len(results) == 7 + len(FIXTURES[fixture].modalities) - 2  # one per modality
    failed = [f"{r.name}: {r.detail}" for r in results if not r.passed]
    assert not failed


@pytest.mark.parametrize("name", methods.names())
def test_every_registered_method_passes_on_still_images(name):
    passes_the_contract(name, "still images (avdigits)")  # the clips: test_check_clips.py


IGNORES_PRESENCE = plugin_source(
    "Careless", '{"loss": F.cross_entropy(self(batch), batch.y)}').replace(
    "return sum(self.head(z) for z in self.encode(batch).values())",
    "return sum(self.head(z) for z in self.encode(batch).values()) + 0 * batch.y[:, None]")


def test_a_method_that_reads_absent_inputs_fails_with_a_clear_line(cli, tmp_path):
    (tmp_path / "careless.py").write_text(IGNORES_PRESENCE)
    result = cli("check", "--method", "careless.py:Careless", check=False)
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert ("FAIL  careless:Careless on still images (avdigits): ignores the values of an "
            "absent visual input: logits change by") in result.stdout
    assert "PASS  careless:Careless on clips: state dict round-trips" in result.stdout
    assert "checks failed" in result.stderr
    report = json.loads(cli("check", "--method", "careless.py:Careless", "--json",
                            "--dataset", "avdigits", check=False).stdout)
    assert {r["fixture"] for r in report} == {"avdigits"}
    assert sum(not r["passed"] for r in report) == 2  # one per modality
    failures = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert len(failures) == 4  # two modalities on two fixtures


def test_a_conforming_plugin_passes(cli, tmp_path):
    (tmp_path / "good.py").write_text(plugin_source(
        "Good", '{"loss": F.cross_entropy(self(batch), batch.y)}').replace(
        "return sum(self.head(z) for z in self.encode(batch).values())",
        "return sum(self.head(z) for z in self.mask_absent(self.encode(batch), batch)"
        ".values())"))
    out = cli("check", "--method", "good.py:Good").stdout
    assert out.strip().endswith("all 14 checks passed")


@pytest.mark.parametrize("label", ["late_fusion+tent", "raml+read"])
def test_an_adapted_method_passes_the_contract_and_the_adaptation_checks(label):
    spec = resolve_methods([label], {})[0]
    fixture = "still images (avdigits)"
    results = conformance(spec, FIXTURES[fixture])
    names = [r.name for r in results]
    adaptation = label.split("+")[1]
    assert sum(n.startswith(f"{adaptation}:") for n in names) == 3
    failed = [f"{r.name}: {r.detail}" for r in results if not r.passed]
    assert not failed


def test_check_runs_on_a_named_dataset_instead_of_the_fixtures(cli):
    report = json.loads(cli("check", "--method", "late_fusion", "--dataset", "avdigits",
                            "--json").stdout)
    assert {r["fixture"] for r in report} == {"avdigits"} and all(r["passed"] for r in report)
    bad = cli("check", "--method", "late_fusion", "--dataset", "nope", check=False)
    assert bad.exit_code == 2 and "nope" in bad.stderr and "avmnist" in bad.stderr
