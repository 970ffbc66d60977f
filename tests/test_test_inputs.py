"""Test inputs: deterministic per sample, independent of batching and of the other cells."""

import numpy as np
import pytest

from corruptions import registry
from corruptions.backends import corrupt_batch
from rambench.cache import CorruptionCache
from rambench.datasets import Split, datasets
from rambench.schema import Corrupt, Drop, Mixed, RandomMissing
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
    single = corrupt_batch(split.inputs[modality][7:8], corruption, kind, 3, [int(seeds[7])],
                           backend, sample_rate=16000)
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
    # an entry without its sidecar (an interrupted write) does not exist
    path.with_suffix(".json").unlink()
    assert cache.get("ab" * 10, "visual") is None
    assert cache.clear() == 1 and cache.info().entries == 0
