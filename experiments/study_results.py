"""Put finished studies' results into a documentation page, so its tables are regenerated,
never typed.

    python experiments/study_results.py runs/studies/icr_digits runs/studies/fedus_digits \
        --page=docs/studies.md --plots=docs/studies_results

For each study workdir (its name is the folder's), reads what the study's `--summarize`
wrote (`summary.csv`, the "Paired comparison" lines of `summary.md`, `plots/`) and the
seeds' `results.json`, and replaces the page's text between `<!-- study_results:NAME -->`
and `<!-- /study_results:NAME -->` with: a table of every cell's mean and 95% bootstrap
interval of each metric at its last evaluation, with how many of its seeds finished and
diverged and the mean gradient evaluations of a finished seed; the paired comparisons at
the last evaluation; and the first metric's box plot (copied to `--plots` as
`NAME_<metric>.png`). Text outside the markers is left alone.
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import re
import shutil
import sys
from typing import Sequence


def _rows(workdir: str) -> list[dict[str, str]]:
    path = os.path.join(workdir, "summary.csv")
    if not os.path.exists(path):
        raise SystemExit(f"Error: {path} does not exist; run the study's launch command with "
                         "--summarize first.")
    with open(path) as f:
        return list(csv.DictReader(f))


def _comparisons(workdir: str) -> list[str]:
    """summary.md's paired comparisons at the last evaluation."""
    with open(os.path.join(workdir, "summary.md")) as f:
        text = f.read()
    section = text.split("## Paired comparison", 1)[1].split("\n## ", 1)[0] if (
        "## Paired comparison" in text) else ""
    return [line for line in section.splitlines()
            if line.startswith("- ") and "(last evaluation" in line]


def _grad_evals(workdir: str, cell: str) -> str:
    """Mean gradient evaluations of the cell's finished seeds (`results.json`): the cost of
    a task, independent of the machine's load, unlike its wall time."""
    counts = []
    for path in glob.glob(os.path.join(workdir, cell, "seed_*", "results.json")):
        with open(path) as f:
            results = json.load(f)
        if not results.get("partial") and results.get("total_grad_evals"):
            counts.append(results["total_grad_evals"])
    return f"{sum(counts) / len(counts):.0f}" if counts else "-"


def _label(metric: str, direction: str) -> str:
    name = metric.removeprefix("eval/").replace("_", "-")
    return f"{name} ({'lower' if direction == 'min' else 'higher'} better)"


def section(name: str, workdir: str, plot: str | None) -> str:
    """The markdown between the page's markers for study `name`."""
    rows = [r for r in _rows(workdir) if r["at"] == "last"]
    cells = list(dict.fromkeys(r["cell"] for r in rows))
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    direction = {r["metric"]: r["direction"] for r in rows}
    by = {(r["cell"], r["metric"]): r for r in rows}
    steps = sorted({r["step"] for r in rows if r["step"]})
    lines = [f"Last evaluation (step {', '.join(str(int(float(s))) for s in steps)}); "
             "mean over the finished seeds [95% bootstrap interval of the mean].", "",
             "| cell | seeds finished | diverged | gradient evaluations | "
             + " | ".join(_label(m, direction[m]) for m in metrics) + " |",
             "|---" * (4 + len(metrics)) + "|"]
    for cell in cells:
        first = by[(cell, metrics[0])]
        values = []
        for m in metrics:
            r = by.get((cell, m))
            values.append("-" if r is None or not r["mean"] else
                          f"{float(r['mean']):.2f} [{float(r['ci_low']):.2f}, "
                          f"{float(r['ci_high']):.2f}]")
        lines.append(f"| {cell} | {first['n']} of {first['seeds']} | {first['diverged']} | "
                     f"{_grad_evals(workdir, cell)} | " + " | ".join(values) + " |")
    comparisons = _comparisons(workdir)
    if comparisons:
        lines += ["", "Paired, seed by seed:", *comparisons]
    if plot:
        lines += ["", f"![{name}: {metrics[0].removeprefix('eval/')} per cell]({plot})"]
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdirs", nargs="+", help="study workdirs, summarized")
    parser.add_argument("--page", required=True, help="the markdown page to update")
    parser.add_argument("--plots", required=True, help="folder for the copied plots")
    args = parser.parse_args(argv)
    with open(args.page) as f:
        page = f.read()
    os.makedirs(args.plots, exist_ok=True)
    for workdir in args.workdirs:
        name = os.path.basename(os.path.normpath(workdir))
        begin, end = f"<!-- study_results:{name} -->", f"<!-- /study_results:{name} -->"
        if begin not in page or end not in page:
            raise SystemExit(f"Error: {args.page} has no {begin} ... {end} markers; add them "
                             "where the results should go.")
        metric = next(r["metric"] for r in _rows(workdir))
        stem = metric.removeprefix("eval/").replace("/", "_")
        source = os.path.join(workdir, "plots", f"boxes_{metric.replace('/', '_')}.png")
        plot = None
        if os.path.exists(source):
            target = os.path.join(args.plots, f"{name}_{stem}.png")
            shutil.copyfile(source, target)
            plot = os.path.relpath(target, os.path.dirname(os.path.abspath(args.page)))
        text = f"{begin}\n{section(name, workdir, plot)}\n{end}"
        page = re.sub(re.escape(begin) + r".*?" + re.escape(end), lambda _, t=text: t, page,
                      flags=re.S)
    with open(args.page, "w") as f:
        f.write(page)
    print(f"Updated {args.page} from {len(args.workdirs)} studies.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
