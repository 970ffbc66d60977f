"""One figure that shows what every corruption does at each severity to one test sample:
rows are corruptions, columns clean then severities 1-5 (images as they are; audio as
log-mel spectrograms, the input the audio encoder sees)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from corruptions import registry
from corruptions.scales import DEFAULT_SCALE, resolve_scale
from rambench.datasets import Dataset
from rambench.report import style
from rambench.test_inputs import corrupt_array, corrupt_event


def preview_figure(dataset: Dataset, modality: str, index: int = 0, seed: int = 0,
                   backend: str = "torch", device: str = "cpu", scale: str = DEFAULT_SCALE):
    """The matplotlib figure (not saved) for `modality` of test sample `index`; a clip is
    corrupted frame by frame as the harness does and shown by its middle frame."""
    import matplotlib.pyplot as plt

    spec = dataset.modalities[modality]
    test = dataset.split("test")
    sample = test.inputs[modality][index:index + 1]
    names = registry.names(spec.kind)
    level = None
    if spec.kind == "audio":  # one colour scale for all panels: the clean clip's range
        clean = log_mel(sample[0], spec.sample_rate)
        level = (float(np.percentile(clean, 1)), float(clean.max()))
    elif scale == "auto":
        scale = resolve_scale(scale, *spec.shape[-3:-1])
    columns = ["clean", *(f"severity {s}" for s in registry.SEVERITIES)]
    seeds = np.array([seed], dtype=np.uint32)
    with plt.rc_context(style.RC):
        fig, axes = plt.subplots(len(names), len(columns), squeeze=False,
                                 figsize=(style.DOUBLE_COLUMN * 0.75,
                                          0.62 * len(names) + 0.3))
        drawn = None
        for row, name in enumerate(names):
            images = [sample[0]] + [
                corrupt_array(dataset, modality, sample, name, s, seeds, backend, device,
                              scale=scale)[0]
                for s in registry.SEVERITIES]
            for col, data in enumerate(images):
                ax = axes[row, col]
                drawn = _draw(ax, _frame(data, spec), spec, level)
                ax.set_xticks([])
                ax.set_yticks([])
                if row == 0:
                    ax.set_title(columns[col])
                if col == 0:
                    ax.set_ylabel(name.replace("_", " "), rotation=0, ha="right", va="center")
        table = f", severity scale {scale}" if spec.kind == "image" else ""
        fig.suptitle(f"{dataset.name} {modality}: test sample {index} "
                     f"(label {dataset.class_names[int(test.y[index])]}), {backend} "
                     f"backend{table}")
        audio = spec.kind == "audio"
        fig.tight_layout(pad=0.3, h_pad=0.2, w_pad=0.2,
                         rect=(0, 0, 0.92 if audio else 1, 0.985))
        if audio:
            _spectrogram_scale(fig, axes[-1, :], drawn)
    return fig


def events_figure(dataset: Dataset, index: int = 0, seed: int = 0):
    """Every co-occurring audio-visual event at severities 1-5 on one test sample: for each
    event a row of frames and, below it, the row of the soundtrack's log-mel spectrograms."""
    import matplotlib.pyplot as plt

    kinds = {m: s.kind for m, s in dataset.modalities.items()}
    image_m = next(m for m, k in kinds.items() if k == "image")
    audio_m = next(m for m, k in kinds.items() if k == "audio")
    test = dataset.split("test")
    image_spec, audio_spec = dataset.modalities[image_m], dataset.modalities[audio_m]
    clean_image = test.inputs[image_m][index:index + 1]
    clean_audio = np.asarray(test.inputs[audio_m][index:index + 1], dtype=np.float32)
    pool = list(np.asarray(test.inputs[audio_m], dtype=np.float32))
    clean_mel = log_mel(clean_audio[0], audio_spec.sample_rate)
    level = (float(np.percentile(clean_mel, 1)), float(clean_mel.max()))
    events = registry.names("av")
    columns = ["clean", *(f"severity {s}" for s in registry.SEVERITIES)]
    with plt.rc_context(style.RC):
        fig, axes = plt.subplots(2 * len(events), len(columns), squeeze=False,
                                 figsize=(style.DOUBLE_COLUMN * 0.75,
                                          1.1 * len(events) + 0.3))
        for row, event in enumerate(events):
            panels = [(clean_image[0], clean_audio[0])]
            for s in registry.SEVERITIES:
                images, audio, _ = corrupt_event(
                    event, clean_image, clean_audio, s, [seed], audio_spec.sample_rate,
                    pool=pool)
                panels.append((images[0], audio[0]))
            for col, (frame, wave) in enumerate(panels):
                top, bottom = axes[2 * row, col], axes[2 * row + 1, col]
                _draw(top, _frame(frame, image_spec), image_spec, None)
                _draw(bottom, wave, audio_spec, level)
                for ax in (top, bottom):
                    ax.set_xticks([])
                    ax.set_yticks([])
                if row == 0:
                    top.set_title(columns[col])
                if col == 0:
                    top.set_ylabel(event.replace("_", " "), rotation=0, ha="right",
                                   va="center")
        fig.suptitle(f"{dataset.name}: audio-visual events on test sample {index} "
                     f"(label {dataset.class_names[int(test.y[index])]})")
        fig.tight_layout(pad=0.3, h_pad=0.1, w_pad=0.2, rect=(0, 0, 0.92, 0.985))
        _spectrogram_scale(fig, axes[-1, :], bottom.get_images()[0])
    return fig


def _frame(data: np.ndarray, spec) -> np.ndarray:
    """What to draw of one sample: a clip (T, H, W, C) by its middle frame."""
    return data[len(data) // 2] if spec.kind == "image" and data.ndim == 4 else data


def _draw(ax, data: np.ndarray, spec, scale: tuple[float, float] | None):
    """Draws one panel; returns the image artist. A spectrogram spans (0, clip seconds) on
    x and the mel bands on y."""
    if spec.kind == "image":
        return ax.imshow(data.squeeze(-1) if data.shape[-1] == 1 else data,
                         cmap="gray" if data.shape[-1] == 1 else None, vmin=0, vmax=255)
    mel = log_mel(data, spec.sample_rate)
    return ax.imshow(mel, origin="lower", aspect="auto", cmap="magma", vmin=scale[0],
                     vmax=scale[1], extent=(0, len(data) / spec.sample_rate, 0, mel.shape[0]))


def _spectrogram_scale(fig, bottom_row, image) -> None:
    """Scales for spectrogram panels: seconds under the bottom-left panel, the mel bands
    beside the bottom-right one, and one colour bar for all (every panel shares the clean clip's
    range)."""
    _, end, _, top = bottom_row[0].get_images()[0].get_extent()
    bottom_row[0].set_xticks([0, end], ["0", f"{end:g} s"], fontsize=5)
    bottom_row[-1].yaxis.tick_right()
    bottom_row[-1].set_yticks([0, top], ["mel 0", f"{top:g}"], fontsize=5)
    cax = fig.add_axes((0.95, 0.1, 0.012, 0.75))
    bar = fig.colorbar(image, cax=cax)
    bar.set_label("log-mel power (ln)", fontsize=6)
    bar.ax.tick_params(labelsize=5)


def log_mel(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    from rambench.models.encoders import LogMel

    with torch.no_grad():
        return LogMel(sample_rate)(torch.from_numpy(np.asarray(wave, np.float32))[None])[0, 0]\
            .numpy()


def save_preview(fig, target: str | Path) -> Path:
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, dpi=150 if target.suffix == ".png" else None, bbox_inches="tight")
    return target
