"""LightNAS: ENAS search for light, accurate binary neural networks."""

__version__ = "0.1.0"
