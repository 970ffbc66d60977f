"""Baseline methods, one file each; importing this package registers them."""

from baselines import late_fusion, ogm_ge, pdf, qmf, tmc, unimodal  # noqa: F401
