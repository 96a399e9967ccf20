"""Toy games with known dynamics: the closed-form checks of every game optimizer.

Each constructor returns a `ToyProblem`: the `Game` (x minimises f, y minimises g; see
`game.py`), the initial point as a function of a key, and the distance to the
equilibrium set. All four are small enough that the linearisation of an optimizer's
update can be formed densely (`field_jacobian`, `simgd_matrix`, `update_jacobian`) and
its spectral radius compared with the observed per-step rate.

- `bilinear`: f = α xᵀy, x minimises, y maximises; equilibrium 0. SimGD multiplies ‖z‖
  by (1+η²α²)^½ per step, CGD by (1+η²α²)^-½ (Schaefer & Anandkumar 2019, experiments).
- `icr_quadratic`: f = a x² + b xy + c y² (default x² + 10xy + y²), x min, y max; the
  strongly coupled example of Schaefer, Zheng & Anandkumar 2020 (ICR), where SimGD
  converges or diverges depending on the ratio of the two step sizes.
- `dirac_gan`: Mescheder, Geiger & Nowozin 2018, Sec. 2.2: data at 0, generator at θ,
  discriminator D(x) = ψx, L(θ, ψ) = φ(ψθ) + φ(0) with φ(t) = -log(1 + e^{-t}) (their
  Eq. 1 specialised; their D is positive on fakes). θ = x minimises L, ψ = y maximises
  it, i.e. minimises g = -L; their R1 penalty adds γ/2 ψ² to g (general-sum).
  Equilibrium (0, 0). The linearisation there is [[0, -φ'(0)], [φ'(0), -γ]] with
  φ'(0) = 1/2: a centre without penalty, a stable focus for 0 < γ < 1 and a stable node
  for γ >= 1 (the critical damping γ = 2φ'(0)).
- `covariance`: learning a covariance with a linear generator and a quadratic critic
  (Daskalakis et al. 2018; Schaefer & Anandkumar 2019, experiments), noiseless:
  f(V, W) = ⟨W, Σ - V Vᵀ⟩, V = x (generator) minimises, W = y (critic) maximises. This is
  the sign convention of the CGD authors' reference code (their first player W minimises
  ⟨W, VVᵀ - Σ⟩); ⟨W, VVᵀ - Σ⟩ with W maximising is the same game under W ↦ -W. Σ = UUᵀ,
  U standard normal d x d; the start is their perturbed equilibrium V0 = U + B,
  W0 = AAᵀ with A, B uniform on [-½, ½]. Only the symmetric part of W plays, so the
  distance is (‖VVᵀ - Σ‖²_F + ‖(W + Wᵀ)/2‖²_F)^½.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from gan_dynamics.game import Game, Params, general_sum_game, zero_sum_game
from gan_dynamics.optimizers.base import GameOptimizer

Array = jax.Array


class ToyProblem(NamedTuple):
    """A game with its start and its distance to equilibrium.

    Attributes:
      game: the two players' losses.
      initial: `key -> (params_x, params_y)`, the start (deterministic where the problem
        has no noise).
      distance: `(params_x, params_y) -> scalar`, the distance to the equilibrium set.
    """

    game: Game
    initial: Callable[[Array], tuple[Params, Params]]
    distance: Callable[[Params, Params], Array]


def _point_start(x0: float, y0: float, dim: int, noise: float):
    """The start (x0, y0) in every coordinate, plus `noise` times a standard normal."""

    def initial(key: Array) -> tuple[Array, Array]:
        kx, ky = jax.random.split(key)
        dtype = jnp.result_type(float)
        x = x0 + noise * jax.random.normal(kx, (dim,), dtype)
        y = y0 + noise * jax.random.normal(ky, (dim,), dtype)
        return x, y

    return initial


def norm_to_origin(params_x: Params, params_y: Params) -> Array:
    """‖(x, y)‖: the distance to the equilibrium (0, 0)."""
    z, _ = ravel_pytree((params_x, params_y))
    return jnp.linalg.norm(z)


def _check_dim(dim: int) -> None:
    if not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be a positive integer, got {dim!r}.")


def bilinear(
    alpha: float | Array = 1.0, dim: int = 1, x0: float = 0.5, y0: float = 0.5,
    init_noise: float = 0.0,
) -> ToyProblem:
    """f = α xᵀy with x, y ∈ ℝ^dim; x minimises, y maximises; equilibrium 0."""
    _check_dim(dim)
    game = zero_sum_game(lambda x, y: alpha * jnp.vdot(x, y))
    return ToyProblem(game, _point_start(x0, y0, dim, init_noise), norm_to_origin)


def icr_quadratic(
    a: float | Array = 1.0, b: float | Array = 10.0, c: float | Array = 1.0,
    x0: float = 0.5, y0: float = 0.5, init_noise: float = 0.0,
) -> ToyProblem:
    """f = a x² + b xy + c y² (scalars, stored as shape (1,)); x min, y max; equilibrium 0."""
    game = zero_sum_game(lambda x, y: jnp.sum(a * x**2 + b * x * y + c * y**2))
    return ToyProblem(game, _point_start(x0, y0, 1, init_noise), norm_to_origin)


def log_sigmoid_loss(t: Array) -> Array:
    """φ(t) = -log(1 + e^{-t}), Mescheder et al.'s f for the standard GAN."""
    return -jax.nn.softplus(-t)


