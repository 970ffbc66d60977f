"""A grid's `conditions:` block is checked before any work: the recordings of `av.noise_dir`
(listed as the events list them, hashed into the cells' keys, each one a readable WAV), the
`mixed:` entries and empty lists. Each bad input is one line naming the key, exit 2."""

import hashlib

import numpy as np
import pytest
from scipy.io import wavfile

from corruptions.av_events import EVENTS
from rambench.errors import UsageError
from rambench.grid import expand_conditions
from rambench.schema import Mixed

KINDS = {"visual": "image", "audio": "audio"}
NOISE_KEY = "key 'conditions.av.noise_dir'"


def write_wav(path, seed=0, n=800, dtype=np.int16, rate=8000):
    """A short noise recording (int16 PCM, or float32 in [-1, 1])."""
    path.parent.mkdir(parents=True, exist_ok=True)
    x = np.random.default_rng(seed).uniform(-0.5, 0.5, n)
    data = (x * 32767).astype(np.int16) if dtype == np.int16 else x.astype(dtype)
    wavfile.write(path, rate, data)
    return path


def av(noise_dir, events=("rain",), severities=(1,)):
    return {"clean": False, "av": {"events": list(events), "severities": list(severities),
                                   "noise_dir": str(noise_dir)}}


def digest(noise_dir, events=("rain",)):
    conditions = expand_conditions(av(noise_dir, events), KINDS, "g")
    assert len({c.noise_digest for c in conditions}) == 1
    return conditions[0].noise_digest


def usage_error(spec, *fragments, kinds=KINDS):
    with pytest.raises(UsageError) as err:
        expand_conditions(spec, kinds, "grid.yaml")
    message = str(err.value)
    assert "\n" not in message and message.startswith("grid.yaml: key '"), message
    for fragment in fragments:
        assert fragment in message, message
    return message


# ------------------------------------------------------------------ the recordings' digest


def test_the_noise_digest_of_lowercase_wav_files_is_the_one_stored_results_were_keyed_by(
        tmp_path):
    """The recipe the stored keys came from: per event in the grid's order, per file sorted
    by name, "event/name" then the file's bytes; sha256, first 16 hex digits. A folder of
    lowercase .wav regular files must keep that digest, or every stored AV cell goes stale."""
    files = {"rain": ["b.wav", "a.wav"], "wind": ["gust.wav"], "compression": ["x.wav"]}
    for seed, (event, names) in enumerate(files.items()):
        for i, name in enumerate(names):
            write_wav(tmp_path / event / name, seed=10 * seed + i)
    assert not EVENTS["compression"].has_bed  # a bed-less event's files were hashed too
    sha = hashlib.sha256()
    for event in ("rain", "wind", "compression"):
        for name in sorted(files[event]):
            sha.update(f"{event}/{name}".encode())
            sha.update((tmp_path / event / name).read_bytes())
    assert digest(tmp_path, ("rain", "wind", "compression")) == sha.hexdigest()[:16]


def test_an_upper_case_wav_file_is_hashed_as_the_events_read_it(tmp_path):
    write_wav(tmp_path / "rain" / "a.wav", seed=1)
    before = digest(tmp_path)
    write_wav(tmp_path / "rain" / "NOISE.WAV", seed=2)  # the events read it: a new key
    added = digest(tmp_path)
    write_wav(tmp_path / "rain" / "NOISE.WAV", seed=3)  # edited: a new key again
    edited = digest(tmp_path)
    assert len({before, added, edited}) == 3


def test_editing_an_upper_case_wav_recomputes_the_cell_on_the_next_run(cli, tmp_path):
    write_wav(tmp_path / "noise" / "rain" / "NOISE.WAV", seed=1)
    (tmp_path / "grid.yaml").write_text(
        "conditions:\n  clean: false\n"
        "  av: {events: [rain], severities: [1], noise_dir: noise}\n")
    run = ["run", "--method", "late_fusion", "--grid", "grid.yaml", "--limit", "4",
           "--epochs", "1", "--out", "out"]
    cli(*run)
    assert "1 done, 0 to do" in cli(*run, "--dry-run").stdout
    write_wav(tmp_path / "noise" / "rain" / "NOISE.WAV", seed=2)
    plan = cli("-v", *run, "--dry-run").stdout
    assert "0 done, 1 to do" in plan and "av:rain@1" in plan, plan


