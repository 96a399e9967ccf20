"""The one entry point of gan-dynamics: run the experiment a config file describes.

    python experiments/run.py --config=experiments/bilinear.py --workdir=runs/bilinear
    python experiments/run.py --config=experiments/cifar_wgan_cgd.py --config.optimizer.lr_x=2e-4

Every config file defines `get_config()` and names its `runner`, the function that runs
it (table below). Overrides use `--config.a.b=value`; unknown keys fail before anything is
compiled. `--workdir` defaults to `runs/<config file name>`.
"""

from __future__ import annotations

import importlib
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

# Allow `python experiments/run.py` from a checkout without installing experiments/.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

RUNNERS = {
    "toy_game": "gan_dynamics.runners.toy_run:run",
    "synthetic": "gan_dynamics.runners.synthetic_run:run",
    "sweep": "gan_dynamics.runners.sweep:run",
    "image": "gan_dynamics.runners.train:run",
}

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Output directory (default runs/<config>).")


def resolve_runner(name: str):
    """The `run(config, workdir)` function registered under `name`."""
    if name not in RUNNERS:
        raise ValueError(f"config.runner={name!r} is not one of {sorted(RUNNERS)}.")
    module, attr = RUNNERS[name].split(":")
    return getattr(importlib.import_module(module), attr)


def default_workdir(config_path: str) -> str:
    stem = os.path.splitext(os.path.basename(config_path.split(":")[0]))[0]
    return os.path.join("runs", stem)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    config = _CONFIG.value
    if config is None:
        raise app.UsageError("Pass --config=experiments/<experiment>.py")
    if "runner" not in config:
        raise app.UsageError(f"{flags.FLAGS['config'].config_filename} sets no `runner` "
                             f"(one of {sorted(RUNNERS)}).")
    # Progress goes to stdout; absl INFO (Orbax writes a line per checkpoint operation)
    # would bury it. --verbosity=0 brings it back.
    if flags.FLAGS["verbosity"].using_default_value:
        logging.set_verbosity(logging.WARNING)
    workdir = _WORKDIR.value or default_workdir(flags.FLAGS["config"].config_filename)
    os.makedirs(workdir, exist_ok=True)
    resolve_runner(config.runner)(config, workdir)


if __name__ == "__main__":
    app.run(main)
