from rambench.datasets.base import (
    SPLITS,
    Batcher,
    Dataset,
    ModalitySpec,
    Split,
    datasets,
    to_batch,
)

__all__ = ["SPLITS", "Batcher", "Dataset", "ModalitySpec", "Split", "datasets", "to_batch"]
