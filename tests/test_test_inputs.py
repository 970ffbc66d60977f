"""Test inputs: deterministic per sample, independent of batching and of the other cells."""

import numpy as np
import pytest

from corruptions import registry
from corruptions.backends import corrupt
from rambench.cache import CorruptionCache
from rambench.datasets import Split, datasets
from rambench.errors import UsageError
from rambench.grid import expand_conditions
from rambench.schema import AVEvent, Corrupt, Drop, Mixed, RandomMissing, condition_from_json
from rambench.test_inputs import build_test_inputs, sample_seeds


@pytest.fixture(scope="module")
def avdigits():
    dataset = datasets.get("avdigits")()
    test = dataset.split("test")
    small = Split({m: a[:24] for m, a in test.inputs.items()}, test.y[:24])
    return dataset, small


def test_sample_seeds_depend_on_seed_key_and_index_only():
    a = sample_seeds(0, "ab" * 10, 50)
    assert np.array_equal(a[:20], sample_seeds(0, "ab" * 10, 20))  # prefix = smaller batch
    assert len(set(a.tolist())) == 50
    assert not np.array_equal(a, sample_seeds(1, "ab" * 10, 50))
    assert not np.array_equal(a, sample_seeds(0, "cd" * 10, 50))


@pytest.mark.parametrize("backend", ["torch", "reference"])
@pytest.mark.parametrize("modality, corruption", [("visual", "glass_blur"),
                                                  ("audio", "gaussian_noise")])
def test_corrupted_inputs_are_per_sample_and_reproducible(avdigits, modality, corruption,
                                                          backend):
    dataset, split = avdigits
    cond = Corrupt(modality, corruption, 3)
    first = build_test_inputs(dataset, split, cond, 0, "1f" * 10, backend).inputs[modality]
    # another condition in between must not change anything (no global RNG leaks)
    build_test_inputs(dataset, split, Corrupt("visual", "shot_noise", 5), 0,
                      "2e" * 10, backend)
    again = build_test_inputs(dataset, split, cond, 0, "1f" * 10, backend).inputs[modality]
    assert np.array_equal(first, again)
    # sample i alone, with its own seed, gives the same result as in the whole set
    seeds = sample_seeds(0, "1f" * 10, len(split))
    kind = dataset.modalities[modality].kind
    single, _ = corrupt(split.inputs[modality][7:8], corruption, 3, [int(seeds[7])], backend,
                        kind=kind, sample_rate=16000)
    assert np.array_equal(first[7], single[0])
    if backend == "reference":  # which is the registered per-sample function
        context = {"sample_rate": 16000} if kind == "audio" else {}
        alone = registry.get(corruption, kind)(split.inputs[modality][7], 3, int(seeds[7]),
                                               **context)
        assert np.array_equal(first[7], alone)
    # the other modality is untouched, and the split itself is not modified
    other = "audio" if modality == "visual" else "visual"
    out = build_test_inputs(dataset, split, cond, 0, "1f" * 10, backend)
    assert out.inputs[other] is split.inputs[other]
    assert not np.array_equal(first, split.inputs[modality])


def test_drop_and_random_missing_masks(avdigits):
    dataset, split = avdigits
    drop = build_test_inputs(dataset, split, Drop("audio"), 0, "aa" * 10)
    assert drop.missing["audio"].all() and "visual" not in drop.missing
    rate = build_test_inputs(dataset, split, RandomMissing(0.9), 0, "bb" * 10)
    both = np.stack([rate.missing["visual"], rate.missing["audio"]], 1)
    assert not both.all(axis=1).any() and both.any()


def test_mixed_protocol_corrupts_each_modality_of_each_sample_independently(avdigits):
    dataset, split = avdigits
    cond = Mixed((("visual", "gaussian_noise"), ("audio", "gaussian_noise")), 5, 0.5)
    out = build_test_inputs(dataset, split, cond, 0, "cc" * 10)
    changed = {m: np.array([not np.array_equal(out.inputs[m][i], split.inputs[m][i])
                            for i in range(len(split))]) for m in ("visual", "audio")}
    for m in changed:
        assert 0 < changed[m].sum() < len(split)
    assert not np.array_equal(changed["visual"], changed["audio"])


