"""rambench.datasets.built: generated datasets kept on disk, checked, rebuilt when damaged."""

from __future__ import annotations

import logging

import numpy as np

from rambench.datasets.base import Split
from rambench.datasets.built import build_key, cached_splits, entry_path


def make_splits(seed: int = 0) -> dict[str, Split]:
    rng = np.random.default_rng(seed)
    return {name: Split(inputs={"visual": rng.integers(0, 256, (n, 4, 4, 3), dtype=np.uint8),
                                "audio": rng.standard_normal((n, 8)).astype(np.float32)},
                        y=rng.integers(0, 3, n), groups=rng.integers(0, 5, n),
                        info={"ids": np.arange(n)})
            for name, n in (("train", 6), ("val", 3), ("test", 4))}


def assert_same(a: dict[str, Split], b: dict[str, Split]) -> None:
    assert set(a) == set(b)
    for name in a:
        for m in a[name].inputs:
            assert a[name].inputs[m].dtype == b[name].inputs[m].dtype
            assert np.array_equal(a[name].inputs[m], b[name].inputs[m])
        assert np.array_equal(a[name].y, b[name].y)
        assert np.array_equal(a[name].groups, b[name].groups)
        assert np.array_equal(a[name].info["ids"], b[name].info["ids"])


def test_a_build_is_kept_and_read_back_by_the_next_caller(tmp_path, monkeypatch):
    monkeypatch.setenv("RAMBENCH_CACHE_DIR", str(tmp_path))
    calls = []

    def build():
        calls.append(1)
        return make_splits()

    first = cached_splits("toy", "k1", build)
    second = cached_splits("toy", "k1", build)
    assert len(calls) == 1 and second is not first
    assert_same(first, second)
    cached_splits("toy", "k2", build)  # another key: built again
    assert len(calls) == 2
    assert entry_path("toy", "k1").is_file() and entry_path("toy", "k2").is_file()


def test_a_damaged_entry_is_dropped_and_built_again(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("RAMBENCH_CACHE_DIR", str(tmp_path))
    cached_splits("toy", "k", make_splits)
    path = entry_path("toy", "k")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    calls = []
    with caplog.at_level(logging.WARNING, logger="rambench"):
        splits = cached_splits("toy", "k", lambda: calls.append(1) or make_splits())
    assert calls == [1] and "checksum" in caplog.text
    assert_same(splits, make_splits())
    assert_same(cached_splits("toy", "k", make_splits), make_splits())  # rewritten whole


def test_an_entry_without_its_sidecar_does_not_exist(tmp_path, monkeypatch):
    monkeypatch.setenv("RAMBENCH_CACHE_DIR", str(tmp_path))
    cached_splits("toy", "k", make_splits)
    entry_path("toy", "k").with_suffix(".json").unlink()  # as after an interrupted write
    assert_same(cached_splits("toy", "k", lambda: make_splits(1)), make_splits(1))


def test_an_unwritable_cache_costs_only_the_build(tmp_path, monkeypatch, caplog):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("RAMBENCH_CACHE_DIR", str(blocked))
    with caplog.at_level(logging.WARNING, logger="rambench"):
        assert_same(cached_splits("toy", "k", make_splits), make_splits())
    assert "could not keep" in caplog.text


def test_the_key_changes_with_each_part():
    keys = {build_key("v1", b"code", "1.0"), build_key("v2", b"code", "1.0"),
            build_key("v1", b"code2", "1.0"), build_key("v1", b"code", "1.1")}
    assert len(keys) == 4
    assert build_key("v1", b"code", "1.0") == build_key("v1", b"code", "1.0")
