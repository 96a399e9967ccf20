"""Covariance estimation game (Schaefer & Anandkumar 2019; Daskalakis et al. 2018).

Noiseless WGAN for a covariance: generator x = V (d x d, samples Vz), critic
y = W (d x d, D(x) = xᵀWx), f(V, W) = ⟨W, Σ - VVᵀ⟩, V minimises, W maximises; Σ = UUᵀ
with U standard normal, d = 20. Start: the CGD authors' perturbed equilibrium
V0 = U + B, W0 = AAᵀ (A, B uniform on [-½, ½]). Distance to equilibrium
(‖VVᵀ - Σ‖²_F + ‖W_sym‖²_F)^½. Reproduces the comparison of their covariance figure
at their step sizes η ∈ {0.025, 0.1, 0.4}: CGD is stable at every step size and
converges faster with larger ones, while SimGD, OGDA, extragradient, consensus
optimisation and SGA diverge at η = 0.1 (so η = 0.4 is run for CGD only); the
grad-evals column is their x-axis (forward passes, mixed products included). ACGD at
η = 0.025 for comparison.

    python experiments/run.py --config=experiments/covariance.py --workdir=runs/covariance
    python experiments/run.py --config=experiments/covariance.py --config.steps=5000

Runtime: ~75 s on a 2-core CPU (measured; one compilation per entry, 2000 steps
each); GPU not measured (d = 20 is latency-bound: expect no speed-up).
"""

from gan_dynamics.runners.toy_run import default_config, sgd_players

# The CGD paper's step sizes are 0.005, 0.025, 0.1 and 0.4; 0.005 is left out here (every
# method is stable and slow there: add it with --config.optimizers.NAME=... if needed).
STEP_SIZES = {"0p025": 0.025, "0p1": 0.1, "0p4": 0.4}
SOLVE = {"tol": 1e-6, "atol": 1e-12, "max_iter": 200}


def get_config():
    config = default_config()
    config.game.name = "covariance"
    config.game.dim = 20
    config.game.target_seed = 0
    config.game.init_scale = 1.0
    config.steps = 2000
    for tag, lr in STEP_SIZES.items():
        config.optimizers[f"cgd_{tag}"] = {"optimizer": "cgd", "lr_x": lr, "lr_y": lr, **SOLVE}
        if lr > 0.1:
            continue  # the first-order methods already diverge at 0.1
        lrs = {"lr_x": lr, "lr_y": lr}
        config.optimizers[f"simgd_{tag}"] = {"optimizer": "simgd", **sgd_players(lr, lr)}
        config.optimizers[f"ogda_{tag}"] = {"optimizer": "ogda", **lrs}
        config.optimizers[f"extragradient_{tag}"] = {"optimizer": "extragradient", **lrs}
        config.optimizers[f"consensus_{tag}"] = {"optimizer": "consensus", **lrs, "gamma": 1.0}
        config.optimizers[f"sga_{tag}"] = {"optimizer": "sga", **lrs, "lam": 1.0}
    config.optimizers.acgd_0p025 = {"optimizer": "acgd", "lr_x": 0.025, "lr_y": 0.025,
                                    "beta": 0.99, "eps": 1e-5, **SOLVE}
    return config
