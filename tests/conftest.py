"""Test setup: 8 fake CPU devices (sharding tests), float64 on request.

The device count must be set before JAX's backend starts, hence at import here.
Tests that compare with closed forms take the `x64` fixture.
"""

import jax
import pytest

jax.config.update("jax_num_cpu_devices", 8)


@pytest.fixture
def x64():
    """Run the test in float64."""
    with jax.enable_x64(True):
        yield
