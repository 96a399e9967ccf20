"""The clean resize against PIL and clean-fid's resize; the 8-bit quantisation; the modes."""

import numpy as np
import pytest
from PIL import Image

from gan_dynamics.metrics import resize
from tests import torch_references

# Upsampling (the 16-64 px images here), non-square, and downsampling (antialiased).
SHAPES = [(32, 32), (28, 40), (320, 400)]


def _uint8_images(h, w, seed, n=2):
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w, 3), dtype=np.uint8)


def _pil_bicubic(channel: np.ndarray, size: int) -> np.ndarray:
    """PIL's float ('F' mode) bicubic resize of one channel, as clean-fid calls it."""
    image = Image.fromarray(channel.astype(np.float32))
    return np.asarray(image.resize((size, size), resample=Image.BICUBIC))


@pytest.mark.parametrize("h,w", SHAPES)
def test_clean_resize_equals_pil(h, w):
    images = _uint8_images(h, w, seed=h)
    got = np.asarray(resize.clean_resize_levels(images.astype(np.float32), 299))
    want = np.stack([np.stack([_pil_bicubic(img[..., c], 299) for c in range(3)], -1)
                     for img in images]).clip(0, 255)
    # float32 weights and sums against PIL's double ones: a few float32 ulps of 255.
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-4)


@pytest.mark.parametrize("h,w", SHAPES)
def test_clean_resize_equals_clean_fid(h, w):
    cleanfid_resize = torch_references.clean_fid("resize")
    fn = cleanfid_resize.build_resizer("clean")  # PIL, bicubic, float, to (299, 299)
    images = _uint8_images(h, w, seed=w)
    want = np.stack([fn(img) for img in images])
    got = np.asarray(resize.clean_resize_levels(images.astype(np.float32), 299))
    assert want.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-4)


def test_weights_sum_to_one_and_identity_at_equal_size():
    for n_in, n_out in ((16, 299), (400, 299), (299, 299), (3, 7)):
        w = resize.pil_bicubic_matrix(n_in, n_out)
        np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(resize.pil_bicubic_matrix(299, 299), np.eye(299))


def test_quantize_recovers_the_dataset_bytes():
    levels = np.arange(256, dtype=np.uint8)
    images = (levels.astype(np.float32) / 127.5 - 1.0).reshape(1, 16, 16, 1)  # data.images' map
    np.testing.assert_array_equal(np.asarray(resize.quantize(images)).ravel(), levels)
    out = np.asarray(resize.quantize(np.array([-2.0, 1.5, -1 + 0.5 / 127.5])))
    np.testing.assert_array_equal(out, [0, 255, 1])  # clipped; a half level rounds up


def test_modes_give_the_network_input():
    images = np.random.default_rng(0).uniform(-1, 1, size=(2, 20, 24, 3)).astype(np.float32)
    clean = np.asarray(resize.resize(images, 299, "clean"))
    levels = np.asarray(resize.clean_resize_levels(resize.quantize(images), 299))
    np.testing.assert_allclose(clean, (levels - 128) / 128, atol=1e-6)  # clean-fid's normalisation
    bilinear = np.asarray(resize.resize(images, 299, "pytorch_fid"))
    assert bilinear.shape == clean.shape == (2, 299, 299, 3)
    assert np.abs(clean - bilinear).max() > 1e-3  # two different resizes
    same = np.asarray(resize.resize(images[:, :16, :16], 16, "pytorch_fid"))
    np.testing.assert_array_equal(same, images[:, :16, :16])
    with pytest.raises(ValueError, match="pytorch_fid"):
        resize.resize(images, 299, "bicubic")
