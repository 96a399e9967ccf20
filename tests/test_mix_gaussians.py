"""The mixture-of-Gaussians runner: commands that run subsets of cells in one workdir add
up to one results.json (and curves.npz); earlier cells of other settings are refused."""

import importlib.util
import json
import os

import numpy as np
import pytest

from gan_dynamics.errors import UserError
from gan_dynamics.runners import mix_gaussians_run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(cells: str):
    spec = importlib.util.spec_from_file_location(
        "mix_gaussians", os.path.join(ROOT, "experiments", "mix_gaussians.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    config.update(config.quick_settings.to_dict())  # CPU-sized, as --config.quick=True
    config.update({"num_seeds": 1, "chunk_seeds": 1, "steps": 20, "eval_every": 20,
                   "cells": cells})
    config.models = {"gan": 1, "mix": 2}
    config.optimizers = {"adam": config.optimizers.adam.to_dict()}
    return config


def test_cell_subsets_in_one_workdir_add_up(tmp_path):
    workdir = str(tmp_path)
    mix_gaussians_run.run(_config("gan__adam"), workdir)
    first = json.load(open(tmp_path / "results.json"))["cells"]["gan__adam"]
    mix_gaussians_run.run(_config("mix__adam"), workdir)
    results = json.load(open(tmp_path / "results.json"))
    assert sorted(results["cells"]) == ["gan__adam", "mix__adam"]
    assert results["cells"]["gan__adam"] == first
    with np.load(tmp_path / "curves.npz") as curves:
        assert {key.rsplit("__", 1)[0] for key in curves.files} == {"gan__adam", "mix__adam"}
    other = _config("gan__adam")
    other.steps = 40  # the kept mix__adam cell ran 20 steps
    with pytest.raises(UserError, match=r"holds the cells \['mix__adam'\], run with other "
                       r"settings \(steps: 20 -> 40\)"):
        mix_gaussians_run.run(other, workdir)
