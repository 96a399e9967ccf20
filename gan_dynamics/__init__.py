"""gan-dynamics: GAN training as a two-player game, in JAX.

The layers, from the bottom up (docs/design.md):

- `game` (a `Game`: both players' losses as pure functions), `linalg` (mixed
  second-derivative products and pytree Krylov solvers) and `optimizers` (SimGD, AltGD,
  CGD, ACGD, extragradient, OGDA, consensus, SGA behind one interface) know nothing of
  GANs, images or files;
- `objectives`, `penalties`, `models`, `data` and `metrics` build GAN games and score them;
- `runners` (toy games, synthetic runs, sweeps, image training) are the only code that
  touches devices, configs and files; `experiments/run.py` is the command line.

The names below are the public entry points a user's own code starts from.
"""

from gan_dynamics.game import Game, general_sum_game, gradients, zero_sum_game
from gan_dynamics.optimizers import create as create_optimizer
from gan_dynamics.optimizers.base import GameOptimizer

__version__ = "0.2.0"

__all__ = [
    "Game",
    "GameOptimizer",
    "__version__",
    "create_optimizer",
    "general_sum_game",
    "gradients",
    "zero_sum_game",
]
