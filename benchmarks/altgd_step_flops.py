"""Compiled FLOPs of AltGD's generator step and whole step on the MLP WGAN-GP game.

    python benchmarks/altgd_step_flops.py

The MLP GAN of `bench_game_step.py` (two hidden layers of 128, batch 64, 2-D data) with
the WGAN loss and the interpolation penalty (λ = 10). The generator step differentiates
the generator's own loss (`Game.loss_x`: G and D(G(z)) only); "whole game" is the same
step through the full `losses` (D on real data and the penalty evaluated as well), as
AltGD's steps were evaluated before per-player losses. XLA's own count:
`jax.jit(f).lower(...).compile().cost_analysis()["flops"]`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from bench_game_step import MLP

from gan_dynamics import objectives, optimizers, penalties
from gan_dynamics.game import Game
from gan_dynamics.optimizers.altgd import player_step
from gan_dynamics.optimizers.transforms import make_transform

BATCH, Z_DIM, N_DISC = 64, 16, 5
ADAM = {"name": "adam", "lr": 1e-4, "b1": 0.5, "b2": 0.9}


def whole_game(game: Game) -> Game:
    """Every step through the full `losses`, from the step's initial model state."""
    substep = None if game.substep is None else (lambda i: whole_game(game.substep(i)))
    return Game(game.losses, game.zero_sum, substep)


def flops(fn, *args) -> float:
    cost = jax.jit(fn).lower(*args).compile().cost_analysis()
    return float((cost[0] if isinstance(cost, (list, tuple)) else cost)["flops"])


def main():
    gen, disc = MLP(128, 2), MLP(128, 1, squeeze=True)
    k_gen, k_disc, k_data = jax.random.split(jax.random.key(0), 3)
    px = gen.init(k_gen, jnp.zeros((1, Z_DIM)))["params"]
    py = disc.init(k_disc, jnp.zeros((1, 2)))["params"]

    def batch(i):
        k_real, k_z, k_pen = jax.random.split(jax.random.fold_in(k_data, i), 3)
        return (jax.random.normal(k_real, (BATCH, 2)),
                jax.random.normal(k_z, (BATCH, Z_DIM)), k_pen)

    def game(penalty):
        return objectives.make_gan_game(
            "wgan", objectives.linen_apply(gen), objectives.linen_apply(disc), *batch(0),
            penalty=penalty, substep_batch=batch)

    gp, plain = game(penalties.make_penalty("wgan_gp", weight=10.0)), game(None)
    tx = make_transform(ADAM)
    sx = tx.init(px)
    gen_step = lambda g: lambda px, py, s: player_step(tx, "x", g, px, py, s)  # noqa: E731
    rows = [
        ("generator step, own loss (G, D(G(z)))", flops(gen_step(gp), px, py, sx)),
        ("generator step, whole game without penalty", flops(gen_step(whole_game(plain)), px, py, sx)),
        ("generator step, whole game with penalty", flops(gen_step(whole_game(gp)), px, py, sx)),
    ]
    opt = optimizers.create("altgd", transform_x=ADAM, transform_y=ADAM, n_disc=N_DISC)
    step = lambda g: lambda px, py, s: opt.update(g, px, py, s)  # noqa: E731
    state = opt.init(px, py)
    rows += [
        (f"AltGD step (n_disc {N_DISC}), per-player losses", flops(step(gp), px, py, state)),
        (f"AltGD step (n_disc {N_DISC}), whole game", flops(step(whole_game(gp)), px, py, state)),
    ]
    print(f"MLP WGAN-GP, batch {BATCH}, {jax.default_backend()}")
    for name, value in rows:
        print(f"{name:48s} {value / 1e6:8.2f} MFLOP")


if __name__ == "__main__":
    from gan_dynamics.errors import run_main

    run_main(main)
