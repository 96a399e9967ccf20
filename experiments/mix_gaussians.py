"""GAN against MIX+GAN on the 25-Gaussian grid (or the ring of 8), Adam against ACGD.

Arora et al. 2017 (Sec. 5) propose MIX+GAN, mixtures of T generators and T
discriminators trained on the mixture's payoff with an entropy regulariser; here it
meets the mode-collapse benchmarks of Metz et al. 2017 (ring of 8 Gaussians, std 0.02)
and Srivastava et al. 2017 (5x5 grid, std 0.05). Metrics per seed (2500 samples):
modes covered (>= 20 samples within 3σ of the mode), the fraction of high-quality
samples (within 3σ of some mode) and the neural-net distance to the data (GAN measure,
MLP critic (64, 64) fitted for 300 Adam steps on half of 2500 + 2500 samples, reported
on the other half). All seeds of a cell run as one vmapped program
(`gan_dynamics/runners/mix_gaussians_run.py`).

    python experiments/run.py --config=experiments/mix_gaussians.py --workdir=runs/mix_gaussians
    python experiments/run.py --config=experiments/mix_gaussians.py --config.mixture=ring
    python experiments/run.py --config=experiments/mix_gaussians.py --config.quick=True

Sizes are chosen for a CPU (the literature's networks have 128-unit layers and train for
tens of thousands of steps): G 2 -> 32 -> 32 -> 2, D 2 -> 32 -> 32 -> 1, batch 64,
800 steps, non-saturating loss, T = 5 components for MIX+GAN, entropy weight 0.1
(a default of this codebase; the paper does not publish its value). Adam: alternating
updates, lr 1e-3, betas (0.5, 0.999) (Metz et al.'s setting is lr 1e-4 with more
steps). ACGD: lr 1e-3,
CG to 1e-5 relative residual, at most 10 iterations. Measured runtimes are in
docs/mix_gan.md.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    adam = {"name": "adam", "lr": 1e-3, "b1": 0.5, "b2": 0.999}
    return ml_collections.ConfigDict({
        "runner": "mix_gaussians",
        "seed": 0,
        "num_seeds": 20,
        "chunk_seeds": 20,  # seeds vmapped together (bounds memory)
        "mixture": "grid",  # "grid" (25 modes, std 0.05) or "ring" (8 modes, std 0.02)
        "loss": "non_saturating",
        "z_dim": 2,
        "gen_hidden": (32, 32),
        "disc_hidden": (32, 32),
        "batch": 64,
        "steps": 800,
        "eval_every": 200,
        "eval_samples": 2500,
        "min_count": 20,  # high-quality samples a mode needs to count as covered
        "entropy_weight": 0.1,
        # model name -> components T (1: the plain GAN)
        "models": {"gan": 1, "mix": 5},
        "cells": "",  # comma-separated "<model>__<optimizer>" to run a subset; "": all
        # optimizer name -> optimizers.create keyword arguments
        "optimizers": {
            "adam": {"name": "altgd", "transform_x": adam, "transform_y": adam,
                     "n_disc": 1, "order": "disc_first"},
            "acgd": {"name": "acgd", "lr_x": 1e-3, "lr_y": 1e-3, "tol": 1e-5,
                     "max_iter": 10},
        },
        "nn_distance": {"measure": "gan", "critic": "mlp", "hidden": (64, 64), "clip": 0.0,
                        "steps": 300, "lr": 1e-3, "batch": 256, "held_out": 0.5},
        "quick": False,
        "quick_settings": {"num_seeds": 2, "chunk_seeds": 2, "steps": 40, "eval_every": 20,
                           "eval_samples": 400, "batch": 32, "gen_hidden": (8,),
                           "disc_hidden": (8,), "nn_distance": {"steps": 20, "hidden": (8,),
                           "measure": "gan", "critic": "mlp", "clip": 0.0, "lr": 1e-3,
                           "batch": 64, "held_out": 0.5}},
    })
