"""Fedus et al. 2018, Experiment I (Sec. 4.1, Figs. 1, 3, 5): a 1-D Gaussian line in R^d.

Data `x = μ_r + w_r z`, z ~ N(0, σ²); an affine generator of the same form; a one-hidden-
layer ReLU discriminator; NS-GAN trained with alternating Adam steps, 5 discriminator
steps per generator step, from the "parallel lines" start of Fig. 1 (generator line
parallel to and disjoint from the data line, where Jensen-Shannon descent gets no
gradient). Writes results.json (final errors and the random-init reference),
metrics.npz (errors and diagnostics over time) and snapshots.png (Figs. 1/3).

    python experiments/run.py --config=experiments/synthetic_manifold.py --workdir=runs/exp1
    python experiments/run.py --config=experiments/synthetic_manifold.py --config.quick=True
    python experiments/run.py --config=experiments/synthetic_manifold.py \
        --config.model=gan_gp --config.init=random --config.optimizer.name=acgd

Runtime (measured on 2 shared CPU cores): NS-GAN runs ~0.3 ms per step with n_disc = 5
(GAN-GP/DRAGAN-NS ~1.2 ms), so the paper's 200k steps take 1-4 min after a ~40 s
compile; quick=True (5k steps) ~45 s, mostly compilation. A GPU does not help one run
this small; it helps the sweeps.

Defaults the paper does not publish, each with its reason:
- dim = 10: a line is a measure-zero, "sharp" manifold and random lines are disjoint,
  yet 1000-seed sweeps stay cheap; Fig. 11's sweep varies it.
- hidden = 32: a discriminator far wider than the generator (d + d·k parameters) with
  (d + 2)·32 + 1 = 385 parameters at d = 10: "higher complexity than the generator".
- batch = 64: the batch size of the paper's real-data experiments (and DCGAN's).
- sigma = 1, mean_std = 1, direction_std = 1: μ ~ N(0, I), w ~ N(0, I/d), so the data
  line has unit spread along it whatever d is, and means sit ~√(2d) apart at random init.
- optimizer: Adam with b1 = 0.5, b2 = 0.999 (the paper's real-data setting), lr = 1e-3
  (mid-grid of the lr sweep; the paper's 2e-4 needs far more than 5k steps to move a
  mean ~4 units), n_disc = 5 and 200k steps as in the paper.
- parallel_offset = 3: the generator line starts 3 data standard deviations away.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.runner = "synthetic"
    config.quick = False
    # Applied over the fields above when quick=True (a run of seconds on a laptop CPU).
    config.quick_settings = ml_collections.ConfigDict(dict(steps=5_000, log_every=250))

    config.seed = 0  # base seed; run i of a sweep uses fold_in(key(seed), i)
    config.seed_index = 0  # which run of the sweep this single run reproduces
    config.dtype = "float32"

    config.dim = 10
    config.latent_dim = 1  # generator latent dimension: 1 (Exp I) or 3 (Exp II)
    config.sigma = 1.0
    config.mean_std = 1.0
    config.direction_std = 1.0
    config.hidden = 32
    config.batch = 64

    # Fedus model: ns, minimax, wgan (unclipped), wgan_clip, wgan_gp, gan_gp, dragan_ns
    config.model = "ns"
    config.penalty_weight = 10.0  # λ of wgan_gp, gan_gp, dragan_ns
    # DRAGAN perturbation x + scale·std(x)·u, u ~ U[-1, 1] (see penalties.dragan_points).
    config.dragan = ml_collections.ConfigDict(dict(scale=0.5, noise="uniform", std="global"))
    # c of model "wgan_clip" (Arjovsky et al.'s 0.01): its critic is clipped to [-c, c]
    # after every critic update. Unused by the other models ("wgan" is unclipped, ICR's
    # "WGAN loss with no regularisation").
    config.weight_clip = 0.01

    config.init = "parallel"  # "random" or "parallel" (Fig. 1)
    config.parallel_offset = 3.0

    config.optimizer = ml_collections.ConfigDict()
    config.optimizer.name = "altgd"
    config.optimizer.lr = 1e-3
    config.optimizer.n_disc = 5  # used by alternating optimizers only (see synthetic_run)
    config.optimizer.transform = ml_collections.ConfigDict(dict(name="adam", b1=0.5, b2=0.999))
    # Extra keyword arguments of the optimizer (e.g. max_iter=20 for cgd/acgd).
    config.optimizer.options = ml_collections.ConfigDict()

    config.steps = 200_000
    config.log_every = 1_000
    return config
