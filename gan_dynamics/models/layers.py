"""Convolution layers as matrix products, for fast derivatives of every order on CPU.

`Conv` and `ConvTranspose` compute exactly what `flax.linen.Conv` and
`flax.linen.ConvTranspose` (`lax.conv_transpose`, kernel not flipped) compute, with the
same parameters, but as one matrix product plus slices (im2col) or pads (a fold). XLA's
CPU backend runs convolutions with input or window dilation, which the derivatives of
strided and transposed convolutions produce, through a slow generic loop: on a 2-core CPU
the gradient of one 4x4 stride-2 layer of the ICR generator (64x4x4x256 -> 64x8x8x128)
took 349 ms as a convolution and 45 ms as below, and CGD's mixed second-order products
through the ICR DCGAN were 16 times a gradient's cost instead of about 2 (measured with
benchmarks/bench_game_step.py). Here the forward pass, the gradients and CGD's
second-order products are matrix products, slices and pads.

The im2col: output pixel (i, j) of a stride-s convolution reads the K x K window at
(s·i, s·j) of the padded input. The padded input is split into its s² phases (pixels
with equal coordinates mod s); each of the K² taps is then a contiguous window of one
phase, and the windows, stacked on the channel axis, are the rows of one matrix product
with the kernel. (Strided slices of the input would do the same forward, but transpose
to K² interior-padded copies summed per pixel: the ICR DCGAN's ACGD step was about 2%
slower.) In `ConvTranspose` the K² taps of the patches come from one split for the same
reason: a split transposes to one concatenate, K² slices to K² padded copies summed (the
ACGD step was 3.6 s instead of 2.7 s).

The kernel's gradient: in `Conv` it contracts the patches with the output gradient over
the N·H·W rows. XLA:CPU runs that product at about half its usual rate when the result is
laid out (K²·c_in, c_out) (on the 2-core EPYC: 46 against 100 GFLOP per CPU-second for
(4096x1024)ᵀ·(4096x128)), and XLA folds a transpose after the product into it; `conv`
keeps the transpose out of its reach with an optimization barrier, which made the ICR
DCGAN's ACGD step 6% cheaper in CPU time (its conv2 and conv3 kernel products in CGD's
transposed mixed product ran at 29-42 GFLOP/s, then at 64-66).

The fold: every input pixel times the kernel is a K x K patch of output (`x @ W`); patch
tap a of input row i lands on output row s·i + pad_before - a. The output rows of one
phase (rows ≡ ρ mod s) thus read each of their taps shifted by a whole number of input
rows: every phase is a sum of shifted taps at input resolution (`lax.pad`; a negative pad
crops), and the s² phases are interleaved by one stack and reshape, whose transpose is a
reshape and slices. (Placing each phase by an interior pad, s-1 zeros between elements,
and summing the s² full-size results computes the same; the ICR DCGAN's ACGD step was 3%
slower so.)

Both layers take `impl`: "matmul" (the forms above), "lax" (XLA's native convolution,
`lax.conv_general_dilated` / `lax.conv_transpose`: what GPUs and TPUs run fastest) or
"auto" (the default: "matmul" when JAX's default backend is the CPU, "lax" otherwise).
The parameters and the function computed are the same; only the program differs.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax


def conv_transpose_padding(kernel: int, stride: int, padding: str) -> tuple[int, int]:
    """The explicit (before, after) padding `lax.conv_transpose` uses for "SAME"/"VALID"."""
    if padding == "SAME":
        pad_len = kernel + stride - 2
        before = kernel - 1 if stride > kernel - 1 else -(-pad_len // 2)
    elif padding == "VALID":
        pad_len = kernel + stride - 2 + max(kernel - stride, 0)
        before = kernel - 1
    else:
        raise ValueError(f"padding={padding!r}: use 'SAME', 'VALID' or explicit pairs.")
    return before, pad_len - before


def conv_padding(size: int, kernel: int, stride: int, padding: str) -> tuple[int, int]:
    """The explicit (before, after) padding `lax.conv_general_dilated` uses for "SAME"/"VALID"."""
    if padding == "SAME":
        total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
        return total // 2, total - total // 2
    if padding == "VALID":
        return 0, 0
    raise ValueError(f"padding={padding!r}: use 'SAME', 'VALID' or explicit pairs.")


def conv(x: jax.Array, kernel: jax.Array, strides: Sequence[int],
         padding: Sequence[tuple[int, int]]) -> jax.Array:
    """`lax.conv_general_dilated(x, kernel, strides, padding)` for NHWC/HWIO, by im2col."""
    n, h, w, c_in = x.shape
    kh, kw, _, c_out = kernel.shape
    (sh, sw), ((bh, ah), (bw, aw)) = strides, padding
    out_h = (h + bh + ah - kh) // sh + 1
    out_w = (w + bw + aw - kw) // sw + 1
    # Split the padded input into its s_h x s_w phases (rows ≡ p mod s): tap (a, b) is then
    # a contiguous window of phase (a mod s_h, b mod s_w). Contiguous slices transpose to
    # plain pads and the phase split to one concatenate, so the gradient (col2im) sums
    # only the taps that reach a pixel instead of K² interior-padded copies of the input.
    ph, pw = -(-(h + bh + ah) // sh), -(-(w + bw + aw) // sw)
    padded = jnp.pad(x, [(0, 0), (bh, ph * sh - h - bh), (bw, pw * sw - w - bw), (0, 0)])
    padded = padded.reshape(n, ph, sh, pw, sw, c_in)
    phases = [[p.squeeze((2, 4)) for p in jnp.split(row, sw, axis=4)]
              for row in jnp.split(padded, sh, axis=2)]
    windows = [lax.slice(phases[a % sh][b % sw],
                         (0, a // sh, b // sw, 0), (n, a // sh + out_h, b // sw + out_w, c_in))
               for a in range(kh) for b in range(kw)]
    patches = jnp.concatenate(windows, axis=-1).reshape(-1, kh * kw * c_in)
    # The kernel enters as its (c_out, K²·c_in) transpose behind an optimization barrier, so
    # that the kernel's gradient (and its mixed derivatives in CGD's products) is the
    # matmul g^T·patches with a (c_out, K²·c_in) result, transposed afterwards: XLA would
    # otherwise fold the transpose into the matmul and compute patches^T·g, which its CPU
    # backend ran at half the rate (see "The kernel's gradient" above).
    kernel_t = lax.optimization_barrier(kernel.reshape(kh * kw * c_in, c_out).T)
    out = lax.dot_general(patches, kernel_t, (((1,), (1,)), ((), ())))
    return out.reshape(n, out_h, out_w, c_out)


def _phase_shifts(kernel: int, stride: int, before: int, phase: int) -> list[tuple[int, int]]:
    """(tap a, input offset d) of the taps reaching output phase ρ = `phase` (rows ≡ ρ mod s).

    Tap a of input row i lands on output row s·i + before - a; output row s·m + ρ therefore
    reads input row m + d of every tap a with d = (ρ - before + a) / s an integer.
    """
    return [(a, (phase - before + a) // stride) for a in range(kernel)
            if (phase - before + a) % stride == 0]


def conv_transpose(x: jax.Array, kernel: jax.Array, strides: Sequence[int],
                   padding: Sequence[tuple[int, int]]) -> jax.Array:
    """`lax.conv_transpose(x, kernel, strides, padding)` for NHWC/HWIO, explicit padding."""
    n, h, w, c_in = x.shape
    kh, kw, _, c_out = kernel.shape
    (sh, sw), ((bh, ah), (bw, aw)) = strides, padding
    out_h = (h - 1) * sh + 1 + bh + ah - kh + 1
    out_w = (w - 1) * sw + 1 + bw + aw - kw + 1
    patches = x.reshape(-1, c_in) @ kernel.transpose(2, 0, 1, 3).reshape(c_in, -1)
    # One split into the K² taps, not K² slices: a split transposes to one concatenate,
    # where slices would transpose to K² zero-padded copies of the patches summed up.
    taps = jnp.split(patches.reshape(n, h, w, kh * kw, c_out), kh * kw, axis=3)
    tap = lambda a, b: taps[a * kw + b].squeeze(3)
    zero = jnp.zeros((), patches.dtype)
    # Each output phase (rows ≡ ρh mod sh, columns ≡ ρw mod sw) sums its taps shifted at
    # input resolution; the phases are then interleaved by one stack and reshape.
    m_h, m_w = -(-out_h // sh), -(-out_w // sw)
    rows = []
    for rh in range(sh):
        cols = []
        for rw in range(sw):
            shifted = [lax.pad(tap(a, b), zero, [(0, 0, 0), (-dh, m_h - h + dh, 0),
                                                 (-dw, m_w - w + dw, 0), (0, 0, 0)])
                       for a, dh in _phase_shifts(kh, sh, bh, rh)
                       for b, dw in _phase_shifts(kw, sw, bw, rw)]
            cols.append(sum(shifted) if shifted
                        else jnp.zeros((n, m_h, m_w, c_out), patches.dtype))
        rows.append(jnp.stack(cols, axis=3))  # (n, m_h, m_w, sw, c_out)
    out = jnp.stack(rows, axis=2).reshape(n, m_h * sh, m_w * sw, c_out)
    return out[:, :out_h, :out_w]


CONV_IMPLS = ("auto", "lax", "matmul")
_NHWC = ("NHWC", "HWIO", "NHWC")


def resolve_conv_impl(impl: str) -> str:
    """"lax" or "matmul" for `impl`; "auto" is "matmul" on CPU and "lax" on GPU/TPU."""
    if impl not in CONV_IMPLS:
        raise ValueError(f"conv_impl={impl!r}: use one of {list(CONV_IMPLS)}.")
    if impl == "auto":
        return "matmul" if jax.default_backend() == "cpu" else "lax"
    return impl


# XLA's CPU backend hands convolutions to YNNPACK by default (a `__ynn_fusion` in the
# compiled HLO). On this project's 2-core AVX-512 test machine that ran a 3x3 convolution
# of the FID Inception (50x73x73x80 -> 192) at 35 GFLOP/s and XLA's own (Eigen)
# convolution at 100-134 GFLOP/s; the whole Inception went from 5 to 17 images/s.
_NO_YNN = ("xla_cpu_experimental_ynn_fusion_type", "")


@functools.cache
def native_conv_compiler_options() -> dict[str, Any]:
    """`jax.jit(..., compiler_options=...)` that keep XLA's own convolutions on CPU.

    Empty on other backends, and where this jaxlib has no such option (a jit with an
    unknown option fails to compile). Copy before changing it: the dict is shared.
    """
    if jax.default_backend() != "cpu":
        return {}
    options = dict([_NO_YNN])
    try:
        jax.jit(lambda x: x + 1, compiler_options=options).lower(
            jax.ShapeDtypeStruct((1,), jnp.float32)).compile()
    except jax.errors.JaxRuntimeError:
        return {}
    return options


def lax_conv(x: jax.Array, kernel: jax.Array, strides: Sequence[int],
             padding: Sequence[tuple[int, int]]) -> jax.Array:
    """XLA's native convolution, NHWC/HWIO, explicit padding (what `conv` reproduces)."""
    return lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=_NHWC)


