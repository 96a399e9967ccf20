"""CIFAR-10, WGAN-GP trained by Adam: the ICR paper's main baseline.

Gulrajani et al. 2017 (Improved training of WGANs, Alg. 1; CIFAR-10 code
github.com/igul222/improved_wgan_training `gan_cifar.py`) as compared against in Schaefer,
Zheng & Anandkumar 2020 (ICR, CIFAR-10 experiments): WGAN loss plus the two-sided gradient
penalty at interpolates, λ = 10; Adam lr 1e-4, betas (0.5, 0.9) for both players; 5 critic
steps, each on a fresh batch, per generator step (AltGD); batch 64, z = 128. The model is
the ICR DCGAN pair so that only the loss and optimizer differ from `cifar_wgan_cgd.py`
(`--config.model.name=wgan_gp_cifar` gives the WGAN-GP code's own DIM=128 model).

    python experiments/run.py --config=experiments/cifar_wgan_gp_adam.py --workdir=runs/cifar_wgan_gp_adam

Needs CIFAR-10 prepared for tfds (docs/usage.md, "Datasets"). Runtime: benchmarks/bench_train.py
measured 48 s per generator step (5 critic steps with the penalty's double backward) on a
2-core CPU; a GPU job (not yet timed).
"""

from gan_dynamics.runners.train_config import adam_altgd, default_config, set_loss


def get_config():
    config = default_config()
    set_loss(config, "wgan", penalty="wgan_gp", weight=10.0)
    config.optimizer = adam_altgd(lr=1e-4, b1=0.5, b2=0.9, n_disc=5)
    return config
