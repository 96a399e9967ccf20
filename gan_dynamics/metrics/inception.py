"""The Inception-v3 of FID and the Inception Score, in Flax, with pytorch-fid's weights.

The network is the 2015 TensorFlow Inception graph (inception-2015-12-05) that the
original Inception Score code (Salimans et al. 2016) and FID code (Heusel et al. 2017)
load, in the form pytorch-fid calls `fid_inception_v3`: torchvision's Inception-v3 layout
(Szegedy et al. 2016, "Rethinking the Inception Architecture", Fig. 5-7 and Table 1)
with 1008 logits, no auxiliary head, and the TF graph's differences patched in:

- the average pools of the A, C and first E blocks (Mixed_5b-d, 6b-e, 7b) do not count
  the zero padding in the average (`count_include_pad=False`, as TF's avg_pool);
- the last E block (Mixed_7c) pools its fourth branch with a 3x3 max pool, not average.

Every convolution is conv (no bias) -> batch norm (inference mode, eps 0.001) -> ReLU.
Batch norm in inference mode is an affine map per channel, so `load_params` folds it into
the convolution: kernel · γ/sqrt(var + eps) and bias β - mean · γ/sqrt(var + eps).

Input path (pytorch-fid's `InceptionV3` with resize_input and normalize_input): images in
[0, 1] are resized bilinearly to 299x299 without corner alignment (`F.interpolate(...,
mode="bilinear", align_corners=False)`), then mapped to [-1, 1] by 2x - 1. Our generators
and datasets give images in [-1, 1]; x ↦ (x + 1)/2, the resize and y ↦ 2y - 1 compose
to the resize alone (its weights per output pixel sum to 1), which is what runs here, as
two matrix products with torch's interpolation weights (`resize.py`'s "pytorch_fid").
The alternative, clean-fid's 8-bit PIL-bicubic resize and normalisation, is
`make_extractor(..., resize="clean")`. Grayscale images are repeated to three channels.

Precision: the extractor traces the network at the highest matmul precision
(`numerics.highest_precision`): full float32 convolutions and matrix products on GPUs
and TPUs as on CPUs, so that the features do not depend on the accelerator.

Outputs: the pool3 features (2048, the global average pool before the classifier: FID's
features) and the 1008 logits. By default the logits are pool3 @ W without the final
layer's bias, as the original Inception Score code computes them (it reads the weight
of `softmax/logits/MatMul` and multiplies by pool_3); `logits_with_bias=True` adds the
bias (pytorch-fid's and torchvision's `fc` layer).

Weights: pytorch-fid's port of the TF graph, `pt_inception-2015-12-05-6726825d.pth`,
converted once to .npz by `python -m gan_dynamics.metrics.convert_inception` (needs torch;
nothing else here does). `load_params` finds the .npz at a given path or in the cache
directory (`$GAN_DYNAMICS_CACHE`, else ~/.cache/gan_dynamics) and fails with the download
and convert commands when it is absent.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable, Optional, Sequence

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh

from gan_dynamics import parallel, progress
from gan_dynamics.errors import UserError
from gan_dynamics.metrics import numerics
from gan_dynamics.metrics import resize as resize_lib
from gan_dynamics.metrics.scores import default_cache_dir
from gan_dynamics.models import layers

INPUT_SIZE = 299
POOL3_DIM = 2048
NUM_LOGITS = 1008
BATCH_NORM_EPS = 1e-3

WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
               "pt_inception-2015-12-05-6726825d.pth")
WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d"

Params = Any


# ------------------------------------------------------------------------ the input path


def preprocess(images: jax.Array, resize: str = "pytorch_fid") -> jax.Array:
    """Images (B, H, W, C in {1, 3}) in [-1, 1] -> (B, 299, 299, 3) as the network expects,
    resized by `resize` ("pytorch_fid" or "clean"; `metrics.resize`)."""
    chex.assert_rank(images, 4)
    channels = images.shape[-1]
    if channels not in (1, 3):
        raise ValueError(f"Inception takes RGB or grayscale images (C = 3 or 1); got images "
                         f"of shape {images.shape}.")
    # Resize the C channels before repeating grayscale: a third of the work.
    x = resize_lib.resize(images, INPUT_SIZE, resize)
    if channels == 1:
        x = jnp.repeat(x, 3, axis=-1)
    return x


# ----------------------------------------------------------------------------- the network


def lax_conv(x: jax.Array, kernel: jax.Array, strides: Sequence[int],
             padding: Sequence[tuple[int, int]]) -> jax.Array:
    """NHWC x HWIO convolution by XLA's convolution op."""
    return lax.conv_general_dilated(x, kernel, tuple(strides), tuple(padding),
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"))


ConvFn = Callable[[jax.Array, jax.Array, Sequence[int], Sequence[tuple[int, int]]], jax.Array]


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


class BasicConv(nn.Module):
    """Convolution with batch norm folded in (kernel, bias), then ReLU."""

    features: int
    kernel_size: int | tuple[int, int]
    strides: int = 1
    padding: int | tuple[int, int] = 0
    conv: ConvFn = lax_conv

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kh, kw = _pair(self.kernel_size)
        ph, pw = _pair(self.padding)
        kernel = self.param("kernel", nn.initializers.lecun_normal(),
                            (kh, kw, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        y = self.conv(x, kernel, _pair(self.strides), ((ph, ph), (pw, pw)))
        return nn.relu(y + bias)


def max_pool(x: jax.Array, stride: int, padding: int = 0) -> jax.Array:
    """3x3 max pool; padding never wins (-inf)."""
    pad = ((0, 0), (padding, padding), (padding, padding), (0, 0))
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, 3, 3, 1), (1, stride, stride, 1), pad)


def avg_pool_excluding_padding(x: jax.Array) -> jax.Array:
    """3x3 stride-1 average pool, padding 1, averaging only the pixels inside the image."""
    pad = ((0, 0), (1, 1), (1, 1), (0, 0))
    sums = lax.reduce_window(x, 0.0, lax.add, (1, 3, 3, 1), (1, 1, 1, 1), pad)
    h, w = x.shape[1:3]
    # Pixels in the window: 3 per axis inside, 2 at an edge (known at trace time).
    per_axis = lambda n: 1 + (np.arange(n) > 0) + (np.arange(n) < n - 1)
    counts = np.outer(per_axis(h), per_axis(w)).astype(np.float32)
    return sums / counts[None, :, :, None]


class InceptionA(nn.Module):
    pool_features: int
    conv: ConvFn

    @nn.compact
    def __call__(self, x):
        c = functools.partial(BasicConv, conv=self.conv)
        b1 = c(64, 1, name="branch1x1")(x)
        b5 = c(48, 1, name="branch5x5_1")(x)
        b5 = c(64, 5, padding=2, name="branch5x5_2")(b5)
        b3 = c(64, 1, name="branch3x3dbl_1")(x)
        b3 = c(96, 3, padding=1, name="branch3x3dbl_2")(b3)
        b3 = c(96, 3, padding=1, name="branch3x3dbl_3")(b3)
        bp = c(self.pool_features, 1, name="branch_pool")(avg_pool_excluding_padding(x))
        return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
    conv: ConvFn

    @nn.compact
    def __call__(self, x):
        c = functools.partial(BasicConv, conv=self.conv)
        b3 = c(384, 3, strides=2, name="branch3x3")(x)
        bd = c(64, 1, name="branch3x3dbl_1")(x)
        bd = c(96, 3, padding=1, name="branch3x3dbl_2")(bd)
        bd = c(96, 3, strides=2, name="branch3x3dbl_3")(bd)
        return jnp.concatenate([b3, bd, max_pool(x, 2)], axis=-1)


class InceptionC(nn.Module):
    channels_7x7: int
    conv: ConvFn

    @nn.compact
    def __call__(self, x):
        c = functools.partial(BasicConv, conv=self.conv)
        c7 = self.channels_7x7
        b1 = c(192, 1, name="branch1x1")(x)
        b7 = c(c7, 1, name="branch7x7_1")(x)
        b7 = c(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(b7)
        b7 = c(192, (7, 1), padding=(3, 0), name="branch7x7_3")(b7)
        bd = c(c7, 1, name="branch7x7dbl_1")(x)
        bd = c(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(bd)
        bd = c(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(bd)
        bd = c(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(bd)
        bd = c(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(bd)
        bp = c(192, 1, name="branch_pool")(avg_pool_excluding_padding(x))
        return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
    conv: ConvFn

    @nn.compact
    def __call__(self, x):
        c = functools.partial(BasicConv, conv=self.conv)
        b3 = c(192, 1, name="branch3x3_1")(x)
        b3 = c(320, 3, strides=2, name="branch3x3_2")(b3)
        b7 = c(192, 1, name="branch7x7x3_1")(x)
        b7 = c(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
        b7 = c(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
        b7 = c(192, 3, strides=2, name="branch7x7x3_4")(b7)
        return jnp.concatenate([b3, b7, max_pool(x, 2)], axis=-1)


class InceptionE(nn.Module):
    """E block; `max_pool_branch`: the pool branch's 3x3 pool is max (Mixed_7c), else average."""

    max_pool_branch: bool
    conv: ConvFn

    @nn.compact
    def __call__(self, x):
        c = functools.partial(BasicConv, conv=self.conv)
        b1 = c(320, 1, name="branch1x1")(x)
        b3 = c(384, 1, name="branch3x3_1")(x)
        b3 = jnp.concatenate([c(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(b3),
                              c(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(b3)], axis=-1)
        bd = c(448, 1, name="branch3x3dbl_1")(x)
        bd = c(384, 3, padding=1, name="branch3x3dbl_2")(bd)
        bd = jnp.concatenate([c(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(bd),
                              c(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(bd)],
                             axis=-1)
        pooled = max_pool(x, 1, padding=1) if self.max_pool_branch else avg_pool_excluding_padding(x)
        bp = c(192, 1, name="branch_pool")(pooled)
        return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class FIDInceptionV3(nn.Module):
    """pytorch-fid's `fid_inception_v3` on NHWC images in [-1, 1] (any size, C = 1 or 3).

    Returns (pool3 (B, 2048), logits (B, 1008)); logits without the final bias unless
    `logits_with_bias` (module docstring). `conv` is the convolution routine (`lax_conv`
    or `gan_dynamics.models.layers.conv`: the same values, differently fast); `resize`
    how images reach 299x299 ("pytorch_fid" or "clean", `metrics.resize`).
    """

    logits_with_bias: bool = False
    conv: ConvFn = lax_conv
    resize: str = "pytorch_fid"

    @nn.compact
    def __call__(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
        c = functools.partial(BasicConv, conv=self.conv)
        x = preprocess(images, self.resize)
        x = c(32, 3, strides=2, name="Conv2d_1a_3x3")(x)
        x = c(32, 3, name="Conv2d_2a_3x3")(x)
        x = c(64, 3, padding=1, name="Conv2d_2b_3x3")(x)
        x = max_pool(x, 2)
        x = c(80, 1, name="Conv2d_3b_1x1")(x)
        x = c(192, 3, name="Conv2d_4a_3x3")(x)
        x = max_pool(x, 2)
        for name, pool_features in (("Mixed_5b", 32), ("Mixed_5c", 64), ("Mixed_5d", 64)):
            x = InceptionA(pool_features, self.conv, name=name)(x)
        x = InceptionB(self.conv, name="Mixed_6a")(x)
        for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160),
                         ("Mixed_6e", 192)):
            x = InceptionC(c7, self.conv, name=name)(x)
        x = InceptionD(self.conv, name="Mixed_7a")(x)
        x = InceptionE(False, self.conv, name="Mixed_7b")(x)
        x = InceptionE(True, self.conv, name="Mixed_7c")(x)
        pool3 = jnp.mean(x, axis=(1, 2))
        fc = nn.Dense(NUM_LOGITS, use_bias=self.logits_with_bias, name="fc")
        return pool3, fc(pool3)


# ------------------------------------------------------------------------------ weights


def default_weights_path(cache_dir: Optional[str] = None) -> str:
    """<cache>/inception/pt_inception-2015-12-05-6726825d.npz."""
    return os.path.join(cache_dir or default_cache_dir(), "inception", WEIGHTS_NAME + ".npz")


def missing_weights_message(path: str) -> str:
    return (
        f"The FID Inception weights were not found at {path}. Get pytorch-fid's weights "
        f"and convert them once (torch is needed only for this step):\n"
        f"  pip install torch\n"
        f"  curl -L -o {WEIGHTS_NAME}.pth {WEIGHTS_URL}\n"
        f"  python -m gan_dynamics.metrics.convert_inception {WEIGHTS_NAME}.pth {path}\n"
        "or point the metrics configuration's Inception weights path at an existing .npz.")


def params_from_state_dict(state: dict[str, np.ndarray], logits_with_bias: bool = False
                           ) -> Params:
    """Flax parameters of `FIDInceptionV3` from pytorch-fid's state dict (numpy arrays).

    Folds each batch norm (inference mode) into its convolution; conv kernels go from
    torch's (O, I, kh, kw) to HWIO, the classifier's weight from (out, in) to (in, out).
    """
    params: dict = {}
    convs = sorted({k[:-len(".conv.weight")] for k in state if k.endswith(".conv.weight")})
    for name in convs:
        w = np.asarray(state[f"{name}.conv.weight"], np.float64)
        gamma, beta = (np.asarray(state[f"{name}.bn.{k}"], np.float64) for k in ("weight", "bias"))
        mean, var = (np.asarray(state[f"{name}.bn.running_{k}"], np.float64)
                     for k in ("mean", "var"))
        scale = gamma / np.sqrt(var + BATCH_NORM_EPS)
        node = params
        for part in name.split("."):
            node = node.setdefault(part, {})
        node["kernel"] = (w.transpose(2, 3, 1, 0) * scale).astype(np.float32)
        node["bias"] = (beta - mean * scale).astype(np.float32)
    params["fc"] = {"kernel": np.asarray(state["fc.weight"], np.float32).T}
    if logits_with_bias:
        params["fc"]["bias"] = np.asarray(state["fc.bias"], np.float32)
    return {"params": params}


def check_params(params: Params, logits_with_bias: bool = False) -> None:
    """Fail with a clear message when a parameter tree does not fit `FIDInceptionV3`."""
    expected = jax.eval_shape(FIDInceptionV3(logits_with_bias).init, jax.random.key(0),
                              jax.ShapeDtypeStruct((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32))
    want = {jax.tree_util.keystr(k): v.shape for k, v in
            jax.tree_util.tree_leaves_with_path(expected)}
    got = {jax.tree_util.keystr(k): np.shape(v) for k, v in
           jax.tree_util.tree_leaves_with_path(params)}
    if want != got:
        missing = sorted(set(want) - set(got))[:5]
        wrong = sorted(k for k in set(want) & set(got) if want[k] != got[k])[:5]
        extra = sorted(set(got) - set(want))[:5]
        raise UserError(f"The Inception weights do not fit the FID Inception-v3: missing "
                        f"{missing}, wrong shape {wrong}, unexpected {extra}. Convert "
                        f"pytorch-fid's {WEIGHTS_NAME}.pth with "
                        "`python -m gan_dynamics.metrics.convert_inception`.")


def load_params(path: Optional[str] = None, logits_with_bias: bool = False) -> Params:
    """Parameters from a converted .npz (`path`, else `default_weights_path()`).

    Raises:
      UserError: the file is absent (the message says how to get and convert it) or does
        not hold the FID Inception's parameters.
    """
    path = os.path.expanduser(path or default_weights_path())
    if not os.path.exists(path):
        raise UserError(missing_weights_message(path))
    with np.load(path) as f:
        state = dict(f)
    try:
        params = params_from_state_dict(state, logits_with_bias)
    except KeyError as e:
        raise UserError(f"{path} lacks the parameter {e}; it is not a converted "
                        f"{WEIGHTS_NAME}.pth. {missing_weights_message(path)}") from e
    check_params(params, logits_with_bias)
    return params


# ---------------------------------------------------------------------- the extractor


def make_extractor(params: Params, mesh: Mesh, *, logits_with_bias: bool = False,
                   conv: ConvFn = lax_conv, resize: str = "pytorch_fid",
                   ) -> Callable[[Any], tuple[jax.Array, jax.Array]]:
    """A jitted images -> (pool3, logits), the batch sharded over the mesh's 'data' axis.

    Images: (B, H, W, C) in [-1, 1], numpy or jax, the same in every process; B must
    divide over the mesh's devices. The parameters are put on every device once, here.
    Each process places its own devices' rows and gets the whole outputs back as numpy
    (an all-gather), so the extractor works when the mesh spans processes. The network
    runs at the highest matmul precision (module docstring); `resize`: "pytorch_fid" or
    "clean".
    """
    model = FIDInceptionV3(logits_with_bias=logits_with_bias, conv=conv,
                           resize=resize_lib.check_mode(resize))
    replicated = parallel.replicated(mesh)
    batch = parallel.batch_sharding(mesh)
    params = jax.tree.map(lambda p: parallel.put_rows(p, replicated), params)
    apply = jax.jit(numerics.highest_precision(model.apply), in_shardings=(replicated, batch),
                    out_shardings=(batch, batch),
                    compiler_options=layers.native_conv_compiler_options())

    compiled_for = set()  # batch shapes compiled so far

    def extract(images):
        parallel.check_batch_size(images.shape[0], mesh)
        if (images.shape, images.dtype) not in compiled_for:  # say so: minutes on a CPU
            compiled_for.add((images.shape, images.dtype))
            progress.compile(f"the Inception network for batches of {images.shape[0]}",
                             apply, params,
                             jax.ShapeDtypeStruct(images.shape, images.dtype, sharding=batch))
        return parallel.to_host(apply(params, parallel.put_rows(images, batch)))

    return extract
