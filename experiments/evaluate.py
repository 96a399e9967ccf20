"""Score a saved image run with the sample metrics (docs/metrics.md).

    python experiments/evaluate.py --workdir=runs/offline_digits [--checkpoint=STEP]
        [--metrics=classifier_is,classifier_fid,critic,ms_ssim] [--num_samples=1000]

Restores the newest (or the given) checkpoint of the run in --workdir, using the config
the run saved there (`config.json`; for a run without one, pass its config file with
--config=experiments/<experiment>.py), generates `num_samples` images and writes
`<workdir>/eval_step_XXXXXXXX.json`, then prints the metrics. --metrics defaults to the
run's `config.eval.metrics`, else to the four that need no download. A missing
checkpoint, config or weights file, or a workdir another command holds (a run still
training there), is reported in one message (exit status 2).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gan_dynamics.errors import UserError, run_main


def format_table(step: int, results: dict[str, float]) -> str:
    width = max(len(k) for k in results)
    lines = [f"{'step':<{width}}  {step}"]
    lines += [f"{k:<{width}}  {v:.4f}" for k, v in results.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", required=True, help="The run's directory.")
    parser.add_argument("--checkpoint", type=int, default=None,
                        help="Step of the checkpoint to score (default: the newest).")
    parser.add_argument("--metrics", default=None,
                        help="Comma-separated metrics (default: the run's config.eval.metrics).")
    parser.add_argument("--num_samples", type=int, default=None,
                        help="Generated images (default: config.eval.num_samples).")
    parser.add_argument("--config", default=None,
                        help="The run's config file, for a workdir without config.json.")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.workdir):
        raise UserError(f"--workdir={args.workdir} is not a directory.")
    from gan_dynamics import workdir_lock
    from gan_dynamics.runners import image_eval as evaluate
    from gan_dynamics.runners.open_run import load_config_file

    config = load_config_file(args.config) if args.config else None
    overrides = {} if args.num_samples is None else {"num_samples": args.num_samples}
    with workdir_lock.hold(args.workdir):  # it writes into the run's workdir
        step, results = evaluate.evaluate_checkpoint(args.workdir, step=args.checkpoint,
                                                     metrics=args.metrics, config=config,
                                                     overrides=overrides)
    print(format_table(step, results))
    print(f"wrote {evaluate.eval_path(args.workdir, step)}")
    return 0


if __name__ == "__main__":
    run_main(main)
