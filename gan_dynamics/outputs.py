"""What a run leaves on disk for a reader: metrics (JSON lines and TensorBoard), JSON
summaries, image grids and loss curves.

Every file is written so that a process killed at any moment (`kill -9`, a crashed node)
leaves either the old or the new version: whole files through a temporary file and
`os.replace`; `metrics.jsonl` one appended line per record, whose torn last line (the
only place a kill can tear it) readers skip and a resume removes.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from typing import Any, Sequence

import chex
import numpy as np


def replace_atomically(path: str, write) -> None:
    """`write(tmp_path)` then rename over `path`: readers see the old or the new file."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp"
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):  # the write failed
            os.remove(tmp)


def write_json(path: str, obj: Any, **dump_options) -> None:
    """`obj` as JSON at `path`, atomically (and synced, so a crash leaves no empty file)."""

    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(obj, f, **dump_options)
            f.flush()
            os.fsync(f.fileno())

    replace_atomically(path, write)


class MetricWriter:
    """Scalars to `metrics.jsonl` and TensorBoard event files (no TensorFlow needed).

    `metrics.jsonl` is the record; TensorBoard is rebuilt from it at every start. On
    resume from checkpoint k the records of steps > k left by the interrupted run (and a
    torn last line) are dropped (a step's rows are written before its checkpoint;
    docs/design.md Sec. 10) and the kept ones written to a fresh event file, so both
    describe one trajectory with one record per step, whatever the interrupted run had
    written or left unflushed. A fresh start (k = 0) removes both.
    """

    def __init__(self, workdir: str, resume_step: int, enabled: bool = True):
        self.enabled = enabled
        self.path = os.path.join(workdir, "metrics.jsonl")
        self._tb = None
        if not enabled:
            return
        kept = ([r for r in read_metrics(workdir) if r["step"] <= resume_step]
                if resume_step and os.path.exists(self.path) else [])

        def write(tmp: str) -> None:
            with open(tmp, "w") as f:
                f.writelines(json.dumps(r) + "\n" for r in kept)

        replace_atomically(self.path, write)
        from tensorboardX import SummaryWriter

        tb_dir = os.path.join(workdir, "tensorboard")
        shutil.rmtree(tb_dir, ignore_errors=True)
        self._tb = SummaryWriter(tb_dir)
        for record in kept:
            self._add_scalars(record["step"], {k: v for k, v in record.items() if k != "step"})

    def _add_scalars(self, step: int, scalars: dict[str, float]) -> None:
        for name, value in scalars.items():
            self._tb.add_scalar(name, value, step)

    def write(self, step: int, scalars: dict[str, float]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps({"step": step, **scalars}) + "\n")
        self._add_scalars(step, scalars)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def read_metrics(workdir: str) -> list[dict[str, float]]:
    """The records a run wrote to `metrics.jsonl`, in step order; a torn last line (a
    process killed while writing it) is skipped."""
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        lines = f.read().split("\n")
    records = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            if i < len(lines) - 1:  # not the last line: damaged, not torn
                raise
    return records


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
    replace_atomically(path, lambda tmp: Image.fromarray(grid).save(tmp, format="PNG"))


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
    replace_atomically(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    plt.close(fig)
