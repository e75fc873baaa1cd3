"""fusionjax: multi-sensor data fusion and super-resolution of space data in JAX/Flax."""

__version__ = "0.1.0"
