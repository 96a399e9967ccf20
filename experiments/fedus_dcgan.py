"""Fedus et al. 2018 real-data grid: DCGAN with NS, GAN-GP, DRAGAN-NS or WGAN-GP.

Reproduces the real-data experiments of Fedus et al., *Many paths to equilibrium: GANs do
not need to decrease a divergence at every step* (Sec. 4, Fig. 8, 9 and 15-17): the DCGAN
of Radford et al. (`models.registry` "dcgan", batch norm in both networks) on Color MNIST,
CelebA (64x64) or CIFAR-10, trained with Adam, batch 64, inputs scaled to [-1, 1], λ = 10;
5 discriminator steps per generator step for WGAN-GP only, 1 for the others; 100k
generator steps on Color MNIST, 200k on CelebA and CIFAR-10. Of their 27-point grid per
model (lr_D, lr_G ∈ {1e-4, 2e-4, 3e-4}; z ∈ {10, 50, 75} on Color MNIST, {100, 128, 150}
otherwise) this is the centre, lr 2e-4 and z = 50 / 128; sweep the rest with overrides.
The text extraction lost Adam's betas; these are DCGAN's (0.5, 0.999).

Parametrised: `dataset` ∈ {color_mnist, celeb_a, cifar10}, `model` ∈ {ns, gan_gp,
dragan_ns, wgan_gp} (Fedus et al.'s names; `objectives.FEDUS_MODELS` maps them to a loss
and penalty):

    python experiments/run.py --config=experiments/fedus_dcgan.py:dataset=celeb_a,model=gan_gp \\
        --workdir=runs/fedus_celeb_a_gan_gp
    python experiments/run.py --config=experiments/fedus_dcgan.py:dataset=color_mnist,model=dragan_ns \\
        --config.optimizer.transform_y.lr=1e-4

Expect (their Fig. 15-17): GAN-GP and DRAGAN-NS robust across the grid, NS prone to mode
collapse, WGAN-GP failing on CelebA for some learning rates. Needs the dataset prepared for
tfds (docs/usage.md, "Datasets"). Runtime: a GPU job (100k-200k steps; not yet timed); on a CPU
use it to check the pipeline only (tens of seconds per step with the penalties; see
benchmarks/bench_train.py for the similar CIFAR-10 models).
"""

from gan_dynamics.objectives import fedus_model
from gan_dynamics.runners.train_config import adam_altgd, default_config, set_loss

DATASETS = {  # name -> (image size, latent size, generator steps)
    "color_mnist": (32, 50, 100_000),
    "celeb_a": (64, 128, 200_000),
    "cifar10": (32, 128, 200_000),
}
MODELS = ("ns", "gan_gp", "dragan_ns", "wgan_gp")


def _parse(arg: str) -> dict[str, str]:
    options = {"dataset": "cifar10", "model": "gan_gp"}
    for item in filter(None, (arg or "").split(",")):
        key, sep, value = item.partition("=")
        if not sep or key not in options:
            raise ValueError(f"fedus_dcgan.py takes dataset=...,model=...; got {item!r}.")
        options[key] = value
    if options["dataset"] not in DATASETS:
        raise ValueError(f"dataset={options['dataset']!r}: choose one of {list(DATASETS)}.")
    if options["model"] not in MODELS:
        raise ValueError(f"model={options['model']!r}: choose one of {list(MODELS)}.")
    return options


def get_config(arg: str = ""):
    options = _parse(arg)
    image_size, z_dim, steps = DATASETS[options["dataset"]]
    spec = fedus_model(options["model"])
    config = default_config()
    config.data.name = options["dataset"]
    config.data.batch_size = 64
    config.model = {"name": "dcgan", "image_size": image_size, "z_dim": z_dim,
                    "width": 64, "channels": 3}
    set_loss(config, spec.loss, penalty=spec.penalty, weight=10.0)  # none of MODELS clips
    n_disc = 5 if options["model"] == "wgan_gp" else 1
    config.optimizer = adam_altgd(lr=2e-4, b1=0.5, b2=0.999, n_disc=n_disc)
    config.train.num_steps = steps
    return config
