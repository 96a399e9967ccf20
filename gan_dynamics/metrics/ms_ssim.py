"""MS-SSIM and the sample-diversity score built on it (Fedus et al. 2018, Sec. 5, Fig. 9a).

Multi-scale structural similarity (Wang, Simoncelli & Bovik 2003, "Multi-scale structural
similarity for image quality assessment"): at scales j = 1..M (the image halved by 2x2
averaging between scales) compare local statistics under a Gaussian window (11x11,
σ = 1.5; "valid" filtering, no padding),

    l = (2 μ_x μ_y + C1) / (μ_x² + μ_y² + C1),   cs = (2 σ_xy + C2) / (σ_x² + σ_y² + C2),

C1 = (0.01 L)², C2 = (0.03 L)² for dynamic range L, and combine the spatial means

    MS-SSIM = Π_{j<M} mean(cs_j)^{w_j} · mean(l_M cs_M)^{w_M},
    w = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333),

each mean clipped at 0 first (a negative mean to a fractional power is undefined).

Two forms (`form=`):

  "standard"  the definition above as `tf.image.ssim_multiscale` and
              `piq.multi_scale_ssim` compute it: per channel, then averaged over
              channels; odd sizes are padded before halving. The 11x11 window must fit
              the coarsest scale: min(H, W) > 10 · 2⁴ = 160 px, so it does not exist
              for the 16-64 px images of this project.
  "small"     the small-image form of TensorFlow's research `msssim.py` used by the
              progressive-GAN and Fedus et al. metrics: at every scale the window is
              min(11, H, W) pixels wide with σ scaled to 1.5 · size / 11 (at 1x1 it is
              the identity), the statistics are averaged over height, width and
              channels together, and halving drops an odd last row/column. Equal to
              "standard" for single-channel images of at least 176 px.

Images come in [-1, 1] and are compared in [0, 1] with L = 1 (SSIM is invariant to a
common rescaling of pixels and L, not to a shift). Computed in float64 numpy.

Diversity (Odena et al. 2017; Fedus et al.): the mean MS-SSIM of disjoint pairs of
samples (image 2i with image 2i+1); lower is more diverse. It is only meaningful next to
the same number for held-out real images: far above it means mode collapse, far below
means noise-like samples.
"""

from __future__ import annotations

import numpy as np

from gan_dynamics.errors import UserError

WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
FORMS = ("small", "standard")
FILTER_SIZE = 11
FILTER_SIGMA = 1.5
K1, K2 = 0.01, 0.03


def gaussian_window(size: int, sigma: float) -> np.ndarray:
    """The normalised 1-D Gaussian whose outer square is MATLAB's `fspecial('gaussian')`.

    Even sizes are centred between pixels (taps at ±0.5, ±1.5, ...).
    """
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x ** 2) / (2.0 * sigma ** 2))
    return g / g.sum()


