"""rambench: robustness benchmarking for multimodal learning.

    import rambench
    results = rambench.benchmark("raml", dataset="avdigits", grid="smoke")
"""

from rambench._version import __version__

__all__ = ["benchmark", "load", "__version__"]


def __getattr__(name: str):
    # The API imports torch; `import rambench` alone (e.g. for the version) stays light.
    if name in ("benchmark", "load"):
        from rambench import api

        return getattr(api, name)
    raise AttributeError(f"module 'rambench' has no attribute {name!r}")
