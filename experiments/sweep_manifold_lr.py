"""Fedus et al. 2018, Fig. 10 (Sec. 4.4): final error vs learning rate, seeds x lr, Exp I.

Every (model, optimizer) cell trains `num_seeds` seeds at every learning rate of that
optimizer's grid from a random start, in one compiled program (vmap over seeds and the
traced lr, seeds sharded over all devices, in chunks), and reports the final squared
parameter error and W2² with 95% bootstrap intervals against the random-init reference.
Models: NS, minimax, GAN-GP, DRAGAN-NS, WGAN-GP and WGAN with no penalty and no clipping
(the ICR question); optimizers: alternating Adam with n_disc = 5 (the paper's setting),
ACGD and CGD (one joint update per step; see gan_dynamics/runners/synthetic_run.py).

    python experiments/run.py --config=experiments/sweep_manifold_lr.py --workdir=runs/lr
    python experiments/run.py --config=experiments/sweep_manifold_lr.py --config.quick=True
    python experiments/plots.py --workdir=runs/lr      # sweep.png

Runtime (2 CPU cores): the full setting (1000 seeds, 200k steps, 6 models x 3 optimizers)
is weeks of CPU (benchmarks/bench_sweep.py projects one cell at one lr); run it on a GPU
or restrict models, optimizers and lrs. quick=True (32 seeds, 1k steps, lr 3e-3..3e-2,
NS/GAN-GP/DRAGAN-NS under AltGD) took 7 min on 2 heavily shared CPU cores, about a
third of it compiling one program per cell.

Grids (the paper does not publish its own): Adam and ACGD share 1e-4 .. 1e-2 in half
decades around DCGAN's 2e-4 .. Adam's 1e-3; CGD takes plain gradient steps, so its grid
is in step-size units, 3e-3 .. 3e-1 (our 500-step runs: best near 0.1, heavy tails for
NS at 0.3). Other defaults as in synthetic_manifold.py.
"""

import ml_collections

from experiments import synthetic_manifold


def optimizer_settings() -> ml_collections.ConfigDict:
    """Per-optimizer lr grid (lrs), fixed lr (for the d sweep) and options."""
    adam = dict(name="adam", b1=0.5, b2=0.999)
    # Solver bound: under vmap every seed waits for the slowest solve; 20 iterations of
    # CG/GMRES reach the tolerance on these small games in most steps.
    solver = dict(tol=1e-5, max_iter=20)
    return ml_collections.ConfigDict({
        "altgd": dict(lrs=(1e-4, 3e-4, 1e-3, 3e-3, 1e-2), lr=1e-3, n_disc=5, transform=adam,
                      options={}),
        "simgd": dict(lrs=(1e-4, 3e-4, 1e-3, 3e-3, 1e-2), lr=1e-3, n_disc=1, transform=adam,
                      options={}),
        "acgd": dict(lrs=(1e-4, 3e-4, 1e-3, 3e-3, 1e-2), lr=1e-3, n_disc=1, transform={},
                     options=solver),
        "cgd": dict(lrs=(3e-3, 1e-2, 3e-2, 1e-1, 3e-1), lr=1e-1, n_disc=1, transform={},
                    options=solver),
    })


def get_config() -> ml_collections.ConfigDict:
    config = synthetic_manifold.get_config()
    config.runner = "sweep"
    config.sweep = "lr"
    config.init = "random"
    config.models = "ns,minimax,gan_gp,dragan_ns,wgan_gp,wgan"
    config.run_optimizers = "altgd,acgd,cgd"
    config.optimizers = optimizer_settings()
    config.num_seeds = 1000
    # Runs (seed x lr pairs) vmapped together, groups run one after another on each
    # device: bounds the step's memory and keeps it in cache (docs/sweeps.md).
    config.chunk_seeds = 1000
    config.chunk_steps = 0  # steps per chunk (progress line, stop check); 0: ~100 chunks
    config.checkpoint_every = 10  # chunks between checkpoints (and on SIGTERM/SIGINT)
    config.num_devices = 0  # 0: shard seeds over every device (of every process)
    # Several processes (jax.distributed, as the image runner's): docs/sweeps.md.
    config.parallel = ml_collections.ConfigDict(dict(
        distributed=False,  # call jax.distributed.initialize() before anything else
        coordinator_address="",  # "" / -1: detected from the cluster environment
        num_processes=-1, process_id=-1))
    config.dims = (10,)  # used by the dim sweep only
    # Table (2) of docs/experiments.md: NS vs the two penalties under AltGD, 32 seeds, 1k steps.
    config.quick_settings = ml_collections.ConfigDict(dict(
        num_seeds=32, steps=1_000, log_every=250, models="ns,gan_gp,dragan_ns",
        run_optimizers="altgd", optimizers={"altgd": {"lrs": (3e-3, 1e-2, 3e-2)}}))
    return config