def _filter_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable "valid" correlation of x (N, H, W, C) with g ⊗ g over H and W."""
    k = g.shape[0]
    h, w = x.shape[1] - k + 1, x.shape[2] - k + 1
    rows = sum(g[i] * x[:, i:i + h] for i in range(k))
    return sum(g[i] * rows[:, :, i:i + w] for i in range(k))


def _ssim_cs_maps(x: np.ndarray, y: np.ndarray, g: np.ndarray,
                  max_val: float) -> tuple[np.ndarray, np.ndarray]:
    """(l · cs, cs) maps of Wang et al. under window g ⊗ g, shapes (N, h, w, C)."""
    c1, c2 = (K1 * max_val) ** 2, (K2 * max_val) ** 2
    mu_x, mu_y = _filter_valid(x, g), _filter_valid(y, g)
    var_x = _filter_valid(x * x, g) - mu_x ** 2
    var_y = _filter_valid(y * y, g) - mu_y ** 2
    cov = _filter_valid(x * y, g) - mu_x * mu_y
    cs = (2.0 * cov + c2) / (var_x + var_y + c2)
    luminance = (2.0 * mu_x * mu_y + c1) / (mu_x ** 2 + mu_y ** 2 + c1)
    return luminance * cs, cs


def _halve(x: np.ndarray, pad_odd: bool) -> np.ndarray:
    """2x2 average pooling; an odd size is zero-padded on both sides as torch's
    `avg_pool2d(padding=size % 2)` does (pad_odd) or loses its last row/column."""
    if pad_odd:
        ph, pw = x.shape[1] % 2, x.shape[2] % 2
        if ph or pw:
            # avg_pool2d with padding p counts the zero padding: pad p each side, then
            # pool with a stride of 2 over the even part.
            x = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
            x = x[:, :x.shape[1] // 2 * 2, :x.shape[2] // 2 * 2]
    else:
        x = x[:, :x.shape[1] // 2 * 2, :x.shape[2] // 2 * 2]
    return 0.25 * (x[:, 0::2, 0::2] + x[:, 1::2, 0::2] + x[:, 0::2, 1::2] + x[:, 1::2, 1::2])


def ms_ssim(x: np.ndarray, y: np.ndarray, *, form: str = "small",
            max_val: float = 1.0, weights: tuple[float, ...] = WEIGHTS,
            from_unit_range: bool = True) -> np.ndarray:
    """MS-SSIM of each pair (x[i], y[i]): (N,) float64, 1 for identical images.

    Args:
      x, y: (N, H, W, C) images, in [-1, 1] (from_unit_range, the project's convention)
        or already in [0, max_val].
      form: "small" (windows shrink with the image) or "standard" (module docstring).
      max_val: the dynamic range L of the compared pixels.
      weights: the scale exponents w_j; their number is the number of scales.
    """
    if form not in FORMS:
        raise UserError(f"MS-SSIM form={form!r} is not one of {list(FORMS)}.")
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.shape != y.shape or x.ndim != 4:
        raise UserError(f"MS-SSIM needs two (N, H, W, C) batches of one shape; got "
                        f"{x.shape} and {y.shape}.")
    levels = len(weights)
    min_side = (FILTER_SIZE - 1) * 2 ** (levels - 1)
    if form == "standard" and min(x.shape[1:3]) <= min_side:
        raise UserError(f"The standard {levels}-scale MS-SSIM needs images larger than "
                        f"{min_side} px (the 11x11 window at the coarsest scale); got "
                        f"{x.shape[1]}x{x.shape[2]}. Use form='small' for small images.")
    if min(x.shape[1:3]) < 2 ** (levels - 1):
        raise UserError(f"MS-SSIM with {levels} scales halves the images {levels - 1} times: "
                        f"they need at least {2 ** (levels - 1)} px; got {x.shape[1]}x{x.shape[2]}.")
    if from_unit_range:
        x, y = (x + 1.0) * (max_val / 2.0), (y + 1.0) * (max_val / 2.0)
    per_channel = form == "standard"
    axes = (1, 2) if per_channel else (1, 2, 3)
    values = []  # per scale: mean cs (and l·cs at the last scale), (N,) or (N, C)
    for j in range(levels):
        size = min(FILTER_SIZE, x.shape[1], x.shape[2])
        g = gaussian_window(size, size * FILTER_SIGMA / FILTER_SIZE)
        ssim_map, cs_map = _ssim_cs_maps(x, y, g, max_val)
        last = j == levels - 1
        values.append(np.maximum((ssim_map if last else cs_map).mean(axis=axes), 0.0))
        if not last:
            x, y = _halve(x, per_channel), _halve(y, per_channel)
    w = np.asarray(weights, np.float64).reshape(-1, *([1] * values[0].ndim))
    score = np.prod(np.stack(values) ** w, axis=0)
    return score.mean(axis=-1) if per_channel else score


def mean_pairwise_ms_ssim(images: np.ndarray, *, form: str = "small",
                          batch_size: int = 500) -> float:
    """Diversity score: mean MS-SSIM of pairs (images[2i], images[2i+1]); lower = more
    diverse. Images (N, H, W, C) in [-1, 1], N >= 2 (an odd last image is unused)."""
    images = np.asarray(images)
    pairs = images.shape[0] // 2
    if pairs < 1:
        raise UserError(f"MS-SSIM diversity needs at least 2 images; got {images.shape[0]}.")
    total = 0.0
    for start in range(0, pairs, batch_size):
        stop = min(start + batch_size, pairs)
        a = images[2 * start:2 * stop:2]
        b = images[2 * start + 1:2 * stop:2]
        total += float(np.sum(ms_ssim(a, b, form=form)))
    return total / pairs
