"""Batches built on the device from resident raw arrays equal the ones built on the host."""

import numpy as np
import torch

from rambench.datasets import Batcher, datasets, to_batch


def test_resident_batches_equal_host_batches():
    dataset = datasets.get("avdigits")()
    split = dataset.split("test")
    kinds = {m: s.kind for m, s in dataset.modalities.items()}
    device = torch.device("cpu")
    resident = Batcher(split, kinds, device, resident=True)
    host = Batcher(split, kinds, device, resident=False)
    assert resident.resident and not host.resident
    assert resident.tensors["visual"].dtype == torch.uint8  # uploaded raw, converted per batch
    idx = np.random.default_rng(0).permutation(len(split))[:37]
    a, b = resident(idx), host(idx)
    reference = to_batch(split, kinds, idx)
    for batch in (a, b):
        for m in kinds:
            assert torch.equal(batch.inputs[m], reference.inputs[m])
            assert batch.present[m].all()
        assert torch.equal(batch.y, reference.y) and torch.equal(batch.index, reference.index)
    # replacement inputs (a corrupted test set) are batched the same way
    noisy = {m: (np.asarray(v) // 2).astype(np.asarray(v).dtype) for m, v in split.inputs.items()}
    c = Batcher(split, kinds, device, inputs=noisy, resident=True)(idx)
    assert torch.equal(c.inputs["visual"], to_batch(split, kinds, idx, noisy).inputs["visual"])
    assert not torch.equal(c.inputs["visual"], a.inputs["visual"])


def test_arrays_drawn_per_epoch_are_never_uploaded():
    class Redrawn(np.ndarray):
        def reseed(self, seed):
            pass

    dataset = datasets.get("avdigits")()
    split = dataset.split("val")
    kinds = {m: s.kind for m, s in dataset.modalities.items()}
    inputs = {m: np.asarray(v).view(Redrawn) if m == "visual" else v
              for m, v in split.inputs.items()}
    assert not Batcher(split, kinds, torch.device("cpu"), inputs, resident=True).resident
