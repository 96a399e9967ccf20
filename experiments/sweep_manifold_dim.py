"""Fedus et al. 2018, Fig. 11 (Sec. 4.4): final error vs dimension d at a fixed lr.

Exp II's overcomplete generator (3 latent directions) on Exp I's 1-D data line, as the
paper's Fig. 11 caption says; seeds x d, one compiled program per d (shapes change),
seeds sharded over all devices. Same models and optimizers as sweep_manifold_lr.py, each
at the fixed lr `config.optimizers.<name>.lr`.

    python experiments/run.py --config=experiments/sweep_manifold_dim.py --workdir=runs/dim
    python experiments/run.py --config=experiments/sweep_manifold_dim.py --config.quick=True
    python experiments/plots.py --workdir=runs/dim

Runtime (2 CPU cores): full setting as for the lr sweep (weeks of CPU); quick=True (16
seeds, 1k steps, d in 2, 10, 50, NS/GAN-GP under AltGD, 6 programs) ~5 min (estimate
from the lr sweep's timings; not run for docs/experiments.md).
d grid 2 .. 100: from the plane of Fig. 1 to well past the default d = 10.
"""

import ml_collections

from experiments import sweep_manifold_lr


def get_config() -> ml_collections.ConfigDict:
    config = sweep_manifold_lr.get_config()
    config.sweep = "dim"
    config.latent_dim = 3
    config.dims = (2, 5, 10, 20, 50, 100)
    config.quick_settings = ml_collections.ConfigDict(dict(
        num_seeds=16, steps=1_000, log_every=250, dims=(2, 10, 50),
        models="ns,gan_gp", run_optimizers="altgd"))
    return config
