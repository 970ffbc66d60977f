"""Test inputs for a condition: corrupted arrays and missing-modality masks.

Every random draw comes from a per-sample seed derived from (seed, data key, sample
index), so a sample's corruption depends on neither batch size nor the order of cells,
and every method of a study sees exactly the same corrupted test set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from corruptions import registry as corruption_registry
from corruptions.missing import random_missing_mask
from rambench.datasets import Dataset, Split
from rambench.plan import Condition


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


def _corrupt_array(
    dataset: Dataset, modality: str, array: np.ndarray, name: str, severity: int,
    seeds: np.ndarray, selected: np.ndarray | None = None,
) -> np.ndarray:
    spec = dataset.modalities[modality]
    corruption = corruption_registry.get(name, spec.kind)
    context = {"sample_rate": spec.sample_rate} if spec.kind == "audio" else {}
    out = array.copy()
    rows = np.flatnonzero(selected) if selected is not None else np.arange(len(array))
    for i in rows:
        out[i] = corruption(array[i], severity, int(seeds[i]), **context)
    return out


def build_test_inputs(
    dataset: Dataset, split: Split, condition: Condition, seed: int, data_key: str,
) -> TestInputs:
    inputs, missing = dict(split.inputs), {}
    n = len(split)
    if condition.kind == "corruption":
        seeds = sample_seeds(seed, data_key, n)
        inputs[condition.modality] = _corrupt_array(
            dataset, condition.modality, split.inputs[condition.modality],
            condition.corruption, condition.severity, seeds)
    elif condition.kind == "missing":
        modalities = tuple(dataset.modalities)
        if condition.missing_pattern == "drop":
            missing = {condition.modality: np.ones(n, dtype=bool)}
        else:
            masks = np.stack([
                random_missing_mask(len(modalities), condition.missing_rate, int(s))
                for s in sample_seeds(seed, data_key, n)
            ])
            missing = {m: masks[:, j] for j, m in enumerate(modalities)}
    elif condition.kind == "mixed":
        for stream, (modality, name) in enumerate(condition.mixed, start=1):
            seeds = sample_seeds(seed, data_key, n, stream)
            selected = np.array([np.random.default_rng(s).random() < condition.mixed_probability
                                 for s in seeds])
            inputs[modality] = _corrupt_array(
                dataset, modality, split.inputs[modality], name, condition.severity,
                seeds, selected)
    return TestInputs(inputs, missing)
