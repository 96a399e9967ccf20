"""Numerics of the metric networks that do not depend on the accelerator.

GPUs and TPUs compute float32 matrix products and convolutions at reduced precision
unless told otherwise (TF32 on NVIDIA GPUs since Ampere, bfloat16 passes on TPUs); a
feature network run that way gives features, and FID, KID, precision and recall from
them, that differ by accelerator. The metric networks (the FID Inception, the dataset
classifiers) are therefore traced under `jax.default_matmul_precision("highest")`:
full float32 everywhere. CPUs compute float32 in full already, so CPU results are
unchanged. The scores' reductions then run in float64 numpy on the host (`scores`,
`kid`, `manifold`).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax


def highest_precision(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn`, traced under `jax.default_matmul_precision("highest")`: every convolution and
    matrix product in it without an explicit precision runs in full float32 (jit it after
    wrapping; the precision is fixed when the function is traced)."""

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with jax.default_matmul_precision("highest"):
            return fn(*args, **kwargs)

    return wrapped
