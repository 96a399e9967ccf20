"""Convert pytorch-fid's Inception weights (.pth, a torch state dict) to a .npz file.

    python -m gan_dynamics.metrics.convert_inception pt_inception-2015-12-05-6726825d.pth [OUT.npz]

OUT defaults to the path `metrics.inception.load_params` reads by default
(`$GAN_DYNAMICS_CACHE` or ~/.cache/gan_dynamics, then inception/<name>.npz). The .npz
holds the state dict's arrays under their torch names, unchanged (batch-norm statistics
included; `inception.params_from_state_dict` folds them when loading). torch is needed
for this step only, and imported only here.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from typing import Any, Mapping, Optional

import numpy as np

from gan_dynamics.errors import UserError
from gan_dynamics.metrics import inception


@functools.cache
def prepare_torchvision() -> bool:
    """Make pytorch-fid's `import torchvision` work beside a CPU torch; False if absent.

    torchvision's compiled ops may be built for another torch. pytorch-fid uses only its
    model classes, so when the ops do not load, the two op schemas torchvision registers
    fake kernels for at import are defined instead (once per process: a second definition
    is an error). Used by the reference tests and benchmark (pytorch-fid, torch-fidelity);
    needs torch.
    """
    import glob
    import importlib.util

    import torch

    spec = importlib.util.find_spec("torchvision")
    if spec is None:
        return False
    try:
        torch.ops.load_library(glob.glob(os.path.join(os.path.dirname(spec.origin), "_C*.so"))[0])
    except (OSError, RuntimeError, IndexError):
        for op in ("nms", "qnms"):
            torch.library.define(f"torchvision::{op}",
                                 "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    return True


def state_dict_to_numpy(state_dict: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """torch tensors -> float32 numpy arrays, batch norm's step counters dropped."""
    return {k: v.detach().cpu().float().numpy() for k, v in state_dict.items()
            if not k.endswith("num_batches_tracked")}


def save_npz(state_dict: Mapping[str, Any], path: str) -> None:
    """Write a state dict (torch tensors) as .npz, checking it holds the FID Inception."""
    arrays = state_dict_to_numpy(state_dict)
    try:
        inception.check_params(inception.params_from_state_dict(arrays))
    except KeyError as e:
        raise UserError(f"The state dict lacks {e}: it is not pytorch-fid's FID Inception "
                        f"({inception.WEIGHTS_URL}).") from e
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def convert(pth_path: str, npz_path: Optional[str] = None) -> str:
    """Read pytorch-fid's .pth and write the .npz; returns the .npz path."""
    try:
        import torch
    except ImportError as e:
        raise UserError("Converting the .pth needs torch: pip install torch") from e
    if not os.path.exists(pth_path):
        raise UserError(f"{pth_path} does not exist. Download it with:\n"
                        f"  curl -L -o {os.path.basename(inception.WEIGHTS_URL)} "
                        f"{inception.WEIGHTS_URL}")
    npz_path = npz_path or inception.default_weights_path()
    save_npz(torch.load(pth_path, map_location="cpu", weights_only=True), npz_path)
    return npz_path


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("pth", help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth")
    parser.add_argument("npz", nargs="?", default=None,
                        help=f"output (default {inception.default_weights_path()})")
    args = parser.parse_args(argv)
    try:
        print(f"wrote {convert(args.pth, args.npz)}")
    except UserError as e:
        print(e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
