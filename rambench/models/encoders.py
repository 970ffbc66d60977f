"""Unimodal encoders, chosen by name: each maps one modality's raw batch to (B, dim) features.

Methods never build encoders themselves; they ask the harness for one per modality, so a
dataset can switch to e.g. a ResNet-18 pair without touching any method.

Besides `forward(x) -> (B, dim)`, the built-in encoders have `tokens(x) -> (B, N, dim)`:
the pre-pool map, one token per cell (image: spatial cells; audio: time-frequency cells,
mel-major; clips: frames), each passed through the same final projection as the pooled
feature, so that `tokens(x).mean(1)` equals `forward(x)` up to rounding. `tokens` adds no
parameters and `forward` is untouched, so methods that only call `forward` are unaffected.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from rambench.datasets.base import ModalitySpec
from rambench.registry import Registry

EncoderFactory = Callable[[ModalitySpec, int], nn.Module]
encoders: Registry[EncoderFactory] = Registry("encoder")


class MaxPool2x2(nn.MaxPool2d):
    """`nn.MaxPool2d(2)`, computed without indices where no gradient is taken.

    The maximum of each 2x2 window is the elementwise maximum of the map's four strided
    quarters: the same values bit for bit (a maximum rounds nothing), about 10x faster on a
    CPU than `max_pool2d`, which also finds the winning index. Where a gradient is needed,
    `max_pool2d` itself runs, so training (which routes the gradient to the first maximum
    of a window) is unchanged."""

    def __init__(self) -> None:
        super().__init__(2)

    def forward(self, x: Tensor) -> Tensor:
        if (torch.is_grad_enabled() and x.requires_grad) or min(x.shape[-2:]) < 2:
            return super().forward(x)
        x = x[..., : x.shape[-2] // 2 * 2, : x.shape[-1] // 2 * 2]  # floor, as max_pool2d
        rows = torch.maximum(x[..., 0::2, :], x[..., 1::2, :])
        return torch.maximum(rows[..., 0::2], rows[..., 1::2])


def conv_block(c_in: int, c_out: int, pool: bool) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    ]
    if pool:
        layers.append(MaxPool2x2())
    return nn.Sequential(*layers)


class SmallCNN(nn.Module):
    """Three conv blocks and global average pooling: enough for 32x32 digits."""

    def __init__(self, in_channels: int, dim: int, widths: tuple[int, ...] = (32, 64, 128)):
        super().__init__()
        blocks, c = [], in_channels
        for i, w in enumerate(widths):
            blocks.append(conv_block(c, w, pool=i < len(widths) - 1))
            c = w
        self.features = nn.Sequential(*blocks)
        self.proj = nn.Linear(c, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(self.features(x).mean(dim=(2, 3)))

    def tokens(self, x: Tensor) -> Tensor:
        """(B, H'*W', dim): the projected cells of the last feature map, row-major."""
        return self.proj(self.features(x).flatten(2).transpose(1, 2))


class ImageCNN(nn.Module):
    """Images in [0, 1], (B, C, H, W), centred and fed to a SmallCNN."""

    def __init__(self, spec: ModalitySpec, dim: int):
        super().__init__()
        self.cnn = SmallCNN(spec.shape[-1], dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.cnn((x - 0.5) / 0.25)

    def tokens(self, x: Tensor) -> Tensor:
        """(B, H/4 * W/4, dim): spatial cells (64 for a 32x32 image)."""
        return self.cnn.tokens((x - 0.5) / 0.25)


def mel_filterbank(n_fft: int, n_mels: int, sample_rate: int, f_min: float, f_max: float):
    """Triangular HTK mel filters, (n_fft // 2 + 1, n_mels), as in librosa's htk=True."""

    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None] - lower) / (centre - lower)
    falling = (upper - freqs[None]) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling)).T.astype(np.float32)


class LogMel(nn.Module):
    """Log-mel spectrogram with torch.stft: (B, T) waveform -> (B, 1, n_mels, frames)."""

    def __init__(self, sample_rate: int, n_fft: int = 400, hop: int = 160, n_mels: int = 40):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        fb = mel_filterbank(n_fft, n_mels, sample_rate, 20.0, sample_rate / 2)
        self.register_buffer("mel", torch.from_numpy(fb), persistent=False)

    def forward(self, wave: Tensor) -> Tensor:
        spec = torch.stft(
            wave.float(), self.n_fft, self.hop, window=self.window, return_complex=True
        )
        power = spec.real.square() + spec.imag.square()  # (B, F, frames)
        mel = torch.einsum("bft,fm->bmt", power, self.mel)
        return torch.log(mel + 1e-6).unsqueeze(1)


class AudioCNN(nn.Module):
    """Log-mel spectrogram, a learned input normalisation, then a SmallCNN."""

    def __init__(self, spec: ModalitySpec, dim: int):
        super().__init__()
        assert spec.sample_rate is not None, "audio modalities need a sample rate"
        self.logmel = LogMel(spec.sample_rate)
        self.norm = nn.BatchNorm2d(1)
        self.cnn = SmallCNN(1, dim, widths=(16, 32, 64, 128))

    def forward(self, wave: Tensor) -> Tensor:
        return self.cnn(self.norm(self.logmel(wave)))

    def tokens(self, wave: Tensor) -> Tensor:
        """(B, mels/8 * frames/8, dim): time-frequency cells, mel-major (5 x 12 = 60 for
        1 s at 16 kHz)."""
        return self.cnn.tokens(self.norm(self.logmel(wave)))


encoders.register("image_cnn")(ImageCNN)
encoders.register("audio_cnn")(AudioCNN)
