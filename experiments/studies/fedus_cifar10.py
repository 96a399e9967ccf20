"""Fedus et al. 2018's real-data question on CIFAR-10 as a study: NS-GAN with and without
a gradient penalty over their learning-rate grid, 3 seeds.

The CIFAR-10 version of `fedus_digits.py`: the DCGAN of `experiments/fedus_dcgan.py`
(Radford et al., batch norm, width 64, batch 64, z = 128, Adam betas (0.5, 0.999), one
discriminator step), NS-GAN and GAN-GP (λ = 10), both players' learning rate in
{1e-4, 2e-4, 3e-4} (Fedus et al.'s grid; they also vary z and the two rates
separately), 200k generator steps, FID and Inception Score every 20k steps on 10k
samples (converted Inception weights needed, README "Sample metrics") and the critic.

    python experiments/run.py --config=experiments/studies/fedus_cifar10.py --workdir=runs/studies/fedus_cifar10 \\
        --config.launcher=slurm --config.slurm.partition=<gpu partition> --config.slurm.gpus_per_task=1

A GPU or cluster study; it was not run here. Cost per task: this DCGAN was not
benchmarked; the nearest measured step (README "Benchmarks": AltGD with Adam on the ICR
DCGAN, batch 64, an idle 2-core CPU) took 0.22 s, and the GAN-GP penalty's double
backward roughly doubles a critic step, so expect roughly 12 (NS) to 25 (GAN-GP)
CPU-hours per task of 200k steps; no GPU was measured. Needs CIFAR-10 prepared for tfds.
"""

import importlib.util
import os

from gan_dynamics.runners import study
from gan_dynamics.runners.train_config import adam_altgd

LEARNING_RATES = {"lr1e-4": 1e-4, "lr2e-4": 2e-4, "lr3e-4": 3e-4}


def _icr_digits():
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location("icr_digits", os.path.join(here, "icr_digits.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def get_config():
    icr = _icr_digits()
    base = icr.load_experiment("fedus_dcgan").get_config("dataset=cifar10,model=ns")
    base.train.eval_every = 20_000
    base.eval.metrics = "inception_score,fid,critic"
    base.eval.num_samples = 10_000
    config = study.default_config(base)
    config.axes = (
        study.axis("model", {"ns": {"loss": icr.loss("non_saturating")},
                             "gan_gp": {"loss": icr.loss("non_saturating", "gan_gp")}}),
        study.axis("lr", {name: {"optimizer": adam_altgd(lr=lr, b1=0.5, b2=0.999,
                                                         n_disc=1).to_dict()}
                          for name, lr in LEARNING_RATES.items()}),
    )
    config.seeds = 3
    config.parallel_tasks = 18
    config.slurm.time_min = 24 * 60
    config.slurm.gpus_per_task = 1
    config.slurm.cpus_per_task = 8
    config.summary.metrics = ("eval/fid", "eval/inception_score", "eval/critic")
    config.summary.compare = ("gan_gp__lr2e-4", "ns__lr2e-4")
    return config
