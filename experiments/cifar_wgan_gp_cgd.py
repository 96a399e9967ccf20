"""CIFAR-10, WGAN-GP trained by ACGD (ICR comparison: does the penalty still help?).

Schaefer, Zheng & Anandkumar 2020 (ICR, CIFAR-10 experiments) also train WGAN-GP with
ACGD; they report that adding the penalty to ACGD does not improve on WGAN + ACGD without
it. Settings as `cifar_wgan_cgd.py` plus the interpolation penalty, λ = 10. The penalty
makes the game general-sum, so ACGD solves its non-symmetric system with GMRES.

    python experiments/run.py --config=experiments/cifar_wgan_gp_cgd.py --workdir=runs/cifar_wgan_gp_cgd

Needs CIFAR-10 prepared for tfds (docs/usage.md, "Datasets"). Runtime: more than
cifar_wgan_cgd.py per step (the penalty's double backward enters every mixed product); a
GPU job.
"""

from gan_dynamics.runners.train_config import default_config, set_loss


def get_config():
    config = default_config()
    set_loss(config, "wgan", penalty="wgan_gp", weight=10.0)
    return config