def test_cache_reuses_identical_data_and_rebuilds_a_damaged_entry(avdigits, tmp_path):
    dataset, split = avdigits
    cache = CorruptionCache(tmp_path)
    cond = Corrupt("visual", "snow", 2)
    built = build_test_inputs(dataset, split, cond, 0, "ab" * 10, cache=cache).inputs["visual"]
    assert (cache.hits, cache.misses) == (0, 1)
    cache.flush()
    reused = build_test_inputs(dataset, split, cond, 0, "ab" * 10, cache=cache).inputs["visual"]
    assert cache.hits == 1 and isinstance(reused, np.memmap)
    assert np.array_equal(built, reused)
    info = cache.info()
    assert info.entries == 1 and info.bytes > built.nbytes
    assert info.datasets == {dataset.version: 1}
    # another data key is another entry, never the same data
    build_test_inputs(dataset, split, cond, 0, "cd" * 10, cache=cache)
    assert cache.info().entries == 2
    # flip one byte of the stored array: the checksum catches it and the entry is rebuilt
    (path,) = (p for p in cache.root.rglob("visual.npy") if "abab" in str(p))
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    again = build_test_inputs(dataset, split, cond, 0, "ab" * 10, cache=cache).inputs["visual"]
    assert np.array_equal(again, built) and cache.misses == 3
    cache.flush()
    # an entry without its sidecar (an interrupted write) does not exist
    path.with_suffix(".json").unlink()
    assert cache.get("ab" * 10, "visual") is None
    assert cache.clear() == (1, []) and cache.info().entries == 0


def test_the_cache_writes_behind_the_run_within_its_memory_budget(tmp_path, monkeypatch):
    """An entry being written is served from memory and holds its bytes of the budget until
    it is on disk; an entry the budget cannot hold is written before `put` returns."""
    import threading

    from rambench.memory import MemoryBudget

    gate, write = threading.Event(), CorruptionCache._write
    monkeypatch.setattr(CorruptionCache, "_write",
                        lambda self, *args: (gate.wait(10), write(self, *args)))
    budget = MemoryBudget(1)  # 1 MiB
    cache = CorruptionCache(tmp_path, budget)
    small, large = np.arange(1000.0), np.zeros(2**18)  # 8 kB, 2 MiB
    cache.put("ab" * 10, "audio", small, {"seed": 0})
    assert budget.used == small.nbytes and not list(cache.root.rglob("*.npy"))
    array, meta = cache.entry("ab" * 10, "audio", ("seed",))
    assert array is small and meta == {"seed": 0} and cache.hits == 1
    gate.set()
    cache.flush()
    assert budget.used == 0 and isinstance(cache.get("ab" * 10, "audio"), np.memmap)
    gate.clear()
    threading.Timer(0.2, gate.set).start()
    cache.put("cd" * 10, "audio", large, {"seed": 0})  # over the budget: written here
    assert budget.used == 0 and np.array_equal(cache.get("cd" * 10, "audio"), large)


def test_an_av_event_corrupts_both_modalities_with_the_split_as_babble_pool(avdigits, tmp_path):
    dataset, split = avdigits
    cond = AVEvent("crowd", 4, ("visual", "audio"))
    first = build_test_inputs(dataset, split, cond, 0, "3c" * 10)
    for m in ("visual", "audio"):
        assert first.inputs[m].shape == split.inputs[m].shape
        assert first.inputs[m].dtype == split.inputs[m].dtype
        assert not np.array_equal(first.inputs[m], split.inputs[m]), m
    # the same seed and key give the same inputs; the cache returns them unchanged
    cache = CorruptionCache(tmp_path)
    built = build_test_inputs(dataset, split, cond, 0, "3c" * 10, cache=cache)
    cached = build_test_inputs(dataset, split, cond, 0, "3c" * 10, cache=cache)
    for m in ("visual", "audio"):
        assert np.array_equal(built.inputs[m], first.inputs[m])
        assert np.array_equal(cached.inputs[m], first.inputs[m])
    assert cache.hits == 2
    # another seed, other draws
    other = build_test_inputs(dataset, split, cond, 1, "3c" * 10)
    assert not np.array_equal(other.inputs["audio"], first.inputs["audio"])
    # the babble of a sample never holds a clip of its own class
    for i, entry in enumerate(first.drawn["audio"]["audio"]):
        assert entry["babble_pool_indices"]
        assert all(split.y[j] != split.y[i] for j in entry["babble_pool_indices"])


