"""Fedus et al. 2018, Experiment II (Sec. 4.2, Figs. 4, 6): overcomplete generator.

The data are Exp I's 1-D line; the generator has 3 latent directions,
`x = μ_g + W_g z`, W_g in R^{d x 3}, so it can represent a manifold of too high a
dimension and must learn to collapse two of its directions. Same defaults as
synthetic_manifold.py (read its docstring for their reasons), random start; the paper's
Fig. 4 shows NS-GAN collapsing from a poor start and the penalties fixing it: try
--config.model=gan_gp / dragan_ns.

    python experiments/run.py --config=experiments/synthetic_overcomplete.py --workdir=runs/exp2
    python experiments/run.py --config=experiments/synthetic_overcomplete.py --config.quick=True

Runtime: as synthetic_manifold.py (1-4 min for 200k steps on CPU, ~45 s quick).
"""

import ml_collections

from experiments import synthetic_manifold


def get_config() -> ml_collections.ConfigDict:
    config = synthetic_manifold.get_config()
    config.latent_dim = 3
    config.init = "random"
    return config
