"""The Flax FID Inception against pytorch-fid's torch model (random weights, no download).

Skipped unless torch, torchvision and pytorch_fid import. torchvision's wheel may come
without compiled ops for the installed torch (`pip install --no-deps`); pytorch-fid needs
only its model classes, so the two op schemas that torchvision registers fake kernels for
at import are defined first when they are missing.
"""


import numpy as np
import pytest

torch = pytest.importorskip("torch")


def _import_pytorch_fid():
    from gan_dynamics.metrics import convert_inception

    if not convert_inception.prepare_torchvision():
        pytest.skip("torchvision is not installed", allow_module_level=True)
    return pytest.importorskip("pytorch_fid.inception"), pytest.importorskip("pytorch_fid.fid_score")


pfid_inception, pfid_score = _import_pytorch_fid()

import jax  # noqa: E402  (after the torch imports: torch first keeps its threads sane)

from gan_dynamics import parallel  # noqa: E402
from gan_dynamics.errors import UserError  # noqa: E402
from gan_dynamics.metrics import convert_inception, gaussian, inception, scores  # noqa: E402
from gan_dynamics.models import layers  # noqa: E402


def _random_fid_inception(monkeypatch, seed=0):
    """pytorch-fid's `fid_inception_v3()` and `InceptionV3([3])` with random weights.

    The weight download is replaced by the model's own (random) state. Batch-norm
    statistics are first set to a calibration batch's (so activations keep their scale
    through 94 layers), then perturbed: random means, positive variances, γ and β.
    """
    torch.manual_seed(seed)
    original_load = torch.nn.Module.load_state_dict
    monkeypatch.setattr(pfid_inception, "load_state_dict_from_url", lambda *a, **k: None)
    with monkeypatch.context() as m:
        m.setattr(torch.nn.Module, "load_state_dict",
                  lambda self, state, *a, **k: original_load(self, self.state_dict(), *a, **k))
        net = pfid_inception.fid_inception_v3()
    monkeypatch.setattr(pfid_inception, "fid_inception_v3", lambda: net)
    wrapper = pfid_inception.InceptionV3([3])  # its resize, normalisation and blocks
    bns = [mod for mod in net.modules() if isinstance(mod, torch.nn.BatchNorm2d)]
    assert len(bns) == 94 and all(bn.eps == 1e-3 for bn in bns)
    with torch.no_grad():
        for bn in bns:
            bn.momentum = None  # cumulative average: one batch sets the statistics
        wrapper.train()(torch.rand(4, 3, 32, 32))
        g = torch.Generator().manual_seed(seed + 1)
        for bn in bns:
            c = bn.num_features
            bn.running_mean += 0.2 * torch.randn(c, generator=g) * bn.running_var.sqrt()
            bn.running_var *= 0.5 + torch.rand(c, generator=g)
            bn.weight.copy_(0.5 + torch.rand(c, generator=g))
            bn.bias.copy_(0.1 * torch.randn(c, generator=g))
        net.fc.bias.copy_(torch.randn(1008, generator=g))
    return net.eval(), wrapper.eval()


def _rel_err(got, want):
    return float(np.max(np.abs(np.asarray(got, np.float64) - want)) / np.max(np.abs(want)))


@pytest.fixture(scope="module")
def reference():
    """(our extractor outputs, torch outputs) on 8 random 32x32 images, computed once."""
    mp = pytest.MonkeyPatch()
    try:
        net, wrapper = _random_fid_inception(mp)
        rng = np.random.default_rng(0)
        images = rng.uniform(-1, 1, size=(8, 32, 32, 3)).astype(np.float32)
        with torch.no_grad():
            x = torch.from_numpy((images.transpose(0, 3, 1, 2) + 1) / 2)  # [0, 1], NCHW
            pool3 = wrapper(x)[0].flatten(1)
            want = {"pool3": pool3.numpy().astype(np.float64),
                    "logits": net.fc(pool3).numpy().astype(np.float64),
                    "logits_no_bias": (pool3 @ net.fc.weight.T).numpy().astype(np.float64)}
        state = net.state_dict()
    finally:
        mp.undo()
    return images, state, want


def _converted(tmp_path, state):
    path = str(tmp_path / "inception.npz")
    convert_inception.save_npz(state, path)
    return path


@pytest.mark.slow
def test_features_and_logits_equal_pytorch_fid(reference, tmp_path):
    images, state, want = reference
    path = _converted(tmp_path, state)
    mesh = parallel.make_mesh()  # 8 devices: one image each
    pool3, logits = inception.make_extractor(inception.load_params(path), mesh)(images)
    assert pool3.shape == (8, 2048) and logits.shape == (8, 1008)
    assert isinstance(pool3, np.ndarray)  # whole, on the host, in every process
    err_pool3 = _rel_err(pool3, want["pool3"])
    err_logits = _rel_err(logits, want["logits_no_bias"])
    print(f"max relative error: pool3 {err_pool3:.2e}, logits {err_logits:.2e}")
    assert err_pool3 < 1e-4 and err_logits < 1e-4
    # FID between the features of the first and last 4 images: rank 3 in 2048 dimensions,
    # where pytorch-fid's sqrtm of Σ_1Σ_2 fails (an imaginary component); ours equals the
    # exact value from the covariance factors (`gaussian.frechet_distance_sq`).
    halves = [np.asarray(pool3, np.float64)[s] for s in (slice(0, 4), slice(4, 8))]
    fid = scores.frechet_distance(*scores.gaussian_statistics(halves[0]),
                                  *scores.gaussian_statistics(halves[1]))
    torch_halves = [want["pool3"][s] for s in (slice(0, 4), slice(4, 8))]
    with jax.enable_x64(True):
        exact = float(gaussian.frechet_distance_sq(
            *[a for h in torch_halves for a in (h.mean(0), (h - h.mean(0)).T / np.sqrt(3))]))
    print(f"rank-deficient FID: ours {fid:.8g}, exact on torch's features {exact:.8g}")
    np.testing.assert_allclose(fid, exact, rtol=1e-5)
    # The with-bias switch: pytorch-fid's (torchvision's) fc layer.
    params = inception.load_params(path, logits_with_bias=True)
    _, logits_b = inception.make_extractor(params, mesh, logits_with_bias=True)(images)
    assert _rel_err(logits_b, want["logits"]) < 1e-4