# ------------------------------------------------------------- the recordings, validated


def text_file(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("not a recording\n")


def empty_wav(path):
    write_wav(path, n=0)


def nan_wav(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    wavfile.write(path, 8000, np.full(100, np.nan, dtype=np.float32))


def dangling_symlink(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(path.parent / "deleted.wav")


def folder_named_wav(path):
    path.mkdir(parents=True)


@pytest.mark.parametrize("make, problem", [
    (text_file, "rain/bad.wav is not a WAV file ("),
    (empty_wav, "rain/bad.wav holds no audio (0 frames)"),
    (nan_wav, "rain/bad.wav holds non-finite samples"),
    (dangling_symlink, "rain/bad.wav is a dangling symlink"),
    (folder_named_wav, "rain/bad.wav is not a regular file"),
], ids=["text", "zero-frames", "nan", "dangling-symlink", "folder"])
def test_a_bad_noise_file_is_named_before_any_work(tmp_path, make, problem):
    write_wav(tmp_path / "rain" / "good.wav")  # a good file beside it does not hide it
    make(tmp_path / "rain" / "bad.wav")
    usage_error(av(tmp_path), NOISE_KEY, problem)


def test_an_upper_case_bad_noise_file_is_checked_too(tmp_path):
    write_wav(tmp_path / "rain" / "good.wav")
    text_file(tmp_path / "rain" / "BAD.WAV")
    usage_error(av(tmp_path), NOISE_KEY, "rain/BAD.WAV is not a WAV file")


def test_each_event_with_a_bed_needs_its_folder_with_a_recording(tmp_path):
    write_wav(tmp_path / "rain" / "a.wav")
    usage_error(av(tmp_path, ("rain", "crowd")), NOISE_KEY, "no folder crowd/ in",
                "<noise_dir>/crowd/*.wav")
    (tmp_path / "crowd").mkdir()
    (tmp_path / "crowd" / "notes.txt").write_text("no recordings here")
    usage_error(av(tmp_path, ("rain", "crowd")), NOISE_KEY, "crowd/ in", "holds no .wav file")
    write_wav(tmp_path / "crowd" / "BABBLE.WAV")  # any case counts
    assert {c.event for c in expand_conditions(av(tmp_path, ("rain", "crowd")), KINDS, "g")
            } == {"rain", "crowd"}


def test_events_without_a_bed_need_no_folder(tmp_path):
    bedless = sorted(name for name, event in EVENTS.items() if not event.has_bed)
    assert bedless  # interference, compression
    conditions = expand_conditions(av(tmp_path, bedless), KINDS, "g")
    assert {c.event for c in conditions} == set(bedless)
    usage_error(av(tmp_path, [*bedless, "rain"]), NOISE_KEY, "no folder rain/")


def test_a_bad_noise_folder_stops_the_run_before_training(cli, tmp_path):
    (tmp_path / "noise" / "rain").mkdir(parents=True)
    text_file(tmp_path / "noise" / "rain" / "bad.wav")
    (tmp_path / "grid.yaml").write_text(
        "conditions: {clean: false, av: {events: [rain], noise_dir: noise}}\n")
    result = cli("run", "--method", "late_fusion", "--grid", "grid.yaml", "--limit", "4",
                 "--epochs", "1", "--out", "out", check=False)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "training" not in result.stderr
    assert "conditions.av.noise_dir" in result.stderr
    assert "rain/bad.wav is not a WAV file" in result.stderr
    assert not list((tmp_path / "out").rglob("*.json"))  # nothing stored


# ------------------------------------------------------------------------- mixed entries


@pytest.mark.parametrize("mixed, key, fragments", [
    ({"corruptions": {"visual": ["fog", "snow"]}}, "conditions.mixed.corruptions.visual",
     ["one corruption", "visual lists 2 ([fog, snow])"]),
    ({"corruptions": {"visual": "all"}}, "conditions.mixed.corruptions.visual",
     ["one corruption", "visual lists"]),
    ({"corruptions": []}, "conditions.mixed.corruptions", ["expected a mapping", "visual"]),
    ({"corruptions": {}}, "conditions.mixed.corruptions", ["expected a mapping", "visual"]),
    ({"corruptions": "fog"}, "conditions.mixed.corruptions", ["expected a mapping"]),
    ({"corruptions": {"visual": []}}, "conditions.mixed.corruptions.visual",
     ["the list is empty", "gaussian_noise"]),
    ({"corruptions": {"visual": None}}, "conditions.mixed.corruptions.visual",
     ["expected 'all' or a list", "gaussian_noise"]),
    ({"corruptions": {"visual": [["fog"]]}}, "conditions.mixed.corruptions.visual",
     ["unknown image corruption"]),
    ({"protocol": ["qmf"]}, "conditions.mixed.protocol", ["unknown protocol", "qmf"]),
    ({"protocol": {"qmf": 1}}, "conditions.mixed.protocol", ["unknown protocol", "qmf"]),
    ({"probability": True}, "conditions.mixed.probability", ["(0, 1]", "True"]),
    ({"probability": float("nan")}, "conditions.mixed.probability", ["(0, 1]"]),
    ({"severities": []}, "conditions.mixed.severities", ["the list is empty", "[1, 2, 3"]),
])
def test_a_bad_mixed_entry_is_one_line_naming_the_key(mixed, key, fragments):
    usage_error({"mixed": mixed}, f"key '{key}'", *fragments)


def test_a_mixed_entry_takes_one_corruption_per_modality_as_a_name_or_a_list_of_one():
    as_list = expand_conditions({"clean": False, "mixed": {
        "corruptions": {"visual": ["fog"], "audio": "reverb"}, "severities": [2]}}, KINDS, "g")
    assert as_list == [Mixed((("visual", "fog"), ("audio", "reverb")), 2, 0.5)]
    qmf = expand_conditions({"clean": False, "mixed": {"protocol": "qmf", "severities": [2]}},
                            KINDS, "g")
    assert qmf == [Mixed((("visual", "qmf_gaussian_noise"), ("audio", "gaussian_noise")), 2,
                         0.5)]


# --------------------------------------------------------------------------- empty lists


@pytest.mark.parametrize("spec, key, valid", [
    ({"av": {"events": []}}, "conditions.av.events", ["rain", "crowd", "sensor_noise"]),
    ({"av": {"severities": []}}, "conditions.av.severities", ["[1, 2, 3, 4, 5]"]),
    ({"corruptions": {"visual": []}}, "conditions.corruptions.visual",
     ["gaussian_noise", "fog"]),
    ({"corruptions": {"audio": []}}, "conditions.corruptions.audio", ["reverb"]),
    ({"missing_modalities": []}, "conditions.missing_modalities", ["visual, audio"]),
    ({"missing_rates": []}, "conditions.missing_rates", ["(0, 1)"]),
    ({"severities": []}, "conditions.severities", ["[1, 2, 3, 4, 5]"]),
])
def test_an_empty_list_is_an_error_naming_the_valid_choices(spec, key, valid):
    usage_error(spec, f"key '{key}'", "the list is empty", *valid)


@pytest.mark.parametrize("corruptions", [[], {}, None])
def test_an_empty_or_odd_corruptions_block_is_an_error(corruptions):
    usage_error({"corruptions": corruptions}, "key 'conditions.corruptions'",
                "expected a mapping modality -> corruptions (visual, audio)")


def test_leaving_a_list_out_still_means_its_default():
    conditions = expand_conditions({}, KINDS, "g")
    assert [c.label for c in conditions] == ["clean"]
    events = expand_conditions({"clean": False, "av": None}, KINDS, "g")
    assert {c.event for c in events} == set(EVENTS) and len(events) == 5 * len(EVENTS)
