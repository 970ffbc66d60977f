import numpy as np
import pytest

from rambench.datasets import SPLITS, datasets


@pytest.fixture(scope="module")
def avdigits():
    return datasets.get("avdigits")()


def test_declared_interface(avdigits):
    assert avdigits.class_names == tuple("0123456789") and avdigits.num_classes == 10
    assert avdigits.modalities["visual"].kind == "image"
    assert avdigits.modalities["visual"].shape == (32, 32, 3)
    assert avdigits.modalities["audio"].kind == "audio"
    assert avdigits.modalities["audio"].sample_rate == 16000
    assert avdigits.version.startswith("3-")


def test_splits_shapes_sizes_and_labels(avdigits):
    sizes = {}
    for name in SPLITS:
        split = avdigits.split(name)
        n = len(split)
        sizes[name] = n
        assert split.inputs["visual"].shape == (n, 32, 32, 3)
        assert split.inputs["visual"].dtype == np.uint8
        assert split.inputs["audio"].shape == (n, 16000)
        assert split.inputs["audio"].dtype == np.float32
        assert np.abs(split.inputs["audio"]).max() <= 1.0
        assert set(np.unique(split.y)) == set(range(10))
    assert sum(sizes.values()) == 1797  # every scikit-learn digit exactly once
    assert sizes["train"] > 3 * sizes["test"] / 2


def test_images_are_disjoint_and_voices_never_cross_splits(avdigits):
    images = [set(avdigits.split(s).info["image_ids"]) for s in SPLITS]
    speakers = [set(avdigits.split(s).groups) for s in SPLITS]
    for i in range(3):
        for j in range(i + 1, 3):
            assert not images[i] & images[j]
            assert not speakers[i] & speakers[j]
    assert [len(s) for s in speakers] == [36, 12, 12]


def test_pairs_share_the_digit_and_are_deterministic(avdigits):
    from rambench.datasets.avdigits import _data_file

    with np.load(_data_file()) as f:
        clip_digit = f["digit"]
    test = avdigits.split("test")
    assert np.array_equal(clip_digit[test.info["clip_ids"]], test.y)
    # the build is kept on disk; generating it from scratch gives identical arrays
    from rambench.datasets import avdigits as module

    again = module._generate()["test"]
    assert again is not test
    assert np.array_equal(again.inputs["audio"], test.inputs["audio"])
    assert np.array_equal(again.inputs["visual"], test.inputs["visual"])
    assert np.array_equal(again.info["clip_ids"], test.info["clip_ids"])


def test_unknown_split_is_rejected(avdigits):
    with pytest.raises(ValueError, match="valid: train, val, test"):
        avdigits.split("dev")
