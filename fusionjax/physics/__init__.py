"""Differentiable forward models of the instruments: PSFs, sampling, spectral responses, noise."""