def test_av_conditions_from_a_grid(tmp_path):
    kinds = {"visual": "image", "audio": "audio"}
    conditions = expand_conditions({"clean": False, "av": {"events": ["rain", "fire"],
                                                           "severities": [1, 5]}}, kinds, "g")
    assert [c.label for c in conditions] == ["av:rain@1", "av:rain@5", "av:fire@1",
                                             "av:fire@5"]
    assert all(c.modalities == ("visual", "audio") for c in conditions)
    assert condition_from_json(conditions[0].to_json()) == conditions[0]
    with pytest.raises(UsageError, match="need an image and an audio modality"):
        expand_conditions({"av": {}}, {"visual": "image"}, "g")
    with pytest.raises(UsageError, match="unknown audio-visual event 'rian'"):
        expand_conditions({"av": {"events": ["rian"]}}, kinds, "g")
    # real recordings are part of the condition: other files, another key
    from scipy.io import wavfile

    (tmp_path / "rain").mkdir()
    wavfile.write(tmp_path / "rain" / "a.wav", 8000, np.full(80, 0.1, np.float32))
    first = expand_conditions({"av": {"events": ["rain"], "noise_dir": str(tmp_path)}},
                              kinds, "g")[1]
    wavfile.write(tmp_path / "rain" / "a.wav", 8000, np.full(80, 0.2, np.float32))
    second = expand_conditions({"av": {"events": ["rain"], "noise_dir": str(tmp_path)}},
                               kinds, "g")[1]
    assert first.noise_dir == str(tmp_path.resolve()) and first.noise_digest != second.noise_digest


@pytest.mark.parametrize("corruption, backend, keys", [
    ("motion_blur", "torch", {"angle"}), ("frost", "torch", {"photo", "top", "left"}),
    ("motion_blur", "reference", {"seed"}), ("glass_blur", "torch", {"seed"}),
    ("contrast", "torch", set())])
def test_the_drawn_parameters_are_kept_and_reproduce_the_corrupted_inputs(avdigits, tmp_path,
                                                                          corruption, backend,
                                                                          keys):
    import json

    import torch

    from corruptions import torch_image

    dataset, split = avdigits
    cond = Corrupt("visual", corruption, 3, severity_scale="cifar")
    built = build_test_inputs(dataset, split, cond, 0, "3c" * 10, backend)
    if not keys:  # a deterministic corruption draws nothing
        assert built.drawn == {}
        return
    drawn = built.drawn["visual"]
    assert set(drawn) == keys and all(len(v) == len(split.y) for v in drawn.values())
    if corruption == "motion_blur" and backend == "torch":
        assert all(-45 <= a <= 45 for a in drawn["angle"]) and len(set(drawn["angle"])) > 1
    # applying the draws as a record keeps them (JSON) gives the inputs the model was tested
    # on, exactly
    recorded = json.loads(json.dumps(drawn))
    again, applied = corrupt(split.inputs["visual"], corruption, 3, backend=backend,
                             kind="image", drawn=recorded, scale="cifar")
    assert np.array_equal(again, built.inputs["visual"]) and applied == recorded
    if keys != {"seed"}:  # and so does the torch function given them
        x = torch.from_numpy(split.inputs["visual"]).permute(0, 3, 1, 2)  # RGB
        tensors = {k: torch.tensor(v, dtype=torch.float64 if k == "angle" else torch.int64)
                   for k, v in recorded.items()}
        seeds = sample_seeds(0, "3c" * 10, len(split.y)).tolist()
        again = getattr(torch_image, corruption)(x.float() / 255, 3, seeds, "cifar",
                                                 drawn=tensors)
        again = again.clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
        assert np.array_equal(again, built.inputs["visual"])
    # the same draws whether or not the corrupted data comes from the cache
    cache = CorruptionCache(tmp_path)
    build_test_inputs(dataset, split, cond, 0, "3c" * 10, backend, cache=cache)
    cached = build_test_inputs(dataset, split, cond, 0, "3c" * 10, backend, cache=cache)
    assert cache.hits == 1 and cached.drawn == built.drawn


