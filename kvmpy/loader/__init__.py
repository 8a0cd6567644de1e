"""Put a guest image into guest RAM and say where and in which CPU mode to start it."""

from .bootimage import BootImage
from .image import load_image

__all__ = ["BootImage", "load_image"]
