"""MIX+WassersteinGAN on CIFAR-10 (Arora et al. 2017, Sec. 6, Table 1 and Fig. 4).

A mixture of 5 WGAN critics and 5 generators (`models.mix` over the registry's "dcgan"
at 32x32). The paper's base model and hyperparameters are Arjovsky et al.'s WGAN: the
Wasserstein loss, critic weights clipped to [-0.01, 0.01], RMSProp with lr 5e-5,
5 critic steps per generator step, batch 64, z = 100. Clipping applies to the critics'
network weights after every critic update, never to the mixture logits. Entropy
regulariser weight 0.1.

    python experiments/run.py --config=experiments/mix_wgan_cifar.py --workdir=runs/mix_wgan_cifar

Fig. 4 of the paper tracks the neural-net distance (the critic's Wasserstein estimate)
during training; `config.nn_distance` adds an independent estimate (a fresh clipped MLP
critic on held-out images, metrics/nn_distance.py) every `train.eval_every` steps.

Needs CIFAR-10 prepared for tfds (docs/usage.md, "Datasets"); a GPU job.
"""

import ml_collections

from gan_dynamics.runners.train_config import default_config, set_loss


def get_config():
    config = default_config()
    config.model = {"name": "mix", "base": "dcgan", "components": 5, "entropy_weight": 0.1,
                    "image_size": 32, "z_dim": 100, "width": 64, "channels": 3}
    set_loss(config, "wgan", weight_clip=0.01)
    rmsprop = {"name": "rmsprop", "lr": 5e-5}
    config.optimizer = ml_collections.ConfigDict(
        {"name": "altgd", "transform_x": dict(rmsprop), "transform_y": dict(rmsprop),
         "n_disc": 5, "order": "disc_first"})
    config.data.batch_size = 64
    config.train.num_steps = 100_000
    config.nn_distance = {"measure": "wgan", "critic": "mlp", "hidden": (512, 512),
                          "clip": 0.01, "steps": 2000, "num_samples": 4096}
    return config
