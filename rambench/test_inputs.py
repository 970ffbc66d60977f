"""Test inputs for a condition: corrupted arrays and missing-modality masks.

Every random draw comes from a per-sample seed derived from (seed, data key, sample
index), so a sample's corruption depends on neither batch size nor the order of cells,
and every method of a study sees exactly the same corrupted test set.
"""

from __future__ import annotations

import functools
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from corruptions.backends import DEFAULT_BACKEND, backend_id, corrupt
from corruptions.missing import lose_segments, random_missing_mask, uneven_missing_mask
from corruptions.scales import DEFAULT_SCALE
from rambench.cache import CorruptionCache
from rambench.datasets import Dataset, Split
from rambench.schema import (
    AVEvent,
    Condition,
    Corrupt,
    Drop,
    Mixed,
    ModalityMissing,
    Provided,
    RandomMissing,
    SegmentLoss,
)


def sample_seeds(seed: int, data_key: str, n: int, stream: int = 0) -> np.ndarray:
    """One 32-bit seed per sample index, independent across (seed, key, stream)."""
    entropy = [seed, int(data_key[:16], 16), stream]
    return np.array(
        [np.random.SeedSequence(entropy + [i]).generate_state(1)[0] for i in range(n)],
        dtype=np.uint32,
    )


@dataclass
class TestInputs:
    inputs: dict[str, np.ndarray]  # arrays replacing the split's (only corrupted ones differ)
    missing: dict[str, np.ndarray]  # modality -> bool (N,), True where dropped
    # modality -> the random parameters its corruption drew and applied, one value per
    # sample under each name (`corruptions.backends.corrupt`; None where a sample was not
    # corrupted); none for a deterministic corruption
    drawn: dict[str, dict[str, list]] = field(default_factory=dict)


def corrupt_array(
    dataset: Dataset, modality: str, array: np.ndarray, name: str, severity: int,
    seeds: np.ndarray, backend: str, device: torch.device | str,
    selected: np.ndarray | None = None, scale: str | None = None,
) -> np.ndarray:
    """`array` (a split's inputs of `modality`) with corruption `name` applied to every sample
    (or the `selected` ones), each with its seed (a clip's frames each get a seed derived
    from the clip's: `corruptions.backends.corrupt`)."""
    return corrupt_rows(dataset, modality, array, name, severity, seeds, backend, device,
                        selected, scale)[0]


def corrupt_rows(
    dataset: Dataset, modality: str, array: np.ndarray, name: str, severity: int,
    seeds: np.ndarray, backend: str, device: torch.device | str,
    selected: np.ndarray | None = None, scale: str | None = None,
) -> tuple[np.ndarray, dict[str, list]]:
    """`corrupt_array`, and the parameters the corruption drew and applied: one value per
    sample of `array` under each name, None for the samples left out of `selected`."""
    spec = dataset.modalities[modality]
    rows = np.flatnonzero(selected) if selected is not None else np.arange(len(array))
    out = np.array(array)  # a writable in-memory copy (the split may be memory-mapped)
    if not len(rows):
        return out, {}
    out[rows], drawn = corrupt(out[rows], name, severity, seeds[rows].tolist(), backend,
                               device, kind=spec.kind, sample_rate=spec.sample_rate,
                               scale=scale or DEFAULT_SCALE)
    if selected is not None:
        drawn = {k: _scatter(v, rows, len(array)) for k, v in drawn.items()}
    return out, drawn


def corrupt_event(
    name: str, images: np.ndarray | None, audio: np.ndarray | None, severity: int,
    seeds: list[int], sample_rate: int | None = None, pool: list[np.ndarray] | None = None,
    noise_dir: str | Path | None = None, backend: str = "reference",
    device: torch.device | str = "cpu", scale: str | None = None,
    pool_labels: list[int] | None = None,
) -> tuple[np.ndarray | None, np.ndarray | None, dict[str, list]]:
    """Both modalities of every sample corrupted with audio-visual event `name`
    (`corruptions.av_events`, through `corruptions.backends.corrupt`): (images, audio,
    the parameters drawn and applied, one value per sample under each name)."""
    with warnings.catch_warnings():
        # a prepared dataset's arrays are read-only memory maps; the torch backend wraps
        # them with torch.from_numpy and only reads them (every result is a new tensor)
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        (images, audio), drawn = corrupt((images, audio), name, severity, seeds, backend,
                                         device, kind="av", sample_rate=sample_rate,
                                         pool=pool, pool_labels=pool_labels,
                                         noise_dir=noise_dir, scale=scale or DEFAULT_SCALE)
    return images, audio, drawn


def _scatter(values: list, rows: np.ndarray, n: int) -> list:
    out: list[Any] = [None] * n
    for row, value in zip(rows.tolist(), values, strict=True):
        out[row] = value
    return out


def _as_json(drawn: dict[str, Any]) -> dict[str, Any]:
    """The drawn parameters as a record keeps them (tuples as lists), and as the cache
    gives them back."""
    return json.loads(json.dumps(drawn))


