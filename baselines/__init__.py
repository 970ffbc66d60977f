"""Baseline methods and test-time adaptations, one file each; importing this package
registers them."""

from baselines import (  # noqa: F401
    augmix,
    consistency,
    corrupt_aug,
    etmc,
    late_fusion,
    md,
    moddrop,
    ogm_ge,
    pdf,
    qmf,
    read,
    reconstruct,
    shaspec,
    tent,
    tmc,
    unimodal,
)
