"""ICR quadratic game min_x max_y x² + 10xy + y²: the step-size ratio decides SimGD.

Reproduces the strongly coupled quadratic example of Schaefer, Zheng & Anandkumar 2020
(Implicit competitive regularization in GANs): SimGD with step sizes
(η_x, η_y) = (0.09, 0.01) converges, (0.03, 0.03) spirals out slowly and (0.01, 0.09)
diverges. SimGD's update is linear here, I - diag(η) J with J = [[2, 10], [-10, -2]]
(rows: ∇x f, ∇y(-f)); its spectral radius is 0.9625, 1.0423 and 1.1164 for the three
pairs, which the rate/step column reproduces. CGD and ACGD run with the same total step
size for comparison. Start x0 = y0 = 0.5, 200 steps.

    python experiments/run.py --config=experiments/icr_quadratic.py --workdir=runs/icr_quadratic

Runtime: ~30 s on a 2-core CPU (measured, mostly compilation: one per entry);
GPU not measured (scalar game, latency-bound: expect no speed-up).
"""

from gan_dynamics.runners.toy_run import default_config, sgd_players


def get_config():
    config = default_config()
    config.game.name = "icr_quadratic"
    config.game.a = 1.0
    config.game.b = 10.0
    config.game.c = 1.0
    config.game.x0 = 0.5
    config.game.y0 = 0.5
    config.game.init_noise = 0.0
    config.steps = 200
    for name, (lr_x, lr_y) in {"simgd_09_01": (0.09, 0.01), "simgd_03_03": (0.03, 0.03),
                               "simgd_01_09": (0.01, 0.09)}.items():
        config.optimizers[name] = {"optimizer": "simgd", **sgd_players(lr_x, lr_y)}
    config.optimizers.cgd_03_03 = {"optimizer": "cgd", "lr_x": 0.03, "lr_y": 0.03,
                                   "tol": 1e-12, "atol": 0.0, "max_iter": 20}
    config.optimizers.cgd_09_01 = {"optimizer": "cgd", "lr_x": 0.09, "lr_y": 0.01,
                                   "tol": 1e-12, "atol": 0.0, "max_iter": 20}
    config.optimizers.acgd = {"lr_x": 0.03, "lr_y": 0.03, "beta": 0.99, "eps": 1e-5,
                              "tol": 1e-12, "atol": 0.0, "max_iter": 20}
    config.plot_plane = True
    config.plot_radius = 1.5
    return config
