"""ResNet-18 (He et al., CVPR 2016) written out, for real audio-visual data: a 3-channel
variant over video frames with temporal average pooling and a 1-channel variant over
log-mel spectrograms, both giving 512-d features as in OGM-GE's audio-visual model.
No torchvision: the layers are the standard BasicBlock stack (2, 2, 2, 2).

`tokens(x) -> (B, N, dim)` gives the pre-pool tokens (frames of a clip, else the cells of
the last map), projected like the pooled feature; `tokens(x).mean(1)` equals `forward(x)`
up to rounding (see rambench.models.encoders)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rambench.datasets.base import ModalitySpec
from rambench.models.encoders import LogMel, encoders

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out))
        self.shortcut = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class ResNet18(nn.Module):
    """(B, C, H, W) -> (B, 512) after global average pooling."""

    out_dim = 512

    def __init__(self, in_channels: int = 3):
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64),
            nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)]
        c = 64
        for width, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [BasicBlock(c, width, stride), BasicBlock(width, width, 1)]
            c = width
        self.features = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x).mean(dim=(2, 3))

    def cells(self, x: Tensor) -> Tensor:
        """(B, H'*W', 512): the last feature map's cells, row-major, before pooling."""
        return self.features(x).flatten(2).transpose(1, 2)


def _projection(dim: int) -> nn.Module:
    return nn.Identity() if dim == ResNet18.out_dim else nn.Linear(ResNet18.out_dim, dim)


class FrameResNet(nn.Module):
    """Frames in [0, 1], (B, T, C, H, W) or (B, C, H, W): ImageNet-normalised, each frame
    through a shared ResNet-18, features averaged over time."""

    def __init__(self, spec: ModalitySpec, dim: int):
        super().__init__()
        channels = spec.shape[-1]
        self.resnet = ResNet18(channels)
        mean = IMAGENET_MEAN if channels == 3 else (0.5,)
        std = IMAGENET_STD if channels == 3 else (0.25,)
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        self.proj = _projection(dim)

    def forward(self, x: Tensor) -> Tensor:
        frames = x.flatten(0, 1) if x.dim() == 5 else x
        features = self.resnet((frames - self.mean) / self.std)
        if x.dim() == 5:
            features = features.view(x.shape[0], x.shape[1], -1).mean(1)
        return self.proj(features)

    def tokens(self, x: Tensor) -> Tensor:
        """Clips (B, T, C, H, W): (B, T, dim), one token per frame (its pooled feature);
        still images (B, C, H, W): (B, H/32 * W/32, dim), one per cell of the last map."""
        if x.dim() == 5:
            features = self.resnet((x.flatten(0, 1) - self.mean) / self.std)
            return self.proj(features.view(x.shape[0], x.shape[1], -1))
        return self.proj(self.resnet.cells((x - self.mean) / self.std))


class SpectrogramResNet(nn.Module):
    """Waveform -> log-mel spectrogram (settings from the dataset's encoder options) ->
    learned input normalisation -> 1-channel ResNet-18."""

    def __init__(self, spec: ModalitySpec, dim: int):
        super().__init__()
        assert spec.sample_rate is not None, "audio modalities need a sample rate"
        options = dict(spec.encoder_options)
        self.logmel = LogMel(spec.sample_rate, n_fft=options.get("n_fft", 512),
                             hop=options.get("hop", 160), n_mels=options.get("n_mels", 128))
        self.norm = nn.BatchNorm2d(1)
        self.resnet = ResNet18(1)
        self.proj = _projection(dim)

    def forward(self, wave: Tensor) -> Tensor:
        return self.proj(self.resnet(self.norm(self.logmel(wave))))

    def tokens(self, wave: Tensor) -> Tensor:
        """(B, mels/32 * frames/32, dim): time-frequency cells of the last map, mel-major
        (4 x 10 = 40 for 3 s at 16 kHz, 128 mels, hop 160)."""
        return self.proj(self.resnet.cells(self.norm(self.logmel(wave))))


encoders.register("resnet18_frames")(FrameResNet)
encoders.register("resnet18_audio")(SpectrogramResNet)
