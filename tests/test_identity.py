"""Method identity: labels, variants, code hashes, and stale results after a code change."""

import json
import textwrap

import pytest

from rambench import api
from rambench.config import resolve_methods
from rambench.errors import UsageError
from rambench.identity import MethodId, method_code_hash, parse_label
from rambench.study import parse, read
from tests.helpers import invoke_cli

TINY_GRID = {"conditions": {"clean": True, "missing_modalities": ["audio"]}}

PLUGIN = textwrap.dedent('''
    import torch.nn.functional as F
    from torch import nn

    from rambench.methods import Method

    SCALE = 1.0


    class MeanFusion(Method):
        """Average of per-modality linear classifiers."""

        def __init__(self, ctx, params=None):
            super().__init__(ctx, params)
            self.heads = nn.ModuleDict(
                {m: nn.Linear(ctx.feature_dim, ctx.num_classes) for m in ctx.modalities})

        def forward(self, batch):
            logits = [self.heads[m](z) for m, z in self.encode(batch).items()]
            return SCALE * sum(logits) / len(logits)

        def training_loss(self, batch):
            return {"loss": F.cross_entropy(self(batch), batch.y)}
''')


def test_labels_show_only_non_default_parameters():
    specs = resolve_methods(["raml", "raml[norm=hard]", "raml[norm=clamp,alpha=0.5]"], {})
    assert [s.label for s in specs] == ["raml", "raml[norm=hard]", "raml[alpha=0.5]"]
    assert specs[1].params.norm == "hard" and specs[2].params.alpha == 0.5
    # a variant naming only defaults is the method itself, once
    assert [s.label for s in resolve_methods(["raml", "raml[norm=clamp]"], {})] == ["raml"]
    # --set applies to every variant of its scope; the label's own values win
    both = resolve_methods(["raml", "raml[alpha=2]"], {"raml": {"alpha": "0.5"}})
    assert [s.label for s in both] == ["raml[alpha=0.5]", "raml[alpha=2]"]
    assert MethodId("m", (("b", True), ("lr", 0.001))).label == "m[b=true,lr=0.001]"


@pytest.mark.parametrize("text, message", [
    ("raml[norm]", "expected key=value"), ("raml[norm=hard", "expected name[key=value"),
    ("raml[nrom=hard]", "did you mean 'norm'"), ("raml[norm=l1]", "norm must be one of"),
    ("late_fusion[x=1]", "has no hyper-parameters"),
])
def test_bad_variant_labels_are_usage_errors(text, message):
    with pytest.raises(UsageError) as err:
        resolve_methods([text], {})
    assert message in str(err.value)


def test_parse_label():
    assert parse_label(" raml[ norm = hard , alpha=0.5 ] ") == (
        "raml", {"norm": "hard", "alpha": "0.5"})
    assert parse_label("mine.py:Cls") == ("mine.py:Cls", {})


def test_grid_methods_expand_to_the_product_of_variants(tmp_path):
    grid = parse({"methods": {"raml": {"norm": ["clamp", "hard"],
                                            "token_corruption": [0, 0.5]},
                                   "late_fusion": None}, **TINY_GRID}, "g", "g.yaml")
    assert list(grid.methods) == [
        "raml[norm=clamp,token_corruption=0]", "raml[norm=clamp,token_corruption=0.5]",
        "raml[norm=hard,token_corruption=0]", "raml[norm=hard,token_corruption=0.5]",
        "late_fusion"]
    labels = [s.label for s in resolve_methods(grid.methods, {})]
    assert labels == ["raml[token_corruption=0]", "raml", "raml[norm=hard,token_corruption=0]",
                      "raml[norm=hard]", "late_fusion"]


def test_ablation_preset_turns_each_component_off():
    grid = read("raml-ablation.yaml")
    labels = [s.label for s in resolve_methods(grid.methods, {})]
    assert labels[0] == "raml" and len(set(labels)) == len(labels) == 17
    assert {"raml[gate=false,unimodal_heads=false]", "raml[norm=none]",
            "raml[norm=soft]", "raml[beta=0]",
            "raml[token_corruption=0]", "raml[gamma=0]", "raml[norm=hard]",
            "raml[tokens=slices]", "raml[view_scope=tokens]", "raml[gate=false]"} <= set(labels)


def write_module(path, scale="1.0", comment=""):
    path.write_text(PLUGIN.replace("SCALE = 1.0", f"SCALE = {scale}{comment}"))


