"""Dirac-GAN (Mescheder, Geiger & Nowozin 2018, Sec. 2.2).

Data at 0, generator at θ, discriminator D(x) = ψx, standard GAN loss
L(θ, ψ) = φ(ψθ) + φ(0), φ(t) = -log(1 + e^{-t}); start (θ, ψ) = (1, 1), step size 0.1.
Reproduces: simultaneous gradient descent spirals out (the equilibrium's linearisation
is a centre, SimGD's eigenvalues have modulus (1 + h²/4)^½ > 1), alternating gradient
descent cycles on a bounded orbit without converging, and the R1 penalty γ/2 ψ² makes
both converge (γ = 0.3: a stable focus; γ = 1 is the critical damping 2φ'(0)). CGD and
ACGD on the unpenalised game for comparison. Writes results.json, distance.png and
trajectories.png (the paths in the (θ, ψ) plane, as Mescheder et al. draw them).

    python experiments/run.py --config=experiments/dirac_gan.py --workdir=runs/dirac_gan
    python experiments/run.py --config=experiments/dirac_gan.py --config.game.loss=wgan

Runtime: ~25 s on a 2-core CPU (measured, mostly compilation: one per entry);
GPU not measured (scalar game, latency-bound: expect no speed-up).
"""

from ml_collections import config_dict

from gan_dynamics.runners.toy_run import default_config, sgd_players

LR = 0.1


def get_config():
    config = default_config()
    config.game.name = "dirac_gan"
    config.game.loss = "minimax"
    config.game.r1_gamma = config_dict.placeholder(float)  # None: no penalty
    config.game.theta0 = 1.0
    config.game.psi0 = 1.0
    config.game.init_noise = 0.0
    config.steps = 1000
    config.optimizers.simgd = sgd_players(LR, LR)
    config.optimizers.altgd = sgd_players(LR, LR)
    config.optimizers.simgd_r1_0p3 = {"optimizer": "simgd", **sgd_players(LR, LR),
                                      "game": {"r1_gamma": 0.3}}
    config.optimizers.simgd_r1_1 = {"optimizer": "simgd", **sgd_players(LR, LR),
                                    "game": {"r1_gamma": 1.0}}
    config.optimizers.altgd_r1_0p3 = {"optimizer": "altgd", **sgd_players(LR, LR),
                                      "game": {"r1_gamma": 0.3}}
    config.optimizers.cgd = {"lr_x": LR, "lr_y": LR, "tol": 1e-12, "atol": 0.0,
                             "max_iter": 20}
    config.optimizers.acgd = {"lr_x": LR, "lr_y": LR, "beta": 0.99, "eps": 1e-5,
                              "tol": 1e-12, "atol": 0.0, "max_iter": 20}
    config.plot_plane = True
    config.plot_radius = 3.0
    return config
