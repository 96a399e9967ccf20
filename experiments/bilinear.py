"""Bilinear game f = α·x·y: CGD contracts, SimGD spirals out, AltGD cycles.

Reproduces the bilinear example of Schaefer & Anandkumar 2019 (Competitive gradient
descent, bilinear experiment): η = 0.2, x0 = y0 = 0.5, 50 steps. CGD multiplies
‖(x, y)‖ by exactly (1 + η²α²)^-½ per step (‖z‖ = 0.26525, 3.2435e-4, 1.4613e-10 after
50 steps for α = 1, 3, 6); SimGD by (1 + η²α²)^½ (1.885, 1542, 3.42e9); AltGD (SGD, one
discriminator step) stays on a bounded orbit. Writes results.json, distance.png and
trajectories.png (the paths in the (x, y) plane).

    python experiments/run.py --config=experiments/bilinear.py --workdir=runs/bilinear
    python experiments/run.py --config=experiments/bilinear.py --config.game.alpha=3

Runtime: ~45 s on a 2-core CPU (measured, mostly compilation: one per optimizer);
GPU not measured (scalar game, latency-bound: expect no speed-up).
"""

from gan_dynamics.runners.toy_run import default_config, sgd_players

LR = 0.2


def get_config():
    config = default_config()
    config.game.name = "bilinear"
    config.game.alpha = 1.0
    config.game.dim = 1
    config.game.x0 = 0.5
    config.game.y0 = 0.5
    config.game.init_noise = 0.0
    config.steps = 50
    config.optimizers.simgd = sgd_players(LR, LR)
    config.optimizers.altgd = sgd_players(LR, LR)
    config.optimizers.extragradient = {"lr_x": LR, "lr_y": LR}
    config.optimizers.ogda = {"lr_x": LR, "lr_y": LR}
    config.optimizers.consensus = {"lr_x": LR, "lr_y": LR, "gamma": 1.0}
    config.optimizers.sga = {"lr_x": LR, "lr_y": LR, "lam": 1.0}
    config.optimizers.cgd = {"lr_x": LR, "lr_y": LR, "tol": 1e-12, "atol": 0.0,
                             "max_iter": 20}
    config.optimizers.acgd = {"lr_x": LR, "lr_y": LR, "beta": 0.99, "eps": 1e-5,
                              "tol": 1e-12, "atol": 0.0, "max_iter": 20}
    config.plot_plane = True
    config.plot_radius = 1.5
    return config