def test_code_hash_ignores_comments_and_docstrings_but_not_constants(tmp_path, monkeypatch):
    from rambench.registry import load_from_file

    path = tmp_path / "hashme.py"
    write_module(path)
    first = method_code_hash(load_from_file(f"{path}:MeanFusion"))
    write_module(path, comment="  # a comment")
    path.write_text(path.read_text().replace("Average of", "The average of"))
    assert method_code_hash(load_from_file(f"{path}:MeanFusion")) == first
    write_module(path, scale="2.0")
    assert method_code_hash(load_from_file(f"{path}:MeanFusion")) != first


def test_code_hash_covers_imported_baseline_modules():
    from baselines.late_fusion import LateFusion
    from rambench.identity import method_files

    names = {p.name for p in method_files(LateFusion)}
    assert "late_fusion.py" in names and "base.py" not in names  # the harness is separate


def test_editing_a_registered_method_reruns_it_only(tmp_path, monkeypatch):
    """A method registered by name (as an installed plug-in is): change one constant in
    its file, and the next run retrains that method, keeps the other's results, and leaves
    the old results on disk as stale."""
    import importlib

    from rambench.methods import methods

    module = tmp_path / "registered_mine.py"
    write_module(module)
    monkeypatch.syspath_prepend(str(tmp_path))
    methods.names()  # load the built-in entries first
    monkeypatch.setitem(methods._entries, "registered_mine",
                        importlib.import_module("registered_mine").MeanFusion)
    grid = parse(TINY_GRID, "tiny", "tiny")
    kwargs = dict(dataset="avdigits", grid=grid, seeds=[0], out=tmp_path / "results",
                  study="s", epochs=1)
    first = api.benchmark(["registered_mine", "visual_only"], use_cache=False, **kwargs)
    assert first.summary.computed == 4 and first.summary.stale_methods == {}
    again = api.benchmark(["registered_mine", "visual_only"], use_cache=False, **kwargs)
    assert again.summary.computed == 0
    write_module(module, scale="3.0")  # one changed constant, as a user edits the file
    plan = api.plan_study(["registered_mine", "visual_only"], **kwargs)
    assert plan.stale_summary().startswith(
        "1 method changed since its results were stored (registered_mine: method code "
        "changed): re-running it")
    assert {c.job.method.label for c in plan.todo} == {"registered_mine"}
    second = api.run_plan(plan, use_cache=False)
    assert second.summary.computed == 2 and second.summary.reused == 2
    store = plan.store
    index = store.index()
    assert len(index.stale) == 2 and len(store.records()) == 4  # old kept, not mixed in
    assert {r.method.code for r in store.records() if r.method.name == "registered_mine"} \
        == {plan.cells[0].job.method.id.code}
    write_module(module)  # the edit is reverted: the first results are current again
    back = api.plan_study(["registered_mine", "visual_only"], **kwargs)
    assert not back.todo and len(back.superseded) == 2
    api.run_plan(back, use_cache=False)
    assert {r.method.code for r in store.records() if r.method.name == "registered_mine"} \
        == {r.method.code for r in first.records if r.method.name == "registered_mine"}


def test_editing_a_file_plugin_reruns_it_and_reuse_stale_keeps_old_results(tmp_path):
    (tmp_path / "tiny.yaml").write_text(json.dumps(TINY_GRID))
    write_module(tmp_path / "mine.py")
    run = ["run", "--method", "mine.py:MeanFusion", "--method", "visual_only", "--grid",
           "tiny.yaml", "--epochs", "1", "--no-cache"]
    first = json.loads(invoke_cli(*run, "--json", cwd=tmp_path).stdout)
    assert first["computed"] == 4
    assert {r["method"] for r in first["results"]} == {"mine:MeanFusion", "visual_only"}
    write_module(tmp_path / "mine.py", comment="  # comments do not change results")
    assert ", 0 to do" in invoke_cli(*run, "--dry-run", cwd=tmp_path).stdout
    write_module(tmp_path / "mine.py", scale="3.0")
    kept = invoke_cli(*run, "--reuse-stale", "--json", cwd=tmp_path)
    assert json.loads(kept.stdout)["computed"] == 0
    assert "keeping the old results (--reuse-stale)" in kept.stderr
    rerun = invoke_cli(*run, cwd=tmp_path)
    assert ("1 method changed since its results were stored (mine:MeanFusion: method code "
            "changed): re-running it; --reuse-stale keeps the old results") in rerun.stderr
    assert "2 already done, 2 to run" in rerun.stderr
    studies = json.loads(invoke_cli("ls", "studies", "--json", cwd=tmp_path).stdout)
    assert studies[0]["records"] == 4 and studies[0]["stale_methods"] == {"mine:MeanFusion": 2}
    listing = invoke_cli("ls", "studies", cwd=tmp_path).stdout
    assert "stale: mine:MeanFusion (2 results of earlier code" in listing
    export = tmp_path / "e.csv"
    invoke_cli("export", "--to", str(export), cwd=tmp_path)
    # current results only: 4 cells x 5 metrics (accuracy, ece, nll, brier, macro_f1)
    assert len(export.read_text().splitlines()) == 1 + 4 * 5
    table = invoke_cli("table", cwd=tmp_path)
    assert "note: 2 stale results (of earlier code or settings) are left out" in table.stderr
    assert table.stdout.count("| mine:MeanFusion |") == 1


