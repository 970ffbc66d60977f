"""rambench's version: a leaf module, so that provenance can read it from below."""

__version__ = "0.1.0"
