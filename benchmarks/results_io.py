"""Where benchmarks write what they measure: JSON in the `--out` directory.

The default, `runs/benchmarks/`, is ignored by git, so running a benchmark leaves the
checkout clean; `--out=benchmarks/results` updates the committed results that README and
docs quote.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DIR = os.path.join(ROOT, "runs", "benchmarks")


def add_out_argument(parser: argparse.ArgumentParser) -> None:
    """`--out DIR`: where the results go (default runs/benchmarks/)."""
    parser.add_argument("--out", default=DEFAULT_DIR,
                        help="directory for the results (default: runs/benchmarks/, which "
                             "git ignores; --out=benchmarks/results updates the committed ones)")


def write_json(directory: str, name: str, data: Any) -> str:
    """Write `data` to `directory/name` (the folder created if needed), say where, and
    return the path."""
    path = os.path.join(directory, name)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(data, f, indent=1)
    print(f"wrote {path}")
    return path
