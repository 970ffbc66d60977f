"""Baseline methods, one file each; importing this package registers them."""

from baselines import late_fusion, unimodal  # noqa: F401
