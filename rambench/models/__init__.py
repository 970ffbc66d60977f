from rambench.models import resnet  # noqa: F401  (registers the ResNet-18 encoders)
from rambench.models.encoders import encoders

__all__ = ["encoders"]