def build_test_inputs(
    dataset: Dataset, split: Split, condition: Condition, seed: int, data_key: str,
    backend: str = DEFAULT_BACKEND, device: torch.device | str = "cpu",
    cache: CorruptionCache | None = None, draw_key: str | None = None,
) -> TestInputs:
    """The test inputs of one condition. Corrupted arrays come from `cache` when it holds
    this data key, and are stored there otherwise. The per-sample seeds come from
    `draw_key` (`rambench.plan.Cell.draw_key`; default: the data key)."""
    inputs, missing = dict(split.inputs), {}
    n = len(split)
    draws = draw_key or data_key

    @functools.cache
    def stream_seeds(stream: int) -> np.ndarray:
        return sample_seeds(seed, draws, n, stream)

    def corrupted(modality: str, name: str, stream: int, probability: float | None = None
                  ) -> tuple[np.ndarray, dict[str, list]]:
        if cache is not None and (hit := cache.entry(data_key, modality, ("drawn",))):
            return hit[0], hit[1]["drawn"]
        seeds = stream_seeds(stream)
        selected = None if probability is None else np.array(
            [np.random.default_rng(s).random() < probability for s in seeds])
        array, drawn = corrupt_rows(dataset, modality, split.inputs[modality], name,
                                    condition.severity, seeds, backend, device, selected,
                                    condition.severity_scale)
        drawn = _as_json(drawn)
        if cache is not None:
            cache.put(data_key, modality, array, {
                "dataset_version": dataset.version, "seed": seed,
                "condition": condition.to_json(), "backend": backend,
                "device": torch.device(device).type, "drawn": drawn})
        return array, drawn

    drawn = {}
    if isinstance(condition, Corrupt):
        modality = condition.test_modality
        inputs[modality], drawn[modality] = corrupted(modality, condition.corruption, 0)
    elif isinstance(condition, Drop):
        missing = {condition.test_modality: np.ones(n, dtype=bool)}
    elif isinstance(condition, RandomMissing):
        modalities = tuple(dataset.modalities)
        masks = np.stack([
            random_missing_mask(len(modalities), condition.missing_rate, int(s))
            for s in sample_seeds(seed, draws, n)
        ])
        missing = {m: masks[:, j] for j, m in enumerate(modalities)}
    elif isinstance(condition, ModalityMissing):
        modalities = [m for m, _ in condition.rates]
        rates = tuple(r for _, r in condition.rates)
        masks = np.stack([uneven_missing_mask(rates, int(s))
                          for s in sample_seeds(seed, draws, n)])
        missing = {m: masks[:, j] for j, m in enumerate(modalities)}
    elif isinstance(condition, Provided):
        inputs[condition.test_modality] = dataset.provided_inputs(condition.name)
    elif isinstance(condition, SegmentLoss):
        modality = condition.test_modality
        inputs[modality], spans = lose_segments(split.inputs[modality], condition.severity,
                                                stream_seeds(0))
        drawn[modality] = {"segment": spans}
    elif isinstance(condition, Mixed):
        for stream, (modality, name) in enumerate(condition.pairs, start=1):
            inputs[modality], drawn[modality] = corrupted(modality, name, stream,
                                                          condition.probability)
    elif isinstance(condition, AVEvent):
        av_inputs, drawn = _av_inputs(dataset, split, condition, seed, data_key, draws, cache,
                                      backend, device)
        inputs.update(av_inputs)
    drawn = {m: d for m, d in drawn.items() if d}  # deterministic corruptions draw nothing
    return TestInputs(inputs, missing, drawn)


def _av_inputs(dataset: Dataset, split: Split, condition: AVEvent, seed: int, data_key: str,
               draw_key: str, cache: CorruptionCache | None, backend: str = DEFAULT_BACKEND,
               device: torch.device | str = "cpu"
               ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, list]]]:
    """Both modalities of an audio-visual event, one seed per sample, on the corruption
    `backend` (and `device`), and what each drew (its sample's seed, what both sides share
    and its own side's draws); the crowd babble draws from the whole split's clean audio
    (never the batch's), so it does not depend on batching."""
    image_m, audio_m = condition.modalities
    if cache is not None:
        hits = {m: cache.entry(data_key, m, ("drawn",)) for m in condition.modalities}
        if all(hits.values()):
            return ({m: hit[0] for m, hit in hits.items()},
                    {m: hit[1]["drawn"] for m, hit in hits.items()})
    seeds = sample_seeds(seed, draw_key, len(split)).tolist()
    audio = np.asarray(split.inputs[audio_m], dtype=np.float32)
    images, sound, drawn = corrupt_event(
        condition.event, np.asarray(split.inputs[image_m]), audio, condition.severity, seeds,
        dataset.modalities[audio_m].sample_rate, pool=list(audio),
        pool_labels=np.asarray(split.y).tolist(), noise_dir=condition.noise_dir,
        backend=backend, device=device, scale=condition.severity_scale)
    out = {image_m: images, audio_m: sound}
    drawn = _as_json(drawn)
    sides = {image_m: {k: v for k, v in drawn.items() if k != "audio"},
             audio_m: {k: v for k, v in drawn.items() if k != "image"}}
    if cache is not None:
        for m, array in out.items():
            cache.put(data_key, m, array, {
                "dataset_version": dataset.version, "seed": seed,
                "condition": condition.to_json(),
                "backend": backend_id(condition.event, "av", backend, device),
                "device": torch.device(device).type, "drawn": sides[m]})
    return out, sides