@pytest.mark.slow
def test_im2col_convolutions_give_the_same_features(reference, tmp_path):
    images, state, want = reference
    params = inception.load_params(_converted(tmp_path, state))
    pool3, _ = inception.make_extractor(params, parallel.make_mesh(2), conv=layers.conv)(images)
    assert _rel_err(pool3, want["pool3"]) < 1e-4


@pytest.mark.slow
def test_grayscale_is_repeated_to_rgb(reference, tmp_path):
    _, state, _ = reference
    params = inception.load_params(_converted(tmp_path, state))
    gray = np.random.default_rng(1).uniform(-1, 1, size=(2, 28, 28, 1)).astype(np.float32)
    extract = inception.make_extractor(params, parallel.make_mesh(2))
    from_gray, from_rgb = extract(gray)[0], extract(np.repeat(gray, 3, -1))[0]
    assert _rel_err(from_gray, np.asarray(from_rgb, np.float64)) < 1e-5  # rounding only


def test_preprocess_equals_torch_interpolate():
    rng = np.random.default_rng(2)
    for h, w in ((32, 32), (28, 40), (320, 301)):
        images = rng.uniform(-1, 1, size=(2, h, w, 3)).astype(np.float32)
        x = torch.from_numpy((images.transpose(0, 3, 1, 2) + 1) / 2)
        want = 2 * torch.nn.functional.interpolate(x, size=(299, 299), mode="bilinear",
                                                   align_corners=False) - 1
        got = np.asarray(inception.preprocess(images)).transpose(0, 3, 1, 2)
        np.testing.assert_allclose(got, want.numpy(), atol=2e-6)


def test_pools_equal_torch():
    x = np.random.default_rng(3).normal(size=(2, 9, 8, 5)).astype(np.float32)
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2))
    f = torch.nn.functional
    pairs = [
        (inception.avg_pool_excluding_padding(x),
         f.avg_pool2d(xt, 3, stride=1, padding=1, count_include_pad=False)),
        (inception.max_pool(x, 1, padding=1), f.max_pool2d(xt, 3, stride=1, padding=1)),
        (inception.max_pool(x, 2), f.max_pool2d(xt, 3, stride=2)),
    ]
    for got, want in pairs:
        np.testing.assert_allclose(np.asarray(got).transpose(0, 3, 1, 2), want.numpy(),
                                   rtol=1e-6, atol=1e-6)


def _features(n, d, seed):
    rng = np.random.default_rng(seed)
    return np.abs(rng.normal(size=(n, d))) * rng.uniform(0.1, 1.0, size=d)


@pytest.mark.parametrize("n1,n2,d", [(300, 400, 64), (40, 50, 128)])  # full rank, rank-deficient
def test_frechet_distance_equals_pytorch_fid(n1, n2, d):
    mu1, s1 = scores.gaussian_statistics(_features(n1, d, 0))
    mu2, s2 = scores.gaussian_statistics(_features(n2, d, 1) * 1.3)
    np.testing.assert_allclose(mu1, np.mean(_features(n1, d, 0), axis=0), rtol=1e-12)
    np.testing.assert_allclose(s1, np.cov(_features(n1, d, 0), rowvar=False), rtol=1e-9,
                               atol=1e-12)
    want = pfid_score.calculate_frechet_distance(mu1, s1, mu2, s2)
    np.testing.assert_allclose(scores.frechet_distance(mu1, s1, mu2, s2), want, rtol=1e-6)


def test_missing_weights_message_names_url_and_command(tmp_path):
    path = str(tmp_path / "absent.npz")
    with pytest.raises(UserError) as info:
        inception.load_params(path)
    message = str(info.value)
    assert inception.WEIGHTS_URL in message
    assert f"python -m gan_dynamics.metrics.convert_inception {inception.WEIGHTS_NAME}.pth {path}" in message


def test_converter_rejects_a_state_dict_of_another_network(tmp_path):
    with pytest.raises(UserError, match="do not fit the FID Inception"):
        convert_inception.save_npz({"fc.weight": torch.zeros(3, 2)}, str(tmp_path / "x.npz"))


@pytest.mark.slow
def test_convert_command_writes_the_npz_load_params_reads(reference, tmp_path, capsys):
    _, state, _ = reference
    pth, npz = str(tmp_path / "weights.pth"), str(tmp_path / "out" / "weights.npz")
    torch.save(state, pth)
    assert convert_inception.main([pth, npz]) == 0
    assert npz in capsys.readouterr().out
    params = inception.load_params(npz)
    expected = inception.params_from_state_dict(convert_inception.state_dict_to_numpy(state))
    jax.tree.map(np.testing.assert_array_equal, params, expected)
    assert convert_inception.main([str(tmp_path / "absent.pth"), npz]) == 2
    assert inception.WEIGHTS_URL in capsys.readouterr().err
