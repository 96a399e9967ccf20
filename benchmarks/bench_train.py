"""Speed of one image-GAN training step: Adam WGAN-GP (n_disc 5) vs ACGD WGAN, ICR DCGAN.

The two sides of the ICR paper's CIFAR-10 comparison (Schaefer, Zheng & Anandkumar 2020):
`experiments/cifar_wgan_gp_adam.py` and `experiments/cifar_wgan_cgd.py` at batch 64, each
step jitted exactly as `gan_dynamics.runners.train.run` jits it, fed with fixed uniform-noise
32x32x3 batches (speed does not depend on the pixels; ACGD's CG iteration count does, so
it is reported, not extrapolated). Prints a table and writes bench_train_<host>.json
to --out (default runs/benchmarks/; `--out=benchmarks/results` updates the committed
files) with, per optimizer: compile time, ms per generator step, images per second
(n_sub x batch real images, and as many generated, per step), mean CG iterations per
step and gradient-equivalent cost; and the ratio ACGD / Adam of time per generator step.

    python benchmarks/bench_train.py                    # 3 timed steps each (CPU)
    python benchmarks/bench_train.py --steps=20 --batch_size=64
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from typing import Optional, Sequence

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.results_io import add_out_argument, cpu_info, write_json  # noqa: E402
from gan_dynamics import parallel  # noqa: E402
from gan_dynamics.data import images, loader  # noqa: E402
from gan_dynamics.runners import train_config, train_step  # noqa: E402


def noise_images(num_examples: int = 1024) -> images.ImageSource:
    """Fixed uniform [-1, 1] 32x32x3 images (speed does not depend on the pixels)."""
    data = np.random.default_rng(0).uniform(-1.0, 1.0, (num_examples, 32, 32, 3))
    data = data.astype(np.float32)
    return images.ImageSource("noise", num_examples, (32, 32, 3), lambda idx: data[idx])


def load_config(name: str):
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "experiments", f"{name}.py")
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def bench(config_name: str, batch_size: int, steps: int) -> dict:
    config = load_config(config_name)
    config.data.batch_size = batch_size
    exp = train_config.build(config, source=noise_images())
    mesh = parallel.make_mesh(0)
    state, abstract = train_step.create_state(exp, config.seed, mesh)
    step_fn = train_step.jit_train_step(exp, mesh, abstract)
    batches = list(loader.device_batches(loader.step_batches(
        exp.source, 0, steps + 1, exp.n_sub, batch_size=batch_size, seed=config.seed), mesh))

    start = time.perf_counter()
    state, metrics = step_fn(state, batches[0])
    jax.block_until_ready(state)
    compile_s = time.perf_counter() - start  # compile + first step

    iterations, grad_evals = [], []
    start, cpu_start = time.perf_counter(), time.process_time()
    for i in range(steps):
        state, metrics = step_fn(state, batches[i + 1])
        metrics = jax.device_get(metrics)
        if "solver_iterations" in metrics:
            iterations.append(float(metrics["solver_iterations"]))
        grad_evals.append(float(metrics["grad_evals"]))
    seconds = (time.perf_counter() - start) / steps
    cpu_seconds = (time.process_time() - cpu_start) / steps
    return {
        "config": config_name,
        "optimizer": config.optimizer.name,
        "loss": config.loss.name,
        "penalty": config.loss.penalty,
        "n_sub": exp.n_sub,
        "batch_size": batch_size,
        "timed_steps": steps,
        "compile_and_first_step_s": compile_s,
        "ms_per_generator_step": 1e3 * seconds,
        "cpu_ms_per_generator_step": 1e3 * cpu_seconds,
        "images_per_s": exp.n_sub * batch_size / seconds,
        "cg_iterations_per_step": float(np.mean(iterations)) if iterations else None,
        "grad_evals_per_step": float(np.mean(grad_evals)),
    }


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=64)
    add_out_argument(parser)
    return parser.parse_args(argv)


def main():
    args = parse_args()
    machine = cpu_info()
    results = [bench(name, args.batch_size, args.steps)
               for name in ("cifar_wgan_gp_adam", "cifar_wgan_cgd")]
    adam, acgd = results
    summary = {
        "host": platform.node(),
        "device": str(jax.devices()[0].device_kind),
        "device_count": jax.device_count(),
        "jax": jax.__version__,
        **machine,
        "load_average_end": cpu_info().get("load_average"),
        "results": results,
        "acgd_over_adam_time_per_generator_step":
            acgd["ms_per_generator_step"] / adam["ms_per_generator_step"],
        "acgd_over_adam_cpu_time_per_generator_step":
            acgd["cpu_ms_per_generator_step"] / adam["cpu_ms_per_generator_step"],
    }
    print(f"{'config':22s} {'ms/gen step':>12s} {'images/s':>11s} {'CG it/step':>11s} "
          f"{'grad evals':>11s} {'compile s':>10s}")
    for r in results:
        cg = r["cg_iterations_per_step"]
        print(f"{r['config']:22s} {r['ms_per_generator_step']:12.1f} {r['images_per_s']:11.1f} "
              f"{'-' if cg is None else f'{cg:.1f}':>11s} {r['grad_evals_per_step']:11.1f} "
              f"{r['compile_and_first_step_s']:10.1f}")
    print(f"ACGD / Adam time per generator step: "
          f"{summary['acgd_over_adam_time_per_generator_step']:.2f} (process CPU time "
          f"{summary['acgd_over_adam_cpu_time_per_generator_step']:.2f})")
    print(f"{machine.get('cpu')}, load average {machine.get('load_average')} at the start, "
          f"{summary['load_average_end']} at the end")
    write_json(args.out, f"bench_train_{platform.node() or 'host'}.json", summary)


if __name__ == "__main__":
    from gan_dynamics.errors import run_main

    run_main(main)
