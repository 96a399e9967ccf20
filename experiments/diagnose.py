"""Spectra and path-angle of an image run's checkpoints: the local geometry of its game.

    python experiments/diagnose.py --workdir=runs/offline_digits [--checkpoint=STEP|all] [--k=20]

Reads the run's config (`WORKDIR/config.json`, or `--config=experiments/<name>.py`, the
file the run was started with), restores the checkpoint (default: the latest; step 0 is
re-created from the seed when no checkpoint holds it), builds the run's game on one fixed
batch and computes (docs/diagnostics.md):

- the k eigenvalues of the simultaneous-gradient field's Jacobian J with the largest
  magnitude, largest and smallest real part and largest imaginary part (Krylov-Schur
  Arnoldi on Jacobian-vector products), and for small models the whole spectrum;
- each player's extreme Hessian eigenvalues (Lanczos) and what kind of point that makes;
- the norms of J's symmetric and antisymmetric parts (Balduzzi et al. 2018);
- the condition number of the CGD/ACGD system, for runs with those optimizers;
- the path-angle from step 0 to the checkpoint (Berard et al. 2020).

Writes `WORKDIR/diagnostics/step_XXXXXXXX.json` and figures in `WORKDIR/diagnostics/`:
`eigenvalues.png` (the complex plane, every diagnosed checkpoint coloured by step),
`hessians.png` (each player's extreme Hessian eigenvalues over checkpoints) and
`path_angle_step_XXXXXXXX.png`. Exit status 2 with one message on a user error (a
workdir another command holds, a run still training there, included).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gan_dynamics import errors
from gan_dynamics.errors import UserError


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", required=True, help="The run's directory.")
    parser.add_argument("--checkpoint", default="latest",
                        help="Step to diagnose: an integer, 'latest' or 'all'.")
    parser.add_argument("--config", default="",
                        help="Experiment file the run used (default: WORKDIR/config.json).")
    parser.add_argument("--k", type=int, default=20, help="Eigenvalues per criterion.")
    parser.add_argument("--which", default="LM,LR,SR,LI",
                        help="Criteria: LM |λ|, LR max Re, SR min Re, LI max |Im|.")
    parser.add_argument("--tol", type=float, default=1e-4, help="Relative residual tolerance.")
    parser.add_argument("--max_restarts", type=int, default=100)
    parser.add_argument("--ncv", type=int, default=0, help="Krylov basis size (0: auto).")
    parser.add_argument("--batch_size", type=int, default=0,
                        help="Size of the fixed batch (0: the config's).")
    parser.add_argument("--hutchinson_samples", type=int, default=16)
    parser.add_argument("--path_points", type=int, default=41,
                        help="α grid of the path-angle on [-0.5, 1.5] (0: none).")
    parser.add_argument("--debug", action="store_true", help="Show tracebacks.")
    return parser.parse_args(list(argv))  # a bad command line: usage, exit status 2


def _steps(workdir: str, which: str) -> list[int]:
    from gan_dynamics.runners import open_run

    saved = open_run.checkpoint_steps(workdir)
    if which == "latest":
        if not saved:
            raise UserError(f"{open_run.checkpoint_dir(workdir)} holds no checkpoint; "
                            "train first, or pass --checkpoint=0 for the initial state.")
        return [saved[-1]]
    if which == "all":
        return sorted(set([0] + saved))
    try:
        return [int(which)]
    except ValueError:
        raise UserError(f"--checkpoint={which!r}: pass a step, 'latest' or 'all'.") from None


def diagnose(args: argparse.Namespace) -> list[str]:
    """Diagnose the requested checkpoints, holding the workdir; the paths written."""
    from gan_dynamics import workdir_lock

    if not os.path.isdir(args.workdir):
        raise UserError(f"--workdir={args.workdir} is not a directory; pass a run's workdir.")
    with workdir_lock.hold(args.workdir):  # it writes into the run's workdir
        return _diagnose(args)


def _diagnose(args: argparse.Namespace) -> list[str]:
    import jax

    from gan_dynamics import parallel
    from gan_dynamics.diagnostics import report
    from gan_dynamics.outputs import write_json
    from gan_dynamics.runners import image_diagnostics, open_run
    from gan_dynamics.runners.train_config import build

    config = open_run.load_config(args.workdir, config_path=args.config)
    which = tuple(w.strip() for w in args.which.split(",") if w.strip())
    options = report.Options(k=args.k, which=which, ncv=args.ncv, tol=args.tol,
                             max_restarts=args.max_restarts,
                             hutchinson_samples=args.hutchinson_samples,
                             path_points=args.path_points)
    report.check_options(options)
    steps = _steps(args.workdir, args.checkpoint)
    open_run.check_fits(config, args.workdir, max(steps))  # before anything is built
    exp = build(config)
    batch = image_diagnostics.fixed_batch(exp, config, args.batch_size)
    diagnostics = report.PointDiagnostics(
        image_diagnostics.fixed_game_fn(exp, batch, int(config.seed)), options,
        image_diagnostics.step_sizes_fn(config))
    out_dir = os.path.join(args.workdir, "diagnostics")
    os.makedirs(out_dir, exist_ok=True)
    mesh = parallel.make_mesh(1)
    start = open_run.restore_state(config, exp, args.workdir, 0, mesh)
    written = []
    for step in steps:
        state = start if step == 0 else open_run.restore_state(config, exp, args.workdir, step, mesh)
        print(f"Diagnosing step {step} ({jax.device_count()} device(s))...", flush=True)
        result = diagnostics.compute(state, start=None if step == 0 else start,
                                     progress=lambda part: print(f"  {part}...", flush=True))
        result = {"step": step, "batch_size": int(batch.shape[0]),
                  "options": options._asdict(), **result}
        path = os.path.join(out_dir, f"step_{step:08d}.json")
        write_json(path, result, indent=1)
        written.append(path)
        print(summary(result), flush=True)
        if "path_angle" in result:
            figure = os.path.join(out_dir, f"path_angle_step_{step:08d}.png")
            plot_path_angle(result, figure)
            written.append(figure)
    written += plot_over_checkpoints(out_dir)
    for path in written:
        print(f"wrote {path}")
    return written


def summary(result: dict[str, Any]) -> str:
    """A few lines of the headline numbers."""
    from gan_dynamics.diagnostics import report

    lines = [(f"step {result['step']}: f={result['f']:.4g} g={result['g']:.4g} "
             f"|v|={result['field_norm']:.3g}  ({result['jvps']} Jacobian-vector products)")]
    for name, value in report.scalars(result).items():
        if name not in ("diag/field_norm", "diag/jvps"):
            lines.append(f"  {name[5:]:>18} = {value:.4g}")
    if "hessian" in result:
        lines.append(f"  {'point':>18} = {result['hessian']['point']}")
    return "\n".join(lines)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_path_angle(result: dict[str, Any], path: str) -> None:
    """Berard et al.'s path-angle figure: cosine and field norm along the path, losses."""
    plt = _plt()
    p = result["path_angle"]
    fig, (ax_cos, ax_loss) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax_cos.plot(p["alpha"], p["cosine"], color="C0", label="cos(v, θ1−θ0)")
    ax_cos.plot(p["alpha"], p["cosine_x"], color="C2", lw=0.8, ls="--", label="generator part")
    ax_cos.plot(p["alpha"], p["cosine_y"], color="C3", lw=0.8, ls=":", label="discriminator part")
    ax_cos.axhline(0, color="k", lw=0.5)
    ax_cos.set_xlabel(f"α  (θ = θ0 + α(θ1 − θ0); θ0 step 0, θ1 step {result['step']})")
    ax_cos.set_ylabel("path-angle cosine")
    norm_ax = ax_cos.twinx()
    norm_ax.semilogy(p["alpha"], p["field_norm"], color="C1", label="‖v‖")
    norm_ax.set_ylabel("‖v‖ (field norm)", color="C1")
    ax_cos.legend(frameon=False, fontsize=7, loc="lower left")
    ax_loss.plot(p["alpha"], p["f"], label="f (generator)")
    ax_loss.plot(p["alpha"], p["g"], label="g (discriminator)")
    ax_loss.set_xlabel("α")
    ax_loss.set_ylabel("loss")
    ax_loss.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _load_results(out_dir: str) -> list[dict[str, Any]]:
    results = []
    for path in sorted(glob.glob(os.path.join(out_dir, "step_*.json"))):
        with open(path) as f:
            results.append(json.load(f))
    return sorted(results, key=lambda r: r["step"])