def test_two_plugins_with_the_same_class_name_do_not_collide(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        write_module(tmp_path / folder / f"{folder}_mine.py")
    specs = resolve_methods([f"{tmp_path}/a/a_mine.py:MeanFusion",
                             f"{tmp_path}/b/b_mine.py:MeanFusion"], {})
    assert [s.label for s in specs] == ["a_mine:MeanFusion", "b_mine:MeanFusion"]


def test_corrupted_data_keys_carry_the_corruption_code(monkeypatch):
    from rambench import identity

    for files in identity.CORRUPTION_FILES.values():
        assert all((identity.PACKAGE_ROOT / f).is_file() for f in files)
    hashes = {k: identity.corruption_code_hash(*k) for k in identity.CORRUPTION_FILES}
    # each kind and backend its own code; a protocol's two backends run the same code
    files = {k: frozenset(f) for k, f in identity.CORRUPTION_FILES.items()}
    assert len(set(hashes.values())) == len(set(files.values()))
    assert all((hashes[a] == hashes[b]) == (files[a] == files[b]) for a in files for b in files)
    # another version of a file (here: the table module replaced by another file) changes it
    monkeypatch.setitem(identity.CORRUPTION_FILES, ("audio", "reference"),
                        ("corruptions/scales.py",))
    assert identity.corruption_code_hash("audio", "reference") != hashes["audio", "reference"]


def test_every_module_that_shapes_test_inputs_is_in_a_data_key():
    """A corruption module, or the code that turns conditions into inputs (seeds, masks,
    batching), that no data key identifies would let a changed test set reuse old results:
    each is hashed with its corruptions' code or is the harness's (HARNESS_VERSION, guarded
    by the golden run)."""
    from rambench import identity

    hashed = {f for files in identity.CORRUPTION_FILES.values() for f in files}
    hashed |= set(identity.HARNESS_FILES)
    modules = {f"corruptions/{p.name}" for p in (identity.PACKAGE_ROOT / "corruptions").glob(
        "*.py")} - {"corruptions/__init__.py", "corruptions/registry.py",
                    "corruptions/allocator.py"}  # where memory comes from, not what is computed
    assert modules <= hashed, sorted(modules - hashed)
    assert "rambench/test_inputs.py" in hashed


def test_code_hash_follows_definitions_not_files(tmp_path):
    """Moving a function to another file, or reordering, keeps the hash; renaming or
    changing it does not (swapping two names can change behaviour)."""
    from rambench.identity import code_hash

    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("import math\n\n\ndef f(x):\n    return math.sqrt(x) + 1\n\n\n"
                 "def g(x):\n    return 2 * x\n")
    b.write_text("K = 3  # a constant\n")
    first = code_hash([a, b])
    a.write_text("import math\n\n\ndef f(x):\n    '''doc'''\n    return math.sqrt(x) + 1\n")
    b.write_text("from math import pi\n\n\ndef g(x):\n    # comment\n    return 2 * x\n\n"
                 "K = 3\n")
    assert code_hash([a, b]) == first
    b.write_text("def h(x):\n    return 2 * x\n\nK = 3\n")
    assert code_hash([a, b]) != first
    b.write_text("def g(x):\n    return 2 * x\n\nK = 4\n")
    assert code_hash([a, b]) != first


def test_the_harness_is_keyed_by_its_version():
    from rambench import identity

    spec = api.plan_study("late_fusion", grid=parse(TINY_GRID, "tiny", "tiny"),
                          seeds=[0], out="/nonexistent", study="s").cells[0]
    assert spec.job.harness == f"v{identity.HARNESS_VERSION}" == spec.inputs_code


IDENTITY1 = __import__("pathlib").Path(__file__).parent / "data" / "identity1"


def _identity1_methods(folder):
    """The study's methods, its plug-in where a user keeps one: outside rambench's tree."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(IDENTITY1 / "mine.py", folder / "mine.py")
    return ["late_fusion", f"{folder}/mine.py:MeanFusion"]


def _identity1_plan(out):
    import shutil

    shutil.copytree(IDENTITY1 / "records", out / "identity1" / "records")
    return api.plan_study(_identity1_methods(out / "plugin"),
                          grid=read(str(IDENTITY1 / "grid.yaml")), out=out,
                          study="identity1", device="cpu", limit=64)


def test_results_stored_under_identity_1_are_carried_over_not_recomputed(tmp_path):
    """`tests/data/identity1`: a study stored by rambench before keys named the harness by
    its version. Its code is this code, so its 10 results are current: re-keyed on the
    next run, never recomputed, none dropped, their values untouched."""
    from rambench import identity, migrate

    plan = _identity1_plan(tmp_path)
    codes = {c.job.method.id.name: c.job.method.id.code for c in plan.cells}
    if identity.HARNESS_VERSION != 1 or codes["late_fusion"] not in migrate.METHOD_CODE:
        pytest.skip("the harness or late_fusion changed since identity 1: these stored "
                    "results are stale by design")
    stored = {r.coordinates: r for r in plan.store.records()}
    assert len(plan.cells) == len(stored) == 10
    # the audio-visual events' code (one hash for all events) changed since identity 1
    # (compression takes the image scale, crowd babbles with other classes): those cells
    # are stale, by design; every other result is carried
    av_changed = identity.corruption_code_hash("av", "torch") != \
        identity.DRAW_SALTS[("av", "torch")]
    av_cells = {c.coordinates for c in plan.cells if c.condition.kind == "av"}
    assert len(av_cells) == 2
    current = 10 - len(av_cells) * av_changed
    assert len(plan.todo) == 10 - current and len(plan.carried) == current
    assert {s.cell.coordinates for s in plan.stale} == (av_cells if av_changed else set())
    assert [s.reason for s in plan.stale] == ["corruption code changed"] * len(plan.stale)
    assert f"{current} stored result(s) of the same code keyed by an earlier rambench" in \
        plan.describe()
    result = api.run_plan(plan, use_cache=False, progress=False)
    assert result.summary.computed == 10 - current and result.summary.reused == current
    after = {r.coordinates: r for r in plan.store.records()}  # the current ones
    assert after.keys() == stored.keys()
    assert len(plan.store.all_records()) == 10 + 10 - current  # the stale ones are kept
    assert {r.key for r in after.values()} == {c.key for c in plan.cells}
    for coordinates, record in after.items():
        old = stored[coordinates]
        if coordinates in av_cells and av_changed:  # recomputed: wind's output is the same
            assert record.metrics == old.metrics
            continue
        assert record.provenance["rekeyed_from"] == old.key
        assert record.metrics == old.metrics
        assert (record.predictions.probabilities == old.predictions.probabilities).all()
    again = api.plan_study(_identity1_methods(tmp_path / "plugin"),
                           grid=read(str(IDENTITY1 / "grid.yaml")), out=tmp_path,
                           study="identity1", device="cpu", limit=64)
    assert again.todo == [] and again.carried == [] and again.superseded == []


def test_carried_results_are_what_this_code_computes(tmp_path):
    """The same study computed afresh by this code gives the carried results exactly
    (same draws of the test data, same training): where the golden run's numerics
    environment is this machine's, float results are reproducible bit for bit."""
    from tests import golden_run

    if golden_run.environment() not in golden_run.load()["runs"]:
        pytest.skip("bit-exact results are known only in the golden run's environments")
    carried = {r.coordinates: r for r in _identity1_plan(tmp_path / "old").store.records()}
    assert {r.provenance["device"] for r in carried.values()} == {"cpu:x86_64:2threads"}
    # as the stored study ran: the thread count changes numerics
    fresh = api.benchmark(_identity1_methods(tmp_path / "plugin"),
                          grid=read(str(IDENTITY1 / "grid.yaml")).replace(threads=2),
                          out=tmp_path / "new", study="identity1", device="cpu", limit=64,
                          use_cache=False)
    assert len(fresh.records) == len(carried) == 10
    for record in fresh.records:
        old = carried[record.coordinates]
        assert record.metrics == old.metrics, record.coordinates
        assert (record.predictions.probabilities == old.predictions.probabilities).all()
