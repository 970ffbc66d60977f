"""Every bad input gets a one-line message naming it, exit code 2, no traceback, and
nothing written. Run in-process through the console script's own entry point
(`rambench.cli.main`, by tests.helpers.invoke_cli), so that each case costs milliseconds."""

import re
import textwrap
from pathlib import Path

import pytest

from rambench.errors import UsageError
from tests.helpers import invoke_cli, plugin_source

PLUGINS = {
    "syntax.py": "class Broken(:\n    pass\n",
    "imports.py": "import not_a_module_anywhere\n",
    "notmethod.py": "class NotMethod:\n    pass\n",
    "function.py": "def Function(ctx, params=None):\n    return None\n",
    "noloss.py": plugin_source("Good", '{"ce": F.cross_entropy(self(batch), batch.y)}'),
    "tensor.py": plugin_source("Good", "F.cross_entropy(self(batch), batch.y)"),
    "raises.py": plugin_source("Good", "1 / 0"),
    "width.py": plugin_source("Good", '{"loss": self(batch).sum()}').replace(
        "ctx.num_classes)", "3)"),
    "constant.py": plugin_source("Good", '{"loss": batch.y.float().mean()}'),
}

GRIDS = {
    "latin1.yaml": "description: caf\xe9\nconditions: {clean: true}\n".encode("latin-1"),
    "badyaml.yaml": b"conditions: [clean: true\n",
    "noconditions.yaml": b"seeds: [0]\n",
    "topkey.yaml": b"conditions: {clean: true}\nseed: [0]\n",
    "epochs.yaml": b"epochs: 0\nconditions: {clean: true}\n",
    "severity.yaml": b"conditions: {corruptions: {visual: [fog]}, severities: [6]}\n",
    "rates.yaml": b"conditions: {missing_rates: [1.5]}\n",
    "probability.yaml": b"conditions: {mixed: {probability: 0}}\n",
    "seeds.yaml": b"seeds: [-1]\nconditions: {clean: true}\n",
    "methods.yaml": b"methods: 5\nconditions: {clean: true}\n",
    "unknownmethod.yaml": b"methods: [ramll]\nconditions: {clean: true}\n",
    "nomethods.yaml": b"conditions: {clean: true}\n",
    "modality.yaml": b"conditions: {corruptions: {video: [fog]}}\n",
    "corruption.yaml": b"conditions: {corruptions: {visual: [fogg]}}\n",
    "set.yaml": b"set: {alpha: 1}\nconditions: {clean: true}\n",
    "scale.yaml": b"severity_scale: cifar10\nconditions: {clean: true}\n",
    "tune.yaml": b"tune: {lr: [0.001, -1]}\nconditions: {clean: true}\n",
    "tunekey.yaml": b"tune: {lrs: [0.001]}\nconditions: {clean: true}\n",
    "avevent.yaml": b"conditions: {av: {events: [rian]}}\n",
    "avnoise.yaml": b"conditions: {av: {noise_dir: nowhere}}\n",
    "twice.yaml": b"conditions: {corruptions: {visual: [fog, fog]}}\n",
    "seedstwice.yaml": b"seeds: [0, 0]\nconditions: {clean: true}\n",
    "cleanone.yaml": b"conditions: {clean: 1}\n",
    "crowd.yaml": b"conditions: {av: {events: [crowd], severities: [1]}}\n",
    "nosource.yaml": b"published: {raml: {clean: {values: [80]}}}\nconditions: {clean: true}\n",
}