def plot_over_checkpoints(out_dir: str) -> list[str]:
    """The complex-plane and Hessian figures over every diagnosed checkpoint."""
    import numpy as np

    plt = _plt()
    results = _load_results(out_dir)
    if not results:
        return []
    steps = [r["step"] for r in results]
    cmap = plt.get_cmap("viridis")
    norm = plt.Normalize(min(steps), max(max(steps), min(steps) + 1))
    fig, ax = plt.subplots(figsize=(6, 5))
    for r in results:
        vals = []
        for e in r["eigenvalues"].values():
            vals += list(np.asarray(e["re"]) + 1j * np.asarray(e["im"]))
        if "dense" in r:
            d = r["dense"]["eigenvalues"]
            vals += list(np.asarray(d["re"]) + 1j * np.asarray(d["im"]))
        vals = np.unique(np.round(np.asarray(vals), 10))
        ax.scatter(vals.real, vals.imag, s=10, color=cmap(norm(r["step"])), alpha=0.8)
    ax.axhline(0, color="k", lw=0.4)
    ax.axvline(0, color="k", lw=0.4)
    ax.set_xlabel("Re λ (> 0: attracting for gradient descent)")
    ax.set_ylabel("Im λ (rotation)")
    ax.set_title("eigenvalues of the field's Jacobian")
    sm = plt.cm.ScalarMappable(cmap=cmap, norm=norm)
    fig.colorbar(sm, ax=ax, label="step")
    fig.tight_layout()
    eig_path = os.path.join(out_dir, "eigenvalues.png")
    fig.savefig(eig_path, dpi=120)
    plt.close(fig)
    written = [eig_path]
    with_h = [r for r in results if "hessian" in r]
    if with_h:
        fig, ax = plt.subplots(figsize=(6, 3.6))
        s = [r["step"] for r in with_h]
        for key, label, style in (("hess_x_max", "generator λmax(∇²xx f)", "C0-"),
                                  ("hess_x_min", "generator λmin(∇²xx f)", "C0--"),
                                  ("hess_y_max", "discriminator λmax(∇²yy g)", "C3-"),
                                  ("hess_y_min", "discriminator λmin(∇²yy g)", "C3--")):
            ax.plot(s, [r["hessian"][key] for r in with_h], style, marker="o", ms=3,
                    label=label)
        ax.axhline(0, color="k", lw=0.4)
        ax.set_yscale("symlog", linthresh=1e-3)
        ax.set_xlabel("step")
        ax.set_ylabel("eigenvalue")
        ax.legend(frameon=False, fontsize=7)
        fig.tight_layout()
        h_path = os.path.join(out_dir, "hessians.png")
        fig.savefig(h_path, dpi=120)
        plt.close(fig)
        written.append(h_path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    from absl import logging

    logging.set_verbosity(logging.WARNING)  # Orbax logs every restore at INFO
    try:
        diagnose(args)
    except UserError as err:
        return errors.report(err, args.debug)
    return 0


if __name__ == "__main__":
    sys.exit(main())
