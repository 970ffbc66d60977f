from rambench.models.encoders import encoders

__all__ = ["encoders"]
