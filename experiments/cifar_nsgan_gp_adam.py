"""CIFAR-10, non-saturating GAN with the interpolation gradient penalty (GAN-GP), Adam.

The GAN-GP of Fedus et al. 2018 (Many paths to equilibrium, Sec. 2.3 and 4) on the ICR
CIFAR-10 DCGAN pair, as a further Adam baseline for the ICR grid: NS generator loss,
discriminator cross-entropy plus λ E(‖∇D(x̂)‖ - 1)² at interpolates, λ = 10; one
discriminator step per generator step (Fedus et al. used n_disc = 5 only for WGAN-GP);
Adam lr 1e-4, betas (0.5, 0.9).

    python experiments/run.py --config=experiments/cifar_nsgan_gp_adam.py --workdir=runs/cifar_nsgan_gp_adam

Needs CIFAR-10 prepared for tfds (docs/usage.md, "Datasets"). Runtime: under
cifar_wgan_gp_adam.py per generator step (one critic step instead of five); a GPU job.
"""

from gan_dynamics.runners.train_config import adam_altgd, default_config, set_loss


def get_config():
    config = default_config()
    set_loss(config, "non_saturating", penalty="gan_gp", weight=10.0)
    config.optimizer = adam_altgd(lr=1e-4, b1=0.5, b2=0.9, n_disc=1)
    return config
