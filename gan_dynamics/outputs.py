"""What a run leaves on disk for a reader: metrics (JSON lines and TensorBoard), image
grids and loss curves."""

from __future__ import annotations

import json
import math
import os
from typing import Sequence

import chex
import numpy as np


class MetricWriter:
    """Scalars to `metrics.jsonl` and TensorBoard event files (no TensorFlow needed).

    On resume from checkpoint k, records of steps > k left by the interrupted run are
    dropped from both (a step's rows are written before its checkpoint; docs/design.md
    Sec. 10), so the files describe one trajectory.
    """

    def __init__(self, workdir: str, resume_step: int, enabled: bool = True):
        self.enabled = enabled
        self.path = os.path.join(workdir, "metrics.jsonl")
        self._tb = None
        if not enabled:
            return
        if resume_step and os.path.exists(self.path):
            with open(self.path) as f:
                kept = [line for line in f if json.loads(line)["step"] <= resume_step]
            with open(self.path, "w") as f:
                f.writelines(kept)
        elif os.path.exists(self.path):
            os.remove(self.path)
        from tensorboardX import SummaryWriter

        self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"),
                                 purge_step=resume_step + 1 if resume_step else None)

    def write(self, step: int, scalars: dict[str, float]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps({"step": step, **scalars}) + "\n")
        for name, value in scalars.items():
            self._tb.add_scalar(name, value, step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def read_metrics(workdir: str) -> list[dict[str, float]]:
    """The records a run wrote to `metrics.jsonl`, in step order."""
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def image_grid(images: np.ndarray) -> np.ndarray:
    """A square uint8 grid (rows of images, 1-pixel gaps) from images in [-1, 1]."""
    chex.assert_rank(images, 4)
    n, h, w, c = images.shape
    side = math.isqrt(n)
    pixels = np.clip((np.asarray(images, np.float32) + 1.0) * 127.5, 0, 255).astype(np.uint8)
    grid = np.full((side * (h + 1) + 1, side * (w + 1) + 1, c), 255, np.uint8)
    for i in range(side * side):
        r, col = divmod(i, side)
        grid[1 + r * (h + 1):1 + r * (h + 1) + h, 1 + col * (w + 1):1 + col * (w + 1) + w] = pixels[i]
    return grid[..., 0] if c == 1 else grid


def save_image_grid(images: np.ndarray, path: str, min_width: int = 512) -> None:
    """Write `image_grid(images)` as a PNG, upscaled (nearest neighbour, a whole factor)
    to at least `min_width` pixels wide, so that 16x16 digits can be judged by eye."""
    from PIL import Image

    grid = image_grid(images)
    scale = max(1, math.ceil(min_width / grid.shape[1]))
    if scale > 1:
        grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    Image.fromarray(grid).save(path)


def save_loss_curves(records: Sequence[dict[str, float]], path: str) -> None:
    """Both players' losses (and the discriminator's penalty, if any) against step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, label in (("f", "generator loss f"), ("g", "discriminator loss g"),
                        ("penalty", "penalty (in g)")):
        points = [(r["step"], r[name]) for r in records if name in r]
        if points:
            ax.plot(*zip(*points), label=label, lw=1)
    ax.set_xlabel("generator step")
    ax.set_ylabel("loss")
    ax.legend(frameon=False)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
