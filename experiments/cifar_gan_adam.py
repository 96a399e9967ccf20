"""CIFAR-10, saturating (minimax) GAN loss trained by Adam (ICR comparison).

The Adam control for `cifar_gan_cgd.py` in Schaefer, Zheng & Anandkumar 2020 (ICR,
CIFAR-10 experiments): the zero-sum GAN loss, one discriminator step per generator step,
Adam lr 1e-4 and betas (0.5, 0.9) as in the WGAN-GP baseline (the ICR paper does not list
separate Adam settings for this loss; `--config.optimizer.transform_x.lr=2e-4` etc. give
DCGAN's). The saturating generator loss has vanishing gradients once the discriminator
wins; expect weak or collapsing samples.

    python experiments/run.py --config=experiments/cifar_gan_adam.py --workdir=runs/cifar_gan_adam

Needs CIFAR-10 prepared for tfds (docs/usage.md, "Datasets"). Runtime: well under
cifar_wgan_gp_adam.py per generator step (one critic step instead of five, no penalty); a
GPU job.
"""

from gan_dynamics.runners.train_config import adam_altgd, default_config, set_loss


def get_config():
    config = default_config()
    set_loss(config, "minimax")
    config.optimizer = adam_altgd(lr=1e-4, b1=0.5, b2=0.9, n_disc=1)
    return config