def lax_conv_transpose(x: jax.Array, kernel: jax.Array, strides: Sequence[int],
                       padding: Sequence[tuple[int, int]]) -> jax.Array:
    """XLA's native transposed convolution, NHWC/HWIO (what `conv_transpose` reproduces)."""
    return lax.conv_transpose(x, kernel, strides, padding, dimension_numbers=_NHWC)


def _apply(layer: nn.Module, x: jax.Array, ops: dict, named_padding) -> jax.Array:
    """The body of `Conv` and `ConvTranspose`: parameters, padding, the op, bias.

    `ops` maps "lax"/"matmul" to the op of each implementation;
    `named_padding(size, kernel, stride, padding)` resolves "SAME"/"VALID" per axis.
    """
    op = ops[resolve_conv_impl(layer.impl)]
    kh, kw = layer.kernel_size
    sh, sw = layer.strides
    kernel = layer.param("kernel", layer.kernel_init, (kh, kw, x.shape[-1], layer.features))
    if isinstance(layer.padding, str):
        pads = [named_padding(x.shape[1], kh, sh, layer.padding),
                named_padding(x.shape[2], kw, sw, layer.padding)]
    else:
        pads = [tuple(p) for p in layer.padding]
    y = op(x, kernel.astype(x.dtype), (sh, sw), pads)
    if layer.use_bias:
        y = y + layer.param("bias", layer.bias_init, (layer.features,)).astype(y.dtype)
    return y


class Conv(nn.Module):
    """Drop-in for `nn.Conv` on NHWC inputs (2-D, no dilation, no feature groups)."""

    features: int
    kernel_size: Sequence[int]
    strides: Sequence[int] = (1, 1)
    padding: str | Sequence[tuple[int, int]] = "SAME"
    use_bias: bool = True
    kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
    bias_init: nn.initializers.Initializer = nn.initializers.zeros_init()
    impl: str = "auto"  # CONV_IMPLS

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return _apply(self, x, {"matmul": conv, "lax": lax_conv}, conv_padding)


class ConvTranspose(nn.Module):
    """Drop-in for `nn.ConvTranspose` on NHWC inputs (2-D, no kernel dilation)."""

    features: int
    kernel_size: Sequence[int]
    strides: Sequence[int]
    padding: str | Sequence[tuple[int, int]]
    use_bias: bool = True
    kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
    bias_init: nn.initializers.Initializer = nn.initializers.zeros_init()
    impl: str = "auto"  # CONV_IMPLS

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return _apply(self, x, {"matmul": conv_transpose, "lax": lax_conv_transpose},
                      lambda size, kernel, stride, padding: conv_transpose_padding(
                          kernel, stride, padding))
