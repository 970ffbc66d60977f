"""Corruptions that belong to another paper's evaluation protocol rather than to the
common corruption sets. Their specs (`SPECS`) have `protocol` set, so that a grid's
`corruptions: {visual: all}` never includes them; a grid asks for them by name or through
`mixed: {protocol: ...}`.

QMF (Zhang et al., ICML 2023) evaluates image-text models with a noisy-modality protocol:
each modality of each test sample is corrupted independently with probability 0.5; the
image gets additive Gaussian noise. Reference:
QingyangZhang/QMF@2569afbc2c40d6a9528cbcc7ef53c2727283092b:
text-image-classification/src/data/dataset.py (`AddGaussianNoise`, lines 125-150) and
text-image-classification/src/data/helpers.py (`get_GaussianNoisetransforms`, line 41:
`RandomApply([AddGaussianNoise(amplitude=rgb_severity * 10)], p=0.5)`, noise levels ε in
{5, 10}). The noise is `amplitude * np.random.normal(mean, scale=variance)` with the
default variance 1, so its standard deviation is 10·ε grey levels. One (H, W, 1) noise
field is drawn and repeated over the colour channels (the same noise on R, G and B), added
to the uint8 image, and the result cast back to uint8. Only the image side is QMF's: the
reference corrupts text, rambench's audio gets its own Gaussian noise at the same severity.

PDF (Cao et al., ICML 2024) ships the same Gaussian transform, but its released evaluation
(Yinan-Xia/PDF@864867426cde076fb3d0529d4df6b440d6963451:test_pdf.py lines 64-65) defaults
to salt-and-pepper noise (`--noise_type Salt`, `--noise 0.5`); this protocol is QMF's, not
PDF's default.

rambench's severity s is ε = 2.5·s, so the reference's two levels are severities 2
(ε = 5, std 50 grey levels) and 4 (ε = 10, std 100). Two quirks of the reference code are
not reproduced, on purpose:

* it calls `np.random.seed(0)` inside every call, so every image of the test set receives
  the identical noise field; here each sample draws its own field from its own seed (as
  every rambench corruption does);
* it clips only values above 255 and lets negative values wrap around in the uint8 cast
  (-3 becomes 253), turning dark pixels bright; here values are clipped to [0, 255] and
  then truncated to uint8 as the reference truncates.
"""

from __future__ import annotations

import numpy as np

from corruptions.scales import image_context
from corruptions.spec import Fidelity, Spec, TorchImpl, sample_by_sample, seed_draw

QMF_REFERENCE = ("QingyangZhang/QMF@2569afbc2c40d6a9528cbcc7ef53c2727283092b:"
                 "text-image-classification/src/data/dataset.py")
QMF_BACKEND = "rambench-qmf/1"


def qmf_epsilon(severity: int) -> float:
    """The QMF noise level ε of a severity: 2.5, 5, 7.5, 10, 12.5."""
    return 2.5 * severity


def qmf_gaussian_noise(sample: np.ndarray, severity: int, seed: int, **context) -> np.ndarray:
    """uint8 (H, W, C) -> uint8: + N(0, (10 ε)^2) grey levels, one field for all channels,
    clipped to [0, 255] and truncated. Draws from numpy's MT19937 seeded with `seed`."""
    h, w, c = sample.shape
    noise = np.random.RandomState(seed).normal(0.0, 10 * qmf_epsilon(severity), (h, w, 1))
    noisy = sample.astype(np.float64) + np.repeat(noise, c, axis=2)
    return np.clip(noisy, 0, 255).astype(np.uint8)


SPECS: tuple[Spec, ...] = (Spec(
    name="qmf_gaussian_noise", kind="image", family="noise", backend=QMF_BACKEND,
    draw=seed_draw, apply=sample_by_sample(qmf_gaussian_noise), prepare=image_context,
    reference=qmf_gaussian_noise,
    randomness="seed: the noise field is drawn from numpy's MT19937 seeded with it; the torch "
               "port from a torch.Generator seeded with it",
    severity_table=tuple(f"ε={qmf_epsilon(s):g}: std {10 * qmf_epsilon(s):g} grey levels, "
                         "same on every channel" for s in range(1, 6)),
    protocol="qmf",
    torch=TorchImpl("corruptions.torch_image", "qmf_gaussian_noise", Fidelity.SAME_ALGORITHM)),)