R = ["run", "--method", "raml"]
T = ["train", "--method", "raml"]
CASES = [
    # methods and variants
    (["train", "--method", "ramll"], "unknown method 'ramll'; did you mean 'raml'"),
    (["train", "--method", ""], "unknown method ''"),
    (["run", "--method", "raml[norm]"], "expected key=value inside [...]"),
    (["run", "--method", "raml[norm=hard"], "expected name[key=value,...]"),
    (["run", "--method", "raml[nrom=hard]"], "did you mean 'norm'"),
    (["run", "--method", "late_fusion[x=1]"], "method 'late_fusion' has no hyper-parameters"),
    (["run", "--method", "raml", "--set", "late_fusion.x=1"], "match no selected method"),
    (["run", "--method", "late_fusion", "--set", "late_fusion.x=1"], "has no hyper-param"),
    # hyper-parameters
    ([*T, "--set", "raml.alpah=1"], "did you mean 'alpha'"),
    ([*T, "--set", "raml.alpha=big"], "raml.alpha expects a float; got 'big'"),
    ([*T, "--set", "raml.alpha=nan"], "raml.alpha must be a finite number"),
    ([*T, "--set", "raml.alpha=-1"], "raml.alpha must be >= 0; got -1"),
    ([*T, "--set", "raml.norm=l1"], "raml.norm must be one of soft, hard, clamp, none; got 'l1'"),
    ([*T, "--set", "raml.num_tokens=0"], "raml.num_tokens must be >= 1; got 0"),
    ([*T, "--set", "raml.num_tokens=3", "--set", "raml.tokens=slices"],
     "could not build method raml[num_tokens=3,tokens=slices]"),
    ([*T, "--set", "raml.token_corruption=2"], "raml.token_corruption must be >= 0 and <= 1"),
    ([*T, "--set", "raml.heads=0"], "raml.heads must be >= 1"),
    ([*T, "--set", "raml.unimodal_heads=maybe"], "raml.unimodal_heads expects a bool"),
    ([*T, "--set", "alpha"], "--set expects scope.key=value"),
    ([*T, "--set", "raml.=1"], "--set expects scope.key=value"),
    ([*T, "--set", "train.batch_size=0"], "train.batch_size must be >= 1; got 0"),
    ([*T, "--set", "train.lr=-1"], "train.lr must be > 0; got -1"),
    ([*T, "--set", "train.lr=0"], "train.lr must be > 0; got 0"),
    ([*T, "--set", "train.lr=fast"], "train.lr expects a float"),
    ([*T, "--set", "train.optimizer=adam"], "train.optimizer must be one of adamw, sgd"),
    ([*T, "--set", "train.schedule=cosine"], "train.schedule must be one of onecycle, step"),
    ([*T, "--set", "train.patience=0"], "train.patience must be >= 1"),
    ([*T, "--set", "train.weight_decay=-0.1"], "train.weight_decay must be >= 0"),
    ([*T, "--set", "train.momentum=1.5"], "train.momentum must be >= 0 and <= 1"),
    ([*T, "--set", "train.feature_dim=0"], "train.feature_dim must be >= 1"),
    ([*T, "--set", "train.epoch=3"], "did you mean 'epochs'"),
    ([*T, "--epochs", "0"], "--epochs must be at least 1; got 0"),
    ([*T, "--epochs", "-1"], "--epochs must be at least 1; got -1"),
    ([*T, "--epochs", "two"], "'two' is not a valid integer"),
    # seeds, devices, datasets, backends
    ([*R, "--seeds", "-1"], "seeds must be integers in 0..4294967295; got -1"),
    ([*R, "--seeds", "99999999999999999999"], "seeds must be integers in 0..4294967295"),
    ([*R, "--seeds", "a,b"], "--seeds expects comma-separated integers"),
    ([*T, "--seed", "-3"], "seeds must be integers in 0..4294967295; got -3"),
    ([*T, "--device", "tpu"], "--device: unknown device 'tpu'; devices: auto, cpu, cuda"),
    ([*T, "--device", "cuda:x"], "--device: unknown device 'cuda:x'"),
    ([*T, "--dataset", "avdigit"], "did you mean 'avdigits'"),
    ([*R, "--corruption-backend", "gpu"], "unknown value 'gpu' Valid: reference, torch"),
    # studies and output folders
    ([*R, "--study", "../x"], "--study '../x': a study name is one folder name"),
    ([*R, "--study", "/etc"], "--study '/etc': a study name is one folder name"),
    ([*R, "--study", ""], "--study '': a study name is one folder name"),
    ([*R, "--study", "x" * 300], "a study name is one folder name of 1-100 letters"),
    ([*R, "--study", ".hidden"], "not starting with '.' or '-'"),
    ([*R, "--study", "a b"], "a study name is one folder name"),
    ([*R, "--out", "afile.txt", "--grid", "tiny.yaml", "--epochs", "1"],
     "cannot write results to afile.txt/default"),
    ([*R, "--out", "loop", "--grid", "tiny.yaml", "--epochs", "1"],
     "cannot write results to loop/default (Too many levels of symbolic links)"),
    (["table", "--out", "loop"], "no study 'default' under loop/"),
    # grids
    ([*R, "--grid", "bigg"], "unknown grid 'bigg'"),
    ([*R, "--grid", "nothere.yaml"], "grid file nothere.yaml does not exist"),
    ([*R, "--grid", "plugins"], "grid file plugins does not exist (it is a folder)"),
    ([*R, "--grid", "latin1.yaml"], "latin1.yaml: not a UTF-8 text file"),
    ([*R, "--grid", "badyaml.yaml"], "badyaml.yaml: not valid YAML"),
    ([*R, "--grid", "noconditions.yaml"], "key 'conditions': missing"),
    ([*R, "--grid", "topkey.yaml"], "unknown key 'seed'; did you mean 'seeds'"),
    ([*R, "--grid", "epochs.yaml"], "key 'epochs': expected a positive integer; got 0"),
    ([*R, "--grid", "severity.yaml"], "conditions.severities': allowed values are [1, 2, 3, 4"),
    ([*R, "--grid", "rates.yaml"], "conditions.missing_rates': expected rates in (0, 1)"),
    ([*R, "--grid", "probability.yaml"],
     "conditions.mixed.probability': expected a number in (0, 1]"),
    ([*R, "--grid", "seeds.yaml"], "seeds must be integers in 0..4294967295; got -1"),
    (["run", "--grid", "methods.yaml"], "key 'methods': expected a list of method names"),
    (["run", "--grid", "unknownmethod.yaml"], "unknown method 'ramll'"),
    (["run", "--grid", "nomethods.yaml"], "no method given: pass --method NAME"),
    ([*R, "--grid", "modality.yaml"], "unknown modality 'video'"),
    ([*R, "--grid", "corruption.yaml"], "unknown image corruption 'fogg'; did you mean 'fog'"),
    ([*R, "--grid", "set.yaml"], "key 'set.alpha': expected scope.key"),
    ([*R, "--grid", "scale.yaml"], "unknown severity scale 'cifar10'; did you mean 'cifar'"),
    ([*R, "--grid", "tune.yaml"], "key 'tune.lr': expected a list of positive learning rates"),
    ([*R, "--grid", "tunekey.yaml"], "key 'tune.lrs': unknown key 'lrs'; did you mean 'lr'"),
    ([*R, "--grid", "avevent.yaml"], "unknown audio-visual event 'rian'; did you mean 'rain'"),
    ([*R, "--grid", "avnoise.yaml"], "conditions.av.noise_dir': no such folder"),
    ([*R, "--grid", "twice.yaml"], "visual': 'fog' is listed 2 times; list it once"),
    ([*R, "--grid", "seedstwice.yaml"], "key 'seeds': 0 is listed 2 times"),
    ([*R, "--grid", "cleanone.yaml"], "key 'conditions.clean': expected true or false; got 1"),
    ([*R, "--grid", "crowd.yaml", "--limit", "1"], "the crowd event babbles the other clips of "
                                                   "the test split, and --limit 1 leaves one"),
    ([*R, "--grid", "nosource.yaml"], "key 'published.raml.clean.sources': expected one "
                                      "source (text) per value"),
    (["reproduce", "tiny.yaml"], "tiny.yaml: neither a result bundle (no manifest.json) nor a "
                                 "study file with `published:` values to check"),
    ([*R, "--severity-scale", "cifar10"], "'cifar10'; did you mean 'cifar'?"),
    (["tune", "--method", "raml", "--lr", "0.001,fast"], "--lr expects comma-separated numbers"),
    (["tune", "--method", "raml", "--lr", "0.001,-1"], "learning rates to tune must be positive"),
    (["tune", "--method", "raml", "--lr", "inf"], "learning rates to tune must be positive"),
    (["tune", "--method", "raml", "--lr", ","], "--lr expects comma-separated numbers"),
    (["run", "--method", "raml[norm=hard,norm=soft]"], "'norm' is given twice"),
    ([*R, "--workers", "2"], "--workers is an option of --executor local; add --executor local"),
    ([*R, "--devices", "0"], "--devices is an option of --executor local"),
    ([*R, "--executor", "local", "--slurm-gpus", "1"], "--slurm-gpus is an option of --executor "
                                                        "slurm"),
    ([*R, "--limit", "100000"], "--limit 100000 keeps every sample of avdigits (splits: train"),
    (["preview", "--to", "x.txt"], "--to x.txt: a figure is written as .png, .pdf, .svg"),
    (["history", "--to", "x"], "--to x: a figure is written as .png, .pdf, .svg; got no suffix"),
    (["calibrate", "--modality", "video"], "--modality: unknown modality 'video' of 'avdigits'"),
    # plug-ins
    (["train", "--method", "nofile.py:Mine"], "no such file 'nofile.py'"),
    (["train", "--method", "plugins/noloss.py"], "name the class in the file too, as "
                                                 "plugins/noloss.py:ClassName"),
    (["train", "--method", "plugins/noloss.py:Nope"], "unknown class in plugins/noloss.py "
                                                      "'Nope' Valid: Good"),
    (["train", "--method", "plugins/syntax.py:Broken"], "could not load Broken from "
                                                        "plugins/syntax.py (line 1): SyntaxErr"),
    (["train", "--method", "plugins/imports.py:X"], "could not load X from plugins/imports.py:"
                                                    " ModuleNotFoundError"),
    (["train", "--method", "plugins/notmethod.py:NotMethod"],
     "is a class, not a subclass of rambench.methods.Method"),
    (["train", "--method", "plugins/function.py:Function"],
     "is a function, not a subclass of rambench.methods.Method"),
    (["train", "--method", "plugins/noloss.py:Good"],
     "method noloss:Good: training_loss must return a dict holding 'loss'"),
    (["train", "--method", "plugins/tensor.py:Good"],
     "method tensor:Good: training_loss must return a dict holding 'loss' (the value to "
     "minimise); got Tensor"),
    (["train", "--method", "plugins/raises.py:Good"],
     "method raises:Good failed in training_loss: ZeroDivisionError: division by zero"),
    (["train", "--method", "plugins/width.py:Good"],
     "forward must return logits of shape (batch, classes) = (4, 10); got (4, 3)"),
    (["train", "--method", "plugins/constant.py:Good"],
     "training_loss()['loss'] must be a scalar tensor that depends on the parameters"),
    # reading results
    (["table", "--study", "nothing"], "no study 'nothing' under results/"),
    (["table", "--study", "../up"], "--study '../up': a study name is one folder name"),
    (["table", "--view", "wide"], "unknown value 'wide' Valid: calibration, conditions"),
    (["table", "--view", "leaderbord"], "'leaderbord'; did you mean 'leaderboard'?"),
    (["export", "--format", "xls"], "unknown value 'xls' Valid: csv, parquet"),
    (["plot", "--kind", "bars"], "unknown value 'bars'"),
    (["plot", "--kind", "heatmaps"], "'heatmaps'; did you mean 'heatmap'?"),
    (["report", "--study", "nothing"], "no study 'nothing'"),
    (["compare", "--study", "nothing", "--method", "raml"], "no study 'nothing'"),
    (["ls", "things"], "unknown value 'things' Valid: corruptions, datasets, grids"),
    # preparing data and previews
    (["prepare", "avdigits", "--root", "plugins"], "dataset 'avdigits' needs no preparation"),
    (["prepare", "cremadd", "--root", "plugins"], "did you mean 'cremad'"),
    (["prepare", "cremad", "--root", "plugins", "--size", "16"], "--size must be at least 32"),
    (["prepare", "cremad", "--root", "plugins"], "cremad: "),
    (["preview", "--modality", "nose"], "dataset 'avdigits' has no modality 'nose'"),
    (["preview", "--index", "99999"], "--index must be in 0..358"),
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-input")
    (root / "plugins").mkdir()
    for name, text in PLUGINS.items():
        (root / "plugins" / name).write_text(textwrap.dedent(text))
    for name, data in GRIDS.items():
        (root / name).write_bytes(data)
    (root / "tiny.yaml").write_text("conditions: {clean: true}\n")
    (root / "afile.txt").write_text("not a folder\n")
    (root / "loop").symlink_to("loop")  # a symbolic link to itself
    return root


def call(argv, cwd):
    result = invoke_cli(*argv, cwd=cwd, check=False)  # an uncaught error: exit 1, traceback
    return result.exit_code, result.stdout, result.stderr


def test_the_table_is_large():
    assert len(CASES) >= 60


@pytest.mark.parametrize("argv, message", CASES, ids=[" ".join(a)[:60] for a, _ in CASES])
def test_bad_input_exits_2_with_one_clear_line(argv, message, folder):
    before = sorted(p for p in folder.rglob("*") if "__pycache__" not in p.parts)
    code, out, err = call(argv, folder)
    assert code == 2, err
    assert message in err, err
    assert "Traceback" not in err and err.startswith("Error:") or "Usage:" in err
    after = sorted(p for p in folder.rglob("*") if "__pycache__" not in p.parts)
    assert after == before  # nothing written


@pytest.mark.parametrize("given, suggested", [("gated", "gated:GatedFusion"),
                                              ("raml", "raml[norm=hard]"),
                                              ("late_fusoin", "late_fusion")])
def test_a_method_missing_from_a_study_suggests_the_label_its_name_stands_for(given, suggested):
    from rambench.results import ResultSet
    from rambench.schema import make_record

    records = [make_record(method=label, seed=0)
               for label in ("gated:GatedFusion", "raml[norm=hard]", "late_fusion")]
    results = ResultSet("s", Path("."), records)
    with pytest.raises(UsageError, match=re.escape(f"did you mean {suggested!r}")):
        results.check_method(given, "--method")


def test_a_memory_budget_that_is_not_a_size_is_a_usage_error(cli, monkeypatch, tmp_path):
    from rambench.memory import MemoryBudget

    monkeypatch.setenv("RAMBENCH_CACHE_MEMORY_MB", "-5")
    with pytest.raises(UsageError, match="a number of MiB \\(0 or more\\); got '-5'"):
        MemoryBudget()
    monkeypatch.setenv("RAMBENCH_CACHE_MEMORY_MB", "lots")
    result = cli("run", "--method", "late_fusion", "--grid", "smoke", "--limit", "8",
                 "--epochs", "1", check=False)
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert "RAMBENCH_CACHE_MEMORY_MB must be a number of MiB (0 or more); got 'lots'" \
        in result.stderr
    assert not list(tmp_path.glob("results/*/records/*.json"))  # stopped before any work
