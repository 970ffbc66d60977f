from rambench.datasets.base import SPLITS, Dataset, ModalitySpec, Split, datasets, to_batch

__all__ = ["SPLITS", "Dataset", "ModalitySpec", "Split", "datasets", "to_batch"]