DIRAC_LOSSES = ("minimax", "non_saturating", "wgan")


def dirac_gan(
    loss: str = "minimax", r1_gamma: float | Array | None = None,
    theta0: float = 1.0, psi0: float = 1.0, init_noise: float = 0.0,
) -> ToyProblem:
    """The Dirac-GAN: x = θ (generator position), y = ψ (discriminator slope).

    `loss`: "minimax" (L = φ(ψθ) + φ(0), zero-sum), "non_saturating" (the generator
    minimises -φ(-ψθ) instead; same linearisation at 0) or "wgan" (φ(t) = t).
    `r1_gamma`: None for no penalty, else the discriminator also minimises γ/2 ψ²
    (the game is then general-sum, even for γ = 0).
    """
    if loss not in DIRAC_LOSSES:
        raise ValueError(f"Unknown Dirac-GAN loss {loss!r}; choose one of {DIRAC_LOSSES}.")
    phi = (lambda t: t) if loss == "wgan" else log_sigmoid_loss

    def value(theta, psi):  # L(θ, ψ), maximised by the discriminator
        return jnp.sum(phi(psi * theta) + phi(jnp.zeros_like(theta)))

    def generator_loss(theta, psi):
        if loss == "non_saturating":
            return -jnp.sum(phi(-psi * theta))
        return value(theta, psi)

    def discriminator_loss(theta, psi):
        penalty = 0.0 if r1_gamma is None else 0.5 * r1_gamma * jnp.sum(psi**2)
        return -value(theta, psi) + penalty

    initial = _point_start(theta0, psi0, 1, init_noise)
    if loss != "non_saturating" and r1_gamma is None:
        return ToyProblem(zero_sum_game(value), initial, norm_to_origin)
    game = general_sum_game(generator_loss, discriminator_loss)
    return ToyProblem(game, initial, norm_to_origin)


def covariance_target(key: Array, dim: int) -> tuple[Array, Array]:
    """(U, Σ = UUᵀ) with U a standard normal dim x dim matrix."""
    _check_dim(dim)
    u = jax.random.normal(key, (dim, dim), jnp.result_type(float))
    return u, u @ u.T


