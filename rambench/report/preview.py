"""One figure that shows what every corruption does at each severity to one test sample:
rows are corruptions, columns clean then severities 1-5 (images as they are; audio as
log-mel spectrograms, the input the audio encoder sees)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from corruptions import registry
from corruptions.backends import corrupt_batch
from rambench.datasets import Dataset
from rambench.report import style


def preview_figure(dataset: Dataset, modality: str, index: int = 0, seed: int = 0,
                   backend: str = "torch", device: str = "cpu"):
    """The matplotlib figure (not saved) for `modality` of test sample `index`."""
    import matplotlib.pyplot as plt

    spec = dataset.modalities[modality]
    test = dataset.split("test")
    sample = test.inputs[modality][index:index + 1]
    names = registry.names(spec.kind)
    scale = None
    if spec.kind == "audio":  # one colour scale for all panels: the clean clip's range
        clean = log_mel(sample[0], spec.sample_rate)
        scale = (float(np.percentile(clean, 1)), float(clean.max()))
    columns = ["clean", *(f"severity {s}" for s in registry.SEVERITIES)]
    with plt.rc_context(style.RC):
        fig, axes = plt.subplots(len(names), len(columns), squeeze=False,
                                 figsize=(style.DOUBLE_COLUMN * 0.75,
                                          0.62 * len(names) + 0.3))
        for row, name in enumerate(names):
            images = [sample[0]] + [
                corrupt_batch(sample, name, spec.kind, s, [seed], backend, device,
                              spec.sample_rate)[0]
                for s in registry.SEVERITIES]
            for col, data in enumerate(images):
                ax = axes[row, col]
                _draw(ax, data, spec, scale)
                ax.set_xticks([])
                ax.set_yticks([])
                if row == 0:
                    ax.set_title(columns[col])
                if col == 0:
                    ax.set_ylabel(name.replace("_", " "), rotation=0, ha="right", va="center")
        fig.suptitle(f"{dataset.name} {modality}: test sample {index} "
                     f"(label {dataset.class_names[int(test.y[index])]}), {backend} backend")
        fig.tight_layout(pad=0.3, h_pad=0.2, w_pad=0.2, rect=(0, 0, 1, 0.985))
    return fig


def _draw(ax, data: np.ndarray, spec, scale: tuple[float, float] | None) -> None:
    if spec.kind == "image":
        ax.imshow(data.squeeze(-1) if data.shape[-1] == 1 else data,
                  cmap="gray" if data.shape[-1] == 1 else None, vmin=0, vmax=255)
    else:
        ax.imshow(log_mel(data, spec.sample_rate), origin="lower", aspect="auto",
                  cmap="magma", vmin=scale[0], vmax=scale[1])


def log_mel(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    from rambench.models.encoders import LogMel

    with torch.no_grad():
        return LogMel(sample_rate)(torch.from_numpy(np.asarray(wave, np.float32))[None])[0, 0]\
            .numpy()


def save_preview(fig, target: str | Path) -> Path:
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, dpi=150 if target.suffix == ".png" else None)
    return target
