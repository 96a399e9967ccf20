"""ICR's CIFAR-10 comparison as a study: WGAN + ACGD without a penalty against Adam, 5 seeds.

The CIFAR-10 version of `icr_digits.py` (same four models and question; Schaefer, Zheng &
Anandkumar 2020, CIFAR-10 experiments) on the ICR DCGAN pair of
`experiments/cifar_wgan_cgd.py` (batch 64, z = 128) with the CIFAR-10 configs'
hyperparameters: ACGD lr 1e-4 (<= 100 CG iterations); Adam 1e-4, betas (0.5, 0.9), 5
critic steps for the WGAN-GP and clipped-WGAN rows; Adam 2e-4, betas (0.5, 0.999), 1
step for the non-saturating GAN. 200k generator steps, scored every 20k steps on 10k
samples by the Inception Score and FID (ICR's numbers; they need the converted
Inception weights, README "Sample metrics") and the independent critic.

    python experiments/run.py --config=experiments/studies/icr_cifar10.py --workdir=runs/studies/icr_cifar10 \\
        --config.launcher=slurm --config.slurm.partition=<gpu partition> --config.slurm.gpus_per_task=1

A GPU or cluster study; it was not run here. Cost per task, from the benchmarks
(README "Benchmarks", one training step on an idle 2-core CPU; no GPU was measured):
ACGD 1.39 s per generator step (8.5 CG iterations, 21 gradient evaluations), WGAN-GP
Adam 0.88 s (6 gradient evaluations), so 200k steps are about 77 and 49 CPU-hours; the
clipped WGAN (no penalty) costs less than WGAN-GP, the NS GAN (one critic step, no
penalty) about a quarter of it. Needs CIFAR-10 prepared for tfds (README "Datasets").
"""

import importlib.util
import os

from gan_dynamics.runners import study

STEPS = 200_000


def _icr_digits():
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location("icr_digits", os.path.join(here, "icr_digits.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def get_config():
    icr = _icr_digits()
    base = icr.load_experiment("cifar_wgan_cgd").get_config()
    base.train.num_steps = STEPS
    base.train.eval_every = 20_000
    base.eval.metrics = "inception_score,fid,critic"
    base.eval.num_samples = 10_000
    config = study.default_config(base)
    acgd = dict(icr.MODELS["wgan_acgd"]["optimizer"], lr_x=1e-4, lr_y=1e-4, max_iter=100)
    config.axes = (study.axis("model", {
        "wgan_acgd": {"loss": icr.loss("wgan"), "optimizer": acgd},
        "wgan_gp_adam": icr.MODELS["wgan_gp_adam"],
        "wgan_clip_adam": icr.MODELS["wgan_clip_adam"],
        "ns_adam": icr.MODELS["ns_adam"],
    }),)
    config.seeds = 5
    config.parallel_tasks = 20
    config.slurm.time_min = 24 * 60  # a task stopped at its limit resumes on a rerun
    config.slurm.gpus_per_task = 1
    config.slurm.cpus_per_task = 8
    config.summary.metrics = ("eval/inception_score", "eval/fid", "eval/critic")
    config.summary.compare = ("wgan_acgd", "wgan_gp_adam")
    return config