def test_a_cache_entry_without_its_draws_is_rebuilt(avdigits, tmp_path):
    """Entries written before the cache kept the draws: built again, the draws kept."""
    import json

    dataset, split = avdigits
    cache = CorruptionCache(tmp_path)
    cond = Corrupt("visual", "gaussian_noise", 2)
    built = build_test_inputs(dataset, split, cond, 0, "5d" * 10, cache=cache)
    cache.flush()
    (sidecar,) = cache.root.rglob("visual.json")
    meta = json.loads(sidecar.read_text())
    del meta["drawn"]
    sidecar.write_text(json.dumps(meta))
    again = build_test_inputs(dataset, split, cond, 0, "5d" * 10, cache=cache)
    assert (cache.hits, cache.misses) == (0, 2) and again.drawn == built.drawn
    cache.flush()
    assert "drawn" in json.loads(sidecar.read_text())
    assert build_test_inputs(dataset, split, cond, 0, "5d" * 10, cache=cache).drawn == built.drawn
    assert cache.hits == 1


@pytest.mark.parametrize("backend", ["torch", "reference"])
def test_an_av_event_keeps_its_draws_per_modality_and_they_reproduce_it(avdigits, tmp_path,
                                                                         backend):
    import json

    dataset, split = avdigits
    cond = AVEvent("interference", 4, ("visual", "audio"))
    built = build_test_inputs(dataset, split, cond, 0, "6e" * 10, backend)
    visual, audio = built.drawn["visual"], built.drawn["audio"]
    seeds = sample_seeds(0, "6e" * 10, len(split)).tolist()
    assert visual["seed"] == audio["seed"] == seeds and visual["shared"] == audio["shared"]
    assert set(visual) == {"seed", "shared", "image"} and set(audio) == {"seed", "shared", "audio"}
    assert all(len(v) == len(split.y) for d in (visual, audio) for v in d.values())
    assert [len(d["dropouts"]) for d in audio["audio"]] == [4] * len(split.y)
    # each modality's recorded draws, applied again, give the inputs the model was tested on
    for side, m in ((0, "visual"), (1, "audio")):
        batch = [None, None]
        batch[side] = np.asarray(split.inputs[m], dtype=split.inputs[m].dtype)
        out, _ = corrupt(tuple(batch), "interference", 4, backend=backend, kind="av",
                         drawn=json.loads(json.dumps(built.drawn[m])), sample_rate=16000)
        assert np.array_equal(out[side], built.inputs[m]), m
    # from the cache, the same draws
    cache = CorruptionCache(tmp_path)
    build_test_inputs(dataset, split, cond, 0, "6e" * 10, backend, cache=cache)
    cached = build_test_inputs(dataset, split, cond, 0, "6e" * 10, backend, cache=cache)
    assert cache.hits == 2 and cached.drawn == built.drawn


def test_mixed_conditions_keep_the_draws_of_the_corrupted_samples_only(avdigits):
    dataset, split = avdigits
    cond = Mixed((("visual", "gaussian_noise"), ("audio", "gaussian_noise")), 5, 0.5)
    out = build_test_inputs(dataset, split, cond, 0, "cc" * 10)
    for m in ("visual", "audio"):
        seeds = out.drawn[m]["seed"]
        assert len(seeds) == len(split.y)
        rows = [i for i, s in enumerate(seeds) if s is not None]
        assert 0 < len(rows) < len(split.y)
        untouched = [i for i in range(len(split.y)) if i not in rows]
        assert all(np.array_equal(out.inputs[m][i], split.inputs[m][i]) for i in untouched)
        again, _ = corrupt(split.inputs[m][rows], "gaussian_noise", 5, backend="torch",
                           kind=dataset.modalities[m].kind,
                           drawn={"seed": [seeds[i] for i in rows]}, sample_rate=16000)
        assert np.array_equal(again, out.inputs[m][rows])
