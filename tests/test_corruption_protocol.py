"""The corruption protocol: one spec type and one registry for image corruptions, audio
corruptions and audio-visual events; one entry point (`corruptions.backends.corrupt`)
that draws, applies and returns what it drew; records that carry the draws applied, which
applied again give the corrupted inputs exactly; no import cycle inside the library."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from corruptions import av_events, backends, registry
from corruptions.backends import BACKENDS, corrupt
from corruptions.spec import KINDS, Draws, Spec

ROOT = Path(__file__).resolve().parents[1]
SR = 16_000
RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, (2, 32, 36, 3), dtype=np.uint8)
CLIPS = RNG.integers(0, 256, (2, 2, 32, 32, 1), dtype=np.uint8)
AUDIO = (0.2 * np.sin(np.arange(3000) / 5)[None] + 0.05 * RNG.standard_normal((2, 3000))
         ).astype(np.float32)
POOL = [*AUDIO, 0.5 * AUDIO[0] + 0.1]
SEEDS = [5, 2**32 - 9]  # the pipeline draws 32-bit seeds


def test_one_registry_lists_image_audio_and_av_specs():
    specs = registry.all_corruptions()
    assert {s.kind for s in specs} == set(KINDS)
    assert all(isinstance(s, Spec) for s in specs)
    assert len(registry.names("image")) == 19 and len(registry.names("audio")) == 11
    assert registry.names("av") == list(av_events.EVENTS) and len(registry.names("av")) == 8
    assert registry.names("image", protocols=True)[-1] == "qmf_gaussian_noise"
    for spec in av_events.SPECS:
        assert registry.get(spec.name, "av") is spec and spec.kind == "av"
        assert registry.get(spec.name) is spec  # a name of one kind only
        assert len(spec.severity_table) == 5 and spec.description
    with pytest.raises(KeyError, match="each of image, audio"):
        registry.get("gaussian_noise")
    with pytest.raises(KeyError, match="unknown AV event 'rian'; did you mean 'rain'"):
        registry.get("rian", "av")


def _read_recordings(folder):
    """A folder of READ's five recordings (its weather_audios/), 48 kHz stereo as READ's."""
    from scipy.io import wavfile

    rng = np.random.default_rng(0)
    for name in ("traffic", "crowd", "rain", "thunder", "wind"):
        wavfile.write(folder / f"{name}.wav", 48_000,
                      (0.05 * rng.standard_normal((4800, 2))).astype(np.float32))
    return folder


@pytest.mark.parametrize("spec", registry.all_corruptions(), ids=lambda s: f"{s.kind}:{s.name}")
def test_every_spec_has_draw_and_apply_and_applying_its_draw_again_gives_its_output(spec,
                                                                                    tmp_path):
    """Draw then apply, on either backend: the params are JSON, one value per sample (none
    where the spec draws nothing), and applied again as a record keeps them they give the
    same batch, bit for bit."""
    assert callable(spec.draw) and callable(spec.apply) and callable(spec.prepare)
    assert spec.torch is not None and spec.backend
    batch = {"image": IMAGES, "audio": AUDIO, "av": (CLIPS, AUDIO)}[spec.kind]
    extra = {"noise_dir": _read_recordings(tmp_path)} if spec.protocol == "read" else {}
    n, context = spec.prepare(batch, sample_rate=SR, scale="auto", pool=POOL, **extra)
    draws = spec.draw(batch, 3, SEEDS, context)
    assert isinstance(draws, Draws) and all(len(v) == n for v in draws.params.values())
    assert bool(draws.params) == spec.random
    if spec.kind == "av" and spec.protocol is None:  # rambench's events keep their arrays
        assert set(draws.params) >= {"seed", "image", "audio"} and draws.derived is not None
    elif spec.kind == "av":  # a protocol's events: the seeds, and the assets they drew
        assert spec.randomness.startswith("seed") and draws.params["seed"] == SEEDS
    elif spec.random:
        assert spec.randomness.startswith("seed") and draws.params == {"seed": SEEDS}
    out = spec.apply(batch, 3, draws, context)
    if spec.kind in ("image", "audio") and spec.torch.array_function("cpu") is None:
        # the torch backend's draws applied are what its function draws from the seeds
        fn = registry.load(spec.torch.module, spec.torch.function)
        direct = (backends._images(fn, IMAGES, 3, SEEDS, torch.device("cpu"), context["scale"])
                  if spec.kind == "image" else
                  fn(torch.from_numpy(AUDIO), 3, SEEDS, SR).numpy())
        assert np.array_equal(corrupt(batch, spec, 3, SEEDS, "torch", sample_rate=SR)[0], direct)
    for backend in BACKENDS:
        first, drawn = corrupt(batch, spec, 3, SEEDS, backend, sample_rate=SR, pool=POOL,
                               **extra)
        recorded = json.loads(json.dumps(drawn))
        again, applied = corrupt(batch, spec, 3, backend=backend, drawn=recorded,
                                 sample_rate=SR, pool=POOL, **extra)
        assert applied == recorded
        if spec.kind == "av":
            for a, b in zip(first, again, strict=True):
                assert np.array_equal(a, b), backend
        else:
            assert np.array_equal(first, again), backend
        if backend == "reference":
            if spec.kind == "av":
                assert all(np.array_equal(a, b) for a, b in zip(out, first, strict=True))
                assert drawn == {k: v for k, v in draws.params.items()}
            else:
                assert np.array_equal(out, first) and drawn == draws.params


def test_clips_record_the_draws_of_their_frames_and_apply_them_again():
    for backend in BACKENDS:
        clips = np.repeat(IMAGES[:, None], 3, axis=1)
        out, drawn = corrupt(clips, "motion_blur", 4, SEEDS, backend, kind="image")
        key = "angle" if backend == "torch" else "seed"
        assert set(drawn) == {key} and [len(v) for v in drawn[key]] == [3, 3]
        again, _ = corrupt(clips, "motion_blur", 4, backend=backend, kind="image",
                           drawn=json.loads(json.dumps(drawn)))
        assert np.array_equal(out, again)


def test_seeds_or_drawn_one_of_the_two():
    with pytest.raises(ValueError, match="one of the two"):
        corrupt(IMAGES, "fog", 1, kind="image")
    with pytest.raises(ValueError, match="one of the two"):
        corrupt(IMAGES, "fog", 1, SEEDS, kind="image", drawn={"seed": SEEDS})
    with pytest.raises(ValueError, match="drawn parameters of"):
        corrupt(IMAGES, "fog", 1, kind="image", drawn={"seed": SEEDS[:1]})


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The package's modules `path` imports, lazily or not, with `import_module("...")`
    of a literal name included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant)):
            names = [node.args[0].value]
        found |= {n for n in names if n in modules}
    return found


def test_no_module_of_the_library_imports_a_module_that_imports_it_back():
    """Static imports (top-level and inside functions) and, for the registry, which imports
    modules by name, every module a spec or `BUILTIN` names: no cycle."""
    paths = {f"corruptions.{p.stem}": p for p in (ROOT / "corruptions").glob("*.py")
             if p.stem != "__init__"}
    graph = {m: _imports(p, set(paths)) - {m} for m, p in paths.items()}
    named = set(registry.BUILTIN) | {s.torch.module for s in registry.all_corruptions()}
    assert named <= set(paths)
    graph["corruptions.registry"] |= named
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        if module in path:
            raise AssertionError(f"import cycle: {' -> '.join(path[path.index(module):])} "
                                 f"-> {module}")
        if module in done:
            return
        for other in graph[module]:
            visit(other, (*path, module))
        done.add(module)

    for module in graph:
        visit(module, ())
    assert not any("registry" in m for m in graph["corruptions.spec"] | graph["corruptions.image"])


def test_records_carry_the_draws_applied_and_they_give_the_tested_inputs(tmp_path):
    """An image, an audio, a mixed and an audio-visual condition of a study: each record's
    `details["drawn"]` applied to the clean test split gives, bit for bit, the corrupted
    inputs the method was tested on (the cache's copy of them)."""
    from rambench.api import benchmark
    from rambench.datasets import datasets
    from rambench.datasets.limited import Limited
    from rambench.study import parse

    grid = parse({"conditions": {
        "clean": False, "severities": [3],
        "corruptions": {"visual": ["gaussian_noise", "motion_blur", "contrast"],
                        "audio": ["gaussian_noise"]},
        "mixed": {"corruptions": {"visual": "shot_noise", "audio": "time_mask"},
                  "severities": [4], "probability": 0.5},
        "av": {"events": ["crowd"], "severities": [2]}}}, "drawn", "drawn.yaml")
    cache = tmp_path / "cache"
    results = benchmark(["late_fusion"], grid=grid, out=tmp_path / "results", study="drawn",
                        epochs=1, device="cpu", cache_dir=cache, limit=24)
    dataset = Limited(datasets.get("avdigits")(), 24)
    clean, labels = dataset.split("test").inputs, dataset.split("test").y.tolist()
    tested = {}  # (condition, modality) -> the corrupted inputs, as cached
    for sidecar in (cache / "corrupted").rglob("*.json"):
        meta = json.loads(sidecar.read_text())
        tested[json.dumps(meta["condition"], sort_keys=True), sidecar.stem] = np.load(
            sidecar.with_suffix(".npy"))
    kinds = {m: s.kind for m, s in dataset.modalities.items()}
    checked = set()
    for record in results.records:
        condition = record.condition
        drawn = record.details.get("drawn", {})
        key = json.dumps(condition.to_json(), sort_keys=True)
        if condition.label.startswith("av:"):
            assert set(drawn) == set(condition.modalities)
            for side, m in enumerate(condition.modalities):
                batch = [None, None]
                batch[side] = clean[m]
                out, _ = corrupt(tuple(batch), condition.event, condition.severity,
                                 backend="torch", kind="av", drawn=drawn[m], sample_rate=SR,
                                 pool=list(np.asarray(clean["audio"], dtype=np.float32)),
                                 pool_labels=labels)
                assert np.array_equal(out[side], tested[key, m]), (condition.label, m)
                checked.add((condition.label, m))
            continue
        for m, name in condition.corruptions():
            if name == "contrast":  # deterministic: nothing drawn, nothing recorded
                assert not drawn
                continue
            values = drawn[m]
            rows = [i for i in range(len(clean[m]))
                    if all(v[i] is not None for v in values.values())]
            assert rows and all(len(v) == len(clean[m]) for v in values.values())
            out, _ = corrupt(clean[m][rows], name, condition.severity, backend="torch",
                             kind=kinds[m], drawn={k: [v[i] for i in rows]
                                                   for k, v in values.items()},
                             sample_rate=SR, scale=condition.severity_scale or "auto")
            assert np.array_equal(out, tested[key, m][rows]), (condition.label, m)
            checked.add((condition.label, m))
    assert {label.split(":")[0] for label, _ in checked} == {"visual", "audio", "mixed", "av"}
    assert len(checked) == 7, sorted(checked)
