"""MS-SSIM: the standard form against piq, the small-image form against a direct reference."""

import importlib.util
import sys
import types

import numpy as np
import pytest
from scipy import ndimage, signal

from gan_dynamics.errors import UserError
from gan_dynamics.metrics import ms_ssim

WEIGHTS = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])


def _smooth_pairs(n, size, channels, seed):
    """Pairs of related, image-like arrays in [-1, 1]: a smooth random field and a noisy,
    shifted copy, so MS-SSIM lands between 0 and 1 at every scale."""
    rng = np.random.default_rng(seed)
    field = ndimage.uniform_filter(rng.normal(size=(n, size + 8, size + 8, channels)),
                                   size=(1, 5, 5, 1))
    x = np.tanh(field[:, 4:-4, 4:-4])
    y = np.clip(np.tanh(field[:, 5:size + 5, 3:size + 3])
                + 0.1 * rng.normal(size=x.shape), -1, 1)
    return x, y


def _reference_small_form(img1, img2):
    """The small-image MS-SSIM written out plainly: images in [0, 255], one pair at a time,
    the 2-D fspecial window, scipy's 2-D valid convolution, every channel separately."""

    def fspecial(size, sigma):
        r = np.arange(size) - (size - 1) / 2
        xx, yy = np.meshgrid(r, r, indexing="ij")
        g = np.exp(-(xx ** 2 + yy ** 2) / (2 * sigma ** 2))
        return g / g.sum()

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    a, b = img1.astype(np.float64), img2.astype(np.float64)
    ssims, css = [], []
    for level in range(5):
        h, w = a.shape[:2]
        size = min(11, h, w)
        win = fspecial(size, size * 1.5 / 11)
        ssim_maps, cs_maps = [], []
        for c in range(a.shape[2]):
            f = lambda img: signal.convolve2d(img, win[::-1, ::-1], mode="valid")
            mu1, mu2 = f(a[..., c]), f(b[..., c])
            s11 = f(a[..., c] ** 2) - mu1 ** 2
            s22 = f(b[..., c] ** 2) - mu2 ** 2
            s12 = f(a[..., c] * b[..., c]) - mu1 * mu2
            cs = (2 * s12 + c2) / (s11 + s22 + c2)
            ssim_maps.append((2 * mu1 * mu2 + c1) / (mu1 ** 2 + mu2 ** 2 + c1) * cs)
            cs_maps.append(cs)
        ssims.append(max(np.mean(ssim_maps), 0.0))
        css.append(max(np.mean(cs_maps), 0.0))
        if level < 4:
            down = lambda img: np.array([[img[2 * i:2 * i + 2, 2 * j:2 * j + 2].mean(axis=(0, 1))
                                          for j in range(img.shape[1] // 2)]
                                         for i in range(img.shape[0] // 2)])
            a, b = down(a), down(b)
    return np.prod(np.array(css[:4]) ** WEIGHTS[:4]) * ssims[4] ** WEIGHTS[4]


@pytest.mark.parametrize("size,channels", [(32, 1), (32, 3), (64, 3), (21, 1)])
def test_small_form_matches_direct_reference(size, channels):
    x, y = _smooth_pairs(3, size, channels, seed=size + channels)
    got = ms_ssim.ms_ssim(x, y, form="small")
    want = [_reference_small_form((a + 1) * 127.5, (b + 1) * 127.5) for a, b in zip(x, y)]
    assert 0.05 < min(want) and max(want) < 0.99  # a comparison away from the clip and 1
    np.testing.assert_allclose(got, want, rtol=1e-10)


def _multi_scale_ssim_of_piq():
    """piq.multi_scale_ssim, or skip. piq's package __init__ imports torchvision models;
    a torchvision that does not match the installed torch fails there, so on failure the
    ms_ssim module is loaded under an empty `piq` package."""
    pytest.importorskip("torch")
    if "piq.ms_ssim" in sys.modules:  # loaded by an earlier test
        return sys.modules["piq.ms_ssim"].multi_scale_ssim
    spec = importlib.util.find_spec("piq")
    if spec is None:
        pytest.skip("piq is not installed (pip install --no-deps piq)")
    try:
        import piq

        return piq.multi_scale_ssim
    except Exception:
        for name in [m for m in sys.modules if m == "piq" or m.startswith("piq.")]:
            del sys.modules[name]
        package = types.ModuleType("piq")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["piq"] = package
        from piq.ms_ssim import multi_scale_ssim

        return multi_scale_ssim


@pytest.mark.slow  # torch's import and float64 convolutions: ~30 s on a loaded 2-core CPU
@pytest.mark.parametrize("size,channels", [(176, 1), (192, 3)])
def test_standard_form_matches_piq(size, channels):
    multi_scale_ssim = _multi_scale_ssim_of_piq()
    import torch

    x, y = _smooth_pairs(2, size, channels, seed=size)
    ours = ms_ssim.ms_ssim(x, y, form="standard")
    to_torch = lambda a: torch.tensor((a + 1) / 2, dtype=torch.float64).permute(0, 3, 1, 2)
    theirs = multi_scale_ssim(to_torch(x), to_torch(y), data_range=1.0, reduction="none")
    np.testing.assert_allclose(ours, theirs.numpy(), atol=1e-5)
    assert np.all(np.abs(ours - 1) > 1e-3)  # a nontrivial comparison
    if channels == 1:  # the two forms agree for one channel at >= 176 px
        np.testing.assert_allclose(ms_ssim.ms_ssim(x, y, form="small"), ours, rtol=1e-12)


@pytest.mark.parametrize("form,size", [("small", 16), ("small", 64), ("standard", 176)])
def test_identical_images_score_one(form, size):
    x, _ = _smooth_pairs(2, size, 3, seed=0)
    np.testing.assert_allclose(ms_ssim.ms_ssim(x, x, form=form), 1.0, atol=1e-12)


def test_standard_form_refuses_small_images():
    x, y = _smooth_pairs(1, 64, 1, seed=0)
    with pytest.raises(UserError, match="larger than 160 px"):
        ms_ssim.ms_ssim(x, y, form="standard")
    with pytest.raises(UserError, match="at least 16 px; got 8x8"):
        ms_ssim.ms_ssim(x[:, :8, :8], y[:, :8, :8])
    with pytest.raises(UserError, match="form='oops'"):
        ms_ssim.ms_ssim(x, y, form="oops")


def test_diversity_orders_collapse_data_and_noise():
    # Pairs of one repeated image score 1 (collapse); related images in between; independent
    # noise near 0 (most diverse).
    x, y = _smooth_pairs(8, 32, 1, seed=3)
    collapsed = np.repeat(x[:1], 16, axis=0)
    related = np.stack([x, y], axis=1).reshape(16, 32, 32, 1)
    noise = np.random.default_rng(0).uniform(-1, 1, (16, 32, 32, 1))
    scores = [ms_ssim.mean_pairwise_ms_ssim(a) for a in (collapsed, related, noise)]
    assert scores[0] == pytest.approx(1.0)
    assert 0.9 > scores[1] > scores[2] + 0.2 and abs(scores[2]) < 0.1
    # The mean is over disjoint pairs (2i, 2i+1), batched or not.
    np.testing.assert_allclose(ms_ssim.mean_pairwise_ms_ssim(related, batch_size=3),
                               ms_ssim.ms_ssim(x, y).mean(), rtol=1e-12)
