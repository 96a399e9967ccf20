"""CIFAR-10, saturating (minimax) GAN loss trained by ACGD (ICR comparison).

Schaefer, Zheng & Anandkumar 2020 (ICR, CIFAR-10 experiments) train the original
zero-sum GAN loss of Goodfellow et al. 2014 with ACGD and report that it trains where
Adam on the same loss struggles (`cifar_gan_adam.py`). Settings as `cifar_wgan_cgd.py`
with the minimax loss (zero-sum: CG solve).

    python experiments/run.py --config=experiments/cifar_gan_cgd.py --workdir=runs/cifar_gan_cgd

Needs CIFAR-10 prepared for tfds (docs/usage.md, "Datasets"). Runtime: as cifar_wgan_cgd.py.
"""

from gan_dynamics.runners.train_config import default_config, set_loss


def get_config():
    config = default_config()
    set_loss(config, "minimax")
    return config
