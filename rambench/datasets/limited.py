"""A debug subset of a dataset (`rambench run --limit N`): a one-minute end-to-end check of
a new method, whose results never mix with the full dataset's."""

from __future__ import annotations

from rambench.datasets.base import Dataset, Split

LIMIT_TAG = "+limit"  # in the dataset version, and so in every key and record


class Limited(Dataset):
    """The first `n` samples of every split of `base` (training: ceil(n / batch size)
    batches per epoch). Its version is the base version + "+limit<n>": every key and record
    says the data was cut. Training inputs drawn at random per epoch (clips) are fixed to
    their first draw."""

    def __init__(self, base: Dataset, n: int):
        if n < 1:
            raise ValueError(f"the limit must be a positive number of samples, got {n}")
        self.base, self.n = base, n
        self.name = base.name
        self.version = f"{base.version}{LIMIT_TAG}{n}"
        self.description = f"{base.description} (debug subset: --limit {n})"
        self.modalities = base.modalities
        self.class_names = base.class_names
        self.train_defaults = base.train_defaults

    def split(self, name: str) -> Split:
        full, k = self.base.split(name), self.n
        return Split({m: a[:k] for m, a in full.inputs.items()}, full.y[:k],
                     None if full.groups is None else full.groups[:k], dict(full.info))


    def provided(self):
        return self.base.provided()

    def provided_inputs(self, name: str):
        return self.base.provided_inputs(name)[:self.n]


def is_limited(dataset_version: str) -> bool:
    return LIMIT_TAG in dataset_version
