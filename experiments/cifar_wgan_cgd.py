"""CIFAR-10, WGAN loss with no gradient penalty, trained by ACGD: the ICR flagship.

Reproduces the best CIFAR-10 setting of Schaefer, Zheng & Anandkumar 2020 (Implicit
competitive regularization in GANs, CIFAR-10 experiments, "WGAN loss + ACGD"): the DCGAN-like
pair of their code (`models.registry` "icr_dcgan", github.com/devzhk/
Implicit-Competitive-Regularization), batch 64, z = 128, ACGD with lr 1e-4 for both players,
β = 0.99, ε = 1e-5, CG to relative residual 1e-6, no penalty and no weight clipping. The
paper's claim: this trains stably and beats Adam WGAN-GP in Inception Score
(`cifar_wgan_gp_adam.py`); Adam on the same loss without penalty does not
(`cifar_wgan_adam.py`). ACGD's CG solve is capped at 100 iterations per step (`max_iter`);
`solver_iterations` in metrics.jsonl shows how many it used.

    python experiments/run.py --config=experiments/cifar_wgan_cgd.py --workdir=runs/cifar_wgan_cgd

Needs CIFAR-10 prepared for tfds (see docs/usage.md, "Datasets"). Runtime: benchmarks/bench_train.py
measured 64 s per generator step on a 2-core CPU (8.5 CG iterations per step early in
training; 1.35x the time of an Adam WGAN-GP generator step), so on a CPU this only checks
the pipeline;
200k steps are a GPU job (not yet timed on one).
"""

from gan_dynamics.runners.train_config import default_config, set_loss


def get_config():
    config = default_config()
    config.data.name = "cifar10"
    config.data.batch_size = 64
    config.model.name = "icr_dcgan"
    config.model.z_dim = 128
    set_loss(config, "wgan")
    config.optimizer.name = "acgd"
    config.optimizer.lr_x = 1e-4
    config.optimizer.lr_y = 1e-4
    return config
