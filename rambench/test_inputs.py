"""Test inputs for a condition: corrupted arrays and missing-modality masks.

Every random draw comes from a per-sample seed derived from (seed, data key, sample
index), so a sample's corruption depends on neither batch size nor the order of cells,
and every method of a study sees exactly the same corrupted test set.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import torch

from corruptions import av_events
from corruptions.backends import DEFAULT_BACKEND, corrupt_batch, drawn_parameters
from corruptions.missing import random_missing_mask
from corruptions.scales import DEFAULT_SCALE
from rambench.cache import CorruptionCache
from rambench.datasets import Dataset, Split
from rambench.schema import AVEvent, Condition, Corrupt, Drop, Mixed, RandomMissing


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
    # modality -> the corruption's random parameters per sample (`drawn_parameters`)
    drawn: dict[str, dict[str, list]] = field(default_factory=dict)


def corrupt_array(
    dataset: Dataset, modality: str, array: np.ndarray, name: str, severity: int,
    seeds: np.ndarray, backend: str, device: torch.device | str,
    selected: np.ndarray | None = None, scale: str | None = None,
) -> np.ndarray:
    """`array` (a split's inputs of `modality`) with corruption `name` applied to every sample
    (or the `selected` ones), each with its seed (a clip's frames each get a seed derived
    from the clip's: `corruptions.backends.corrupt_batch`)."""
    spec = dataset.modalities[modality]
    rows = np.flatnonzero(selected) if selected is not None else np.arange(len(array))
    out = np.array(array)  # a writable in-memory copy (the split may be memory-mapped)
    if not len(rows):
        return out
    out[rows] = corrupt_batch(out[rows], name, spec.kind, severity, seeds[rows].tolist(),
                              backend, device, spec.sample_rate, scale or DEFAULT_SCALE)
    return out


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

    def corrupted(modality: str, name: str, stream: int, probability: float | None = None):
        if cache is not None and (hit := cache.get(data_key, modality)) is not None:
            return hit
        seeds = stream_seeds(stream)
        selected = None if probability is None else np.array(
            [np.random.default_rng(s).random() < probability for s in seeds])
        array = corrupt_array(dataset, modality, split.inputs[modality], name,
                               condition.severity, seeds, backend, device, selected,
                               condition.severity_scale)
        if cache is not None:
            cache.put(data_key, modality, array, {
                "dataset_version": dataset.version, "seed": seed,
                "condition": condition.to_json(), "backend": backend,
                "device": torch.device(device).type})
        return array

    drawn = {}
    if isinstance(condition, Corrupt):
        modality = condition.test_modality
        inputs[modality] = corrupted(modality, condition.corruption, 0)
        parameters = drawn_parameters(
            split.inputs[modality], condition.corruption, dataset.modalities[modality].kind,
            condition.severity, stream_seeds(0), backend, device,
            condition.severity_scale or DEFAULT_SCALE)
        drawn = {modality: parameters} if parameters else {}
    elif isinstance(condition, Drop):
        missing = {condition.test_modality: np.ones(n, dtype=bool)}
    elif isinstance(condition, RandomMissing):
        modalities = tuple(dataset.modalities)
        masks = np.stack([
            random_missing_mask(len(modalities), condition.missing_rate, int(s))
            for s in sample_seeds(seed, draws, n)
        ])
        missing = {m: masks[:, j] for j, m in enumerate(modalities)}
    elif isinstance(condition, Mixed):
        for stream, (modality, name) in enumerate(condition.pairs, start=1):
            inputs[modality] = corrupted(modality, name, stream, condition.probability)
    elif isinstance(condition, AVEvent):
        inputs.update(_av_inputs(dataset, split, condition, seed, data_key, draws, cache,
                                 backend, device))
    return TestInputs(inputs, missing, drawn)


def _av_inputs(dataset: Dataset, split: Split, condition: AVEvent, seed: int, data_key: str,
               draw_key: str, cache: CorruptionCache | None, backend: str = DEFAULT_BACKEND,
               device: torch.device | str = "cpu") -> dict[str, np.ndarray]:
    """Both modalities of an audio-visual event, one seed per sample, on the corruption
    `backend` (and `device`); the crowd babble draws from the whole split's clean audio
    (never the batch's), so it does not depend on batching."""
    image_m, audio_m = condition.modalities
    if cache is not None:
        hits = {m: cache.get(data_key, m) for m in condition.modalities}
        if all(v is not None for v in hits.values()):
            return hits
    seeds = sample_seeds(seed, draw_key, len(split)).tolist()
    audio = np.asarray(split.inputs[audio_m], dtype=np.float32)
    images, sound, _ = av_events.apply_event(
        condition.event, np.asarray(split.inputs[image_m]), audio, condition.severity, seeds,
        dataset.modalities[audio_m].sample_rate, pool=list(audio),
        noise_dir=condition.noise_dir, backend=backend, device=device)
    out = {image_m: images, audio_m: sound}
    if cache is not None:
        for m, array in out.items():
            cache.put(data_key, m, array, {
                "dataset_version": dataset.version, "seed": seed,
                "condition": condition.to_json(),
                "backend": av_events.backend_id(backend, device),
                "device": torch.device(device).type})
    return out
