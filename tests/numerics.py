"""Comparing what models compute, as far as float32 arithmetic makes it the same."""

import numpy as np


def assert_same_probabilities(actual, expected) -> None:
    """Equal up to float32 rounding. The same images in batches of another size may take other
    kernels (on CPUs with AVX-512, for one), which changes the last bits and nothing more: a
    wrong decode, preprocessing or restored weight is off by far more than this."""
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)
