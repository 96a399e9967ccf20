"""Where benchmarks write what they measure: JSON in the `--out` directory.

The default, `runs/benchmarks/`, is ignored by git, so running a benchmark leaves the
checkout clean; `--out=benchmarks/results` updates the committed results that README and
docs quote.

It also records the facts about the machine that CPU timings depend on, and writes a
benchmark's table into a docs page between `<!-- NAME -->` and `<!-- /NAME -->`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
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


def cpu_info() -> dict[str, Any]:
    """CPU model, its vector extensions and the load average (Linux; what is readable).

    Timings on a shared CPU depend on the load: benchmarks record it beside their numbers.
    """
    info: dict[str, Any] = {"cpus": os.cpu_count()}
    try:
        info["load_average"] = list(os.getloadavg())
        with open("/proc/cpuinfo") as f:
            first = f.read().split("\n\n")[0]
    except OSError:
        return info
    fields = {k.strip(): v.strip() for k, v in
              (line.split(":", 1) for line in first.splitlines() if ":" in line)}
    info["cpu"] = fields.get("model name")
    info["cpu_family_model"] = f"{fields.get('cpu family')}/{fields.get('model')}"
    info["vector_extensions"] = sorted(flag for flag in fields.get("flags", "").split()
                                       if flag.startswith(("avx", "fma", "amx")))
    return info


def update_page(page: str, name: str, text: str) -> None:
    """Replace what `page` holds between `<!-- name -->` and `<!-- /name -->` by `text`."""
    from gan_dynamics.errors import UserError

    begin, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    with open(page) as f:
        content = f.read()
    if begin not in content or end not in content:
        raise UserError(f"{page} has no {begin} ... {end} markers; add them where the "
                        "table should go.")
    content = re.sub(re.escape(begin) + r".*?" + re.escape(end),
                     lambda _: f"{begin}\n{text}\n{end}", content, flags=re.S)
    with open(page, "w") as f:
        f.write(content)
    print(f"updated {page}")
