"""MIX+DCGAN on CIFAR-10 (Arora et al. 2017, Sec. 6, Table 1: "MIX+DCGAN (with 5 components)").

A mixture of 5 DCGAN generators and 5 DCGAN discriminators (`models.mix` over the
registry's "dcgan" at 32x32), trained on the mixture's exact payoff
Σ_ij w^G_i w^D_j F(u_i, v_j) with the entropy regulariser (weight 0.1) that keeps the
mixture weights from collapsing. The paper builds on the DCGAN of Huang et al. with its
hyperparameters and updates generators and discriminators alternately with Adam; it
publishes neither the learning rate nor the batch size, so these are DCGAN's
(Radford et al.: Adam lr 2e-4, β1 0.5, non-saturating loss), batch 64. The paper's
CIFAR-10 runs are conditioned on labels; this mixture is unconditional.

    python experiments/run.py --config=experiments/mix_dcgan_cifar.py --workdir=runs/mix_dcgan_cifar
    python experiments/run.py --config=experiments/mix_dcgan_cifar.py --config.model.components=1  # DCGAN

Needs CIFAR-10 prepared for tfds (docs/usage.md, "Datasets"). Cost per step: 5 generator
passes and 30 discriminator passes (5 on real data, 25 on the generators' samples) where
a DCGAN step has 1 and 2 (benchmarks/bench_mix.py); a GPU job.
"""

from gan_dynamics.runners.train_config import adam_altgd, default_config, set_loss


def get_config():
    config = default_config()
    config.model = {"name": "mix", "base": "dcgan", "components": 5, "entropy_weight": 0.1,
                    "image_size": 32, "z_dim": 100, "width": 64, "channels": 3}
    set_loss(config, "non_saturating")
    config.optimizer = adam_altgd(lr=2e-4, b1=0.5, b2=0.999, n_disc=1)
    config.data.batch_size = 64
    config.train.num_steps = 100_000
    return config
