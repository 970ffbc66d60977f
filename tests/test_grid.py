import pytest

from rambench.errors import UsageError
from rambench.schema import Corrupt
from rambench.study import parse, preset_names, read

KINDS = {"visual": "image", "audio": "audio"}


def write(tmp_path, text):
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    return str(path)


def test_presets_exist_and_expand():
    assert {"smoke", "quick", "full"} <= set(preset_names())
    full = read("full").grid.conditions(KINDS)
    labels = [c.label for c in full]
    assert labels[0] == "clean"
    assert len(labels) == len(set(labels))
    image = [c for c in full if c.kind == "corruption" and c.test_modality == "visual"]
    assert len(image) == (19 - 4) * 5  # ImageNet-C's four validation corruptions held out
    audio = {c.corruption for c in full if c.kind == "corruption" and c.test_modality == "audio"}
    assert len(audio) == 11 - 3 and not audio & {"brown_noise", "clipping", "band_stop"}
    assert {c.missing_rate for c in full if c.kind == "random_missing"} == {
        round(0.1 * i, 1) for i in range(1, 10)}
    assert {c.test_modality for c in full if c.kind == "drop"} == {"visual", "audio"}
    assert sum(c.kind == "mixed" for c in full) == 5


def test_user_grid_with_seeds_epochs_and_overrides(tmp_path):
    study = read(write(tmp_path, """
seeds: [3, 4]
epochs: 2
set: {raml.alpha: 0.5, raml.unimodal_heads: false}
conditions:
  clean: false
  corruptions: {audio: [reverb]}
  severities: [2]
"""))
    assert study.seeds == (3, 4) and study.epochs == 2
    assert study.set == {"raml": {"alpha": "0.5", "unimodal_heads": "false"}}
    assert study.grid.conditions(KINDS) == [Corrupt("audio", "reverb", 2)]


@pytest.mark.parametrize("text, key, hint", [
    ("conditions: {corruptions: {visual: [gausian_noise]}}", "conditions.corruptions.visual",
     "did you mean 'gaussian_noise'"),
    ("conditions: {corruptions: {visual: [reverb]}}", "conditions.corruptions.visual",
     "unknown image corruption 'reverb'"),
    ("conditions: {severities: [0, 6]}", "conditions.severities", "allowed values are"),
    ("conditions: {missing_rates: [1.5]}", "conditions.missing_rates", "in (0, 1)"),
    ("conditions: {missing_modalities: [depth]}", "conditions.missing_modalities",
     "unknown modality 'depth'"),
    ("conditions: {clena: true}", "conditions.clena", "did you mean 'clean'"),
    ("seeds: [a]\nconditions: {}", "seeds", "list of integers"),
    ("epochs: 0\nconditions: {}", "epochs", "positive integer"),
    ("set: {alpha: 1}\nconditions: {}", "set.alpha", "scope.key"),
    ("seeds: [0]", "conditions", "missing"),
    ("split: train\nconditions: {}", "split", "unknown split 'train'"),
])
def test_bad_grid_files_name_file_and_key(tmp_path, text, key, hint):
    path = write(tmp_path, text)
    with pytest.raises(UsageError) as err:
        read(path).grid.conditions(KINDS)
    message = str(err.value)
    assert path in message and f"key '{key}'" in message and hint in message


def test_invalid_yaml_and_unknown_preset(tmp_path):
    with pytest.raises(UsageError, match="not valid YAML"):
        read(write(tmp_path, "conditions: [unclosed"))
    with pytest.raises(UsageError, match="did you mean 'smoke'"):
        read("smok")


def test_grid_hash_depends_on_content():
    a = parse({"conditions": {"clean": True}}, "a", "a").grid
    b = parse({"conditions": {"clean": True}, "seeds": [1]}, "b", "b").grid
    c = parse({"conditions": {"clean": False}}, "a", "a").grid
    assert a.hash == b.hash != c.hash


def test_held_out_corruptions_are_never_in_a_test_grid_and_a_grid_can_name_them():
    held = parse({"split": "val", "conditions": {
        "clean": False, "corruptions": {"visual": "held_out", "audio": "held_out"},
        "severities": [1]}}, "held", "held")
    assert held.split == "val"
    picked = {(c.test_modality, c.corruption) for c in held.grid.conditions(KINDS)}
    assert picked == {("visual", n) for n in ("speckle_noise", "gaussian_blur", "spatter",
                                              "saturate")} | {
        ("audio", n) for n in ("brown_noise", "clipping", "band_stop")}
    for preset in ("smoke", "quick", "full"):
        study = read(preset)
        assert study.split == "test"
        tested = {(c.test_modality, c.corruption) for c in study.grid.conditions(KINDS)
                  if c.kind == "corruption"}
        assert not tested & picked, preset
    ablation = read("raml-ablation")
    assert ablation.split == "val"
    assert {c.corruption for c in ablation.grid.conditions(KINDS) if c.kind == "corruption"} == {
        n for _, n in picked}


def test_the_clean_val_preset_is_the_tuning_criterion():
    from rambench.grid import expand_conditions
    from rambench.schema import Clean

    study = read("clean-val")  # one cell: clean accuracy on the validation split
    assert study.split == "val"
    assert expand_conditions(study.grid.conditions_spec, {"visual": "image", "audio": "audio"},
                             "clean-val") == [Clean()]
