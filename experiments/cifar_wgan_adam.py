"""CIFAR-10, WGAN loss with no penalty and no clipping, trained by Adam (ICR comparison).

The control of Schaefer, Zheng & Anandkumar 2020 (ICR, CIFAR-10 experiments) for
`cifar_wgan_cgd.py`: the same loss and model, but Adam instead of ACGD, with WGAN-GP's
Adam settings (lr 1e-4, betas (0.5, 0.9), 5 critic steps per generator step). Without a
penalty, clipping or competitive updates the critic is unconstrained; expect the losses to
grow in magnitude and sample quality to stall or collapse, which is the ICR paper's point.

    python experiments/run.py --config=experiments/cifar_wgan_adam.py --workdir=runs/cifar_wgan_adam

Needs CIFAR-10 prepared for tfds (docs/usage.md, "Datasets"). Runtime: less than
cifar_wgan_gp_adam.py (no penalty); a GPU job.
"""

from gan_dynamics.runners.train_config import adam_altgd, default_config, set_loss


def get_config():
    config = default_config()
    set_loss(config, "wgan")
    config.optimizer = adam_altgd(lr=1e-4, b1=0.5, b2=0.9, n_disc=5)
    return config
