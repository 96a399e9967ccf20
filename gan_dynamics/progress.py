"""Say what a long wait is for: `Compiling the training step ...`, then `... done in 93.2 s`.

XLA compiles a program when it first runs it: for the CIFAR-10 models on a CPU, minutes
in which a run would print nothing. Runs compile their programs ahead of time through
`compile` (jax's `.lower(...).compile()`; the run then calls the executable it returns)
and wrap other long waits (an evaluation, sampling,
training a critic, diagnostics) in `step`, so that the console says what it waits for and
how long it took. Only process 0 prints, to stdout, like the runs' other progress lines.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any, Callable, Iterator

import jax


def _say(text: str) -> None:
    if jax.process_index() == 0:
        print(text, flush=True)


@contextlib.contextmanager
def step(what: str) -> Iterator[None]:
    """Print `what ...` now and `what: done in N s` when the block ends.

    Two lines, not one completed in place: whatever the block prints in between (a nested
    step, a warning, another process's output) cannot run into the first line.
    """
    _say(f"{what} ...")
    start = time.perf_counter()
    try:
        yield
    finally:
        _say(f"{what}: done in {time.perf_counter() - start:.1f} s")


def note(text: str) -> None:
    """Print `text` on a line of its own (a part of a longer `step`)."""
    _say(text)


def compile(what: str, jitted: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`jitted` compiled for `args` (arrays or `jax.ShapeDtypeStruct`s), announced as
    `Compiling <what> ...`; returns the compiled executable (which takes exactly such
    arguments: call it, not `jitted`, to be sure nothing compiles again)."""
    with step(f"Compiling {what}"):
        return jitted.lower(*args, **kwargs).compile()


def format_duration(seconds: float) -> str:
    """"1:02:03" (or "?" when unknown): the ETAs of runs and studies."""
    if not math.isfinite(seconds):
        return "?"
    seconds = round(max(seconds, 0.0))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
