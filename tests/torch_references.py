"""Imports of the reference libraries the score tests compare with, skipping without them.

torch-fidelity, clean-fid and prdc are installed by .ci/run without their dependencies
(no second torch). torch-fidelity's package and clean-fid's `cleanfid.fid` import
torchvision, whose compiled ops may not load beside the installed torch:
`convert_inception.prepare_torchvision` defines the op schemas it needs first, as for
pytorch-fid. `cleanfid.resize` needs torch and PIL only; prdc needs scikit-learn.
"""

import pytest


def _torchvision() -> None:
    pytest.importorskip("torch")
    from gan_dynamics.metrics import convert_inception

    if not convert_inception.prepare_torchvision():
        pytest.skip("torchvision is not installed")


def torch_fidelity(submodule: str):
    """`torch_fidelity.<submodule>`, or skip the test without torch-fidelity."""
    _torchvision()
    return pytest.importorskip(f"torch_fidelity.{submodule}")


def clean_fid(submodule: str):
    """`cleanfid.<submodule>`, or skip the test without clean-fid."""
    _torchvision()
    return pytest.importorskip(f"cleanfid.{submodule}")


def prdc():
    return pytest.importorskip("prdc")
