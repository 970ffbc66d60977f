"""Baseline methods, one file each; importing this package registers them."""

from baselines import (  # noqa: F401
    augmix,
    consistency,
    corrupt_aug,
    late_fusion,
    moddrop,
    ogm_ge,
    pdf,
    qmf,
    reconstruct,
    tmc,
    unimodal,
)