def covariance(
    dim: int = 20, target_seed: int = 0, init_scale: float = 1.0,
) -> ToyProblem:
    """f(V, W) = ⟨W, Σ - VVᵀ⟩; V (x) minimises, W (y) maximises; Σ from `target_seed`.

    `initial(key)` perturbs the equilibrium (V = U, W = 0) by `init_scale` times the
    CGD authors' perturbation: V0 = U + s·B, W0 = s·AAᵀ, A, B ~ U[-½, ½]^{d x d}.
    """
    u, sigma = covariance_target(jax.random.key(target_seed), dim)

    def f(v, w):
        chex.assert_shape([v, w], (dim, dim))
        return jnp.vdot(w, sigma - v @ v.T)

    def initial(key):
        ka, kb = jax.random.split(key)
        a = jax.random.uniform(ka, (dim, dim), u.dtype, -0.5, 0.5)
        b = jax.random.uniform(kb, (dim, dim), u.dtype, -0.5, 0.5)
        return u + init_scale * b, init_scale * (a @ a.T)

    def distance(v, w):
        sym_w = 0.5 * (w + w.T)
        return jnp.sqrt(jnp.sum((v @ v.T - sigma) ** 2) + jnp.sum(sym_w**2))

    return ToyProblem(zero_sum_game(f), initial, distance)


PROBLEMS: dict[str, Callable[..., ToyProblem]] = {
    "bilinear": bilinear,
    "icr_quadratic": icr_quadratic,
    "dirac_gan": dirac_gan,
    "covariance": covariance,
}


def make(name: str, **kwargs) -> ToyProblem:
    """The toy problem `name` built with `kwargs`; unknown names or arguments fail."""
    if name not in PROBLEMS:
        raise ValueError(f"Unknown toy game {name!r}; choose one of {sorted(PROBLEMS)}.")
    try:
        return PROBLEMS[name](**kwargs)
    except TypeError as err:
        raise ValueError(f"Bad arguments {kwargs} for toy game {name!r}: {err}") from err


# ------------------------------------------------------------------ linearisations


def field_jacobian(game: Game, params_x: Params, params_y: Params) -> Array:
    """Dense Jacobian of the simultaneous gradient field z ↦ (∇x f, ∇y g) at (x, y).

    Rows and columns follow `ravel_pytree((params_x, params_y))`: x first, then y.
    """
    z, unravel = ravel_pytree((params_x, params_y))

    def field(z):
        px, py = unravel(z)
        gx = jax.grad(lambda a: game.losses(a, py)[0][0])(px)
        gy = jax.grad(lambda b: game.losses(px, b)[0][1])(py)
        return ravel_pytree((gx, gy))[0]

    return jax.jacfwd(field)(z)


def simgd_matrix(
    game: Game, params_x: Params, params_y: Params, lr_x: float | Array, lr_y: float | Array
) -> Array:
    """I - diag(η) J: the Jacobian of one simultaneous gradient step at (x, y).

    Exact for quadratic games (the ICR quadratic, the bilinear game), the linearisation
    at a fixed point otherwise.
    """
    n_x = ravel_pytree(params_x)[0].size
    n_y = ravel_pytree(params_y)[0].size
    lr = jnp.concatenate([jnp.full((n_x,), lr_x), jnp.full((n_y,), lr_y)])
    jac = field_jacobian(game, params_x, params_y)
    return jnp.eye(n_x + n_y, dtype=jac.dtype) - lr[:, None] * jac


def update_jacobian(
    optimizer: GameOptimizer, game: Game, params_x: Params, params_y: Params, state=None
) -> Array:
    """Dense Jacobian of one `optimizer.update` with respect to (x, y), state held fixed.

    `state` defaults to `optimizer.init(params_x, params_y)`. For stateless optimizers
    (SimGD with SGD, CGD) this is the full update map's linearisation. It differentiates
    through the optimizer's own computation, including an iterative solver's loop: take
    (x, y) off the equilibrium for CGD, where the right-hand side is zero and the solver
    stops before any iteration whose tangent would carry the linear map.
    """
    state = optimizer.init(params_x, params_y) if state is None else state
    z, unravel = ravel_pytree((params_x, params_y))

    def step(z):
        px, py = unravel(z)
        nx, ny, _, _ = optimizer.update(game, px, py, state)
        return ravel_pytree((nx, ny))[0]

    return jax.jacfwd(step)(z)


def spectral_radius(matrix: Array) -> Array:
    """max |λ| over the eigenvalues of a square matrix (CPU: non-symmetric eig)."""
    chex.assert_rank(matrix, 2)
    chex.assert_equal(matrix.shape[0], matrix.shape[1])
    return jnp.max(jnp.abs(jnp.linalg.eigvals(matrix)))
