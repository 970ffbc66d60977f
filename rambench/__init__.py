"""rambench: robustness benchmarking for multimodal learning."""

__version__ = "0.1.0"
