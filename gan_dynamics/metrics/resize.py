"""The resizes that bring images to the Inception's 299x299 input: pytorch-fid's and clean-fid's.

FID and the scores built on the same features depend on how the images are resized
(Parmar et al. 2022, "On Aliased Resizing and Surprising Subtleties in GAN Evaluation":
the same images score differently under different libraries' resizes). Two modes,
chosen per evaluation and recorded beside every score:

- "pytorch_fid": pytorch-fid's `F.interpolate(x, (299, 299), mode="bilinear",
  align_corners=False)` on the float images. Without antialiasing, a downsampling resize
  skips pixels. On images in [-1, 1] it is the same map as pytorch-fid's on [0, 1]
  followed by 2y - 1 (the weights per output pixel sum to 1).
- "clean": clean-fid's "clean" mode (Parmar et al.'s library): the images are quantised to
  8 bits (what a saved PNG holds), each channel is resized by PIL's bicubic filter with
  antialiasing (`Image.resize(..., Image.BICUBIC)` on a mode-"F" float image), clipped to
  [0, 255] and normalised as clean-fid's network normalises, (y - 128) / 128: the first
  operation of the 2015 TensorFlow Inception graph, whose weights both libraries port.
  (pytorch-fid normalises by 2 y / 255 - 1 instead, which "pytorch_fid" keeps.)

Both resizes are separable: each is a product of one (out, in) matrix per image axis,
built here in numpy and applied by two matrix products (in float32 at the highest
precision, so that accelerators compute what a CPU computes).

PIL's filter (Pillow's `Resample.c`, `precompute_coeffs`): output pixel i of n_out from
n_in centres at c = (i + 1/2) s with s = n_in / n_out; the filter is the bicubic
convolution kernel with a = -1/2 (Keys 1981), widened by f = max(s, 1) (the
antialiasing: a downsampling filter covers every input pixel), taps from
trunc(c - 2f + 1/2) to trunc(c + 2f + 1/2) clamped to the image, weights
k((j - c + 1/2) / f) normalised to sum to 1. PIL resizes along the width first and
stores that pass in float32, then along the height; so does `clean_resize_levels`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

MODES = ("pytorch_fid", "clean")


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"Unknown resize {mode!r}; choose from {list(MODES)}.")
    return mode


# ----------------------------------------------------------------- pytorch-fid's bilinear


def bilinear_matrix(in_size: int, out_size: int) -> np.ndarray:
    """(out, in) weights of torch's bilinear resize along one axis, align_corners=False.

    Output pixel d reads source coordinate (d + 0.5)·in/out - 0.5, clamped below at 0;
    it mixes pixels floor(src) and floor(src) + 1 (the last pixel twice at the far edge).
    The coordinate is rounded as torch's float32 kernel rounds it (a float32 scale, one
    fused multiply-add, rounded to float32): the weights then agree to float32 rounding.
    """
    f32 = np.float32
    scale = np.float64(f32(in_size) / f32(out_size))
    src = np.maximum((scale * (np.arange(out_size) + 0.5) - 0.5).astype(f32), f32(0))
    low = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    high = np.minimum(low + 1, in_size - 1)
    frac = (src - low.astype(f32)).astype(np.float64)
    weights = np.zeros((out_size, in_size))
    np.add.at(weights, (np.arange(out_size), low), 1.0 - frac)
    np.add.at(weights, (np.arange(out_size), high), frac)
    return weights.astype(np.float32)


# ------------------------------------------------------------------- PIL's bicubic (clean)


def _bicubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -1/2 (PIL's `bicubic_filter`), support 2."""
    a = -0.5
    x = np.abs(x)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


def pil_bicubic_matrix(in_size: int, out_size: int) -> np.ndarray:
    """(out, in) float64 weights of PIL's antialiased bicubic resize along one axis."""
    if in_size < 1 or out_size < 1:
        raise ValueError(f"Sizes must be positive; got {in_size} -> {out_size}.")
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 2.0 * filterscale
    weights = np.zeros((out_size, in_size))
    for i in range(out_size):
        centre = (i + 0.5) * scale
        # C's (int) cast truncates toward zero; the bounds are then clamped to the image.
        lo = max(int(centre - support + 0.5), 0)
        hi = min(int(centre + support + 0.5), in_size)
        w = _bicubic((np.arange(lo, hi) - centre + 0.5) / filterscale)
        total = w.sum()
        weights[i, lo:hi] = w / total if total != 0.0 else w
    return weights


def quantize(images: jax.Array) -> jax.Array:
    """Images in [-1, 1] -> their 8-bit levels 0..255 (as float32): round((x + 1)·127.5).

    Halves round up, as `uint8(x·127.5 + 128)` of the StyleGAN image writers; a dataset
    image that came from uint8 by u / 127.5 - 1 gets its u back exactly.
    """
    return jnp.clip(jnp.floor((images.astype(jnp.float32) + 1.0) * 127.5 + 0.5), 0.0, 255.0)


def clean_resize_levels(levels: jax.Array, size: int) -> jax.Array:
    """8-bit levels (B, H, W, C) -> (B, size, size, C) by PIL's bicubic, clipped to [0, 255].

    The value clean-fid's resize (`make_resizer("PIL", False, "bicubic", (size, size))`)
    gives for each channel of uint8 images: width first (stored in float32), then height.
    """
    _, h, w, _ = levels.shape
    x = levels.astype(jnp.float32)
    if w != size:
        cols = jnp.asarray(pil_bicubic_matrix(w, size), jnp.float32)
        x = jnp.einsum("xw,bhwc->bhxc", cols, x, precision=lax.Precision.HIGHEST)
    if h != size:
        rows = jnp.asarray(pil_bicubic_matrix(h, size), jnp.float32)
        x = jnp.einsum("yh,bhxc->byxc", rows, x, precision=lax.Precision.HIGHEST)
    return jnp.clip(x, 0.0, 255.0)


# ------------------------------------------------------------------------------ the modes


def resize(images: jax.Array, size: int, mode: str = "pytorch_fid") -> jax.Array:
    """Images (B, H, W, C) in [-1, 1] -> the network's input (B, size, size, C) by `mode`.

    "pytorch_fid" leaves images of the right size as they are; "clean" quantises them
    even then (the input is their 8-bit values, normalised).
    """
    check_mode(mode)
    _, h, w, _ = images.shape
    if mode == "clean":
        return (clean_resize_levels(quantize(images), size) - 128.0) / 128.0
    x = images.astype(jnp.float32)
    if (h, w) == (size, size):
        return x
    rows = jnp.asarray(bilinear_matrix(h, size))
    cols = jnp.asarray(bilinear_matrix(w, size))
    x = jnp.einsum("yh,bhwc->bywc", rows, x, precision=lax.Precision.HIGHEST)
    return jnp.einsum("xw,bywc->byxc", cols, x, precision=lax.Precision.HIGHEST)
