"""The project's one exception for what a user can fix (config, data, checkpoint, workdir).

Entry points print its message alone (no traceback) and exit with status 2; `--debug`
(or `GAN_DYNAMICS_DEBUG=1` for the scripts without that flag) shows the traceback. A
message's first line says what is wrong and how to fix it; later lines may add detail.

`UserError` derives from `ValueError` so that code catching bad values keeps working.
`rejected_input(what)` turns every other exception raised while user input is read and
checked into a `UserError` of one line: checks cannot foresee every value a model, a
dataset or a library rejects deep inside, and none of those may end in a traceback.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import sys
import traceback
from typing import Any, Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")

# Exit statuses of every entry point (docs/failures.md, "Signals and exit codes").
EXIT_USER_ERROR = 2
EXIT_NON_FINITE = 3


class UserError(ValueError):
    """A problem the user can fix; the message says what was wrong and how to fix it."""


class NonFiniteLoss(UserError, FloatingPointError):
    """Training produced a NaN/inf loss; the message names the last good checkpoint.

    `step` is the first step whose loss was not finite (None when unknown), for the
    records of callers that keep many runs (a study marks the task diverged at it).
    """

    def __init__(self, message: str, step: int | None = None):
        super().__init__(message)
        self.step = step


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """' Did you mean 'x'?' for the closest of `choices` (difflib), or ''."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=3, cutoff=0.6)
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(c) for c in close) + "?"


def one_line(err: BaseException, limit: int = 240) -> str:
    """'Type: the first line of the message', at most `limit` characters (some libraries
    put whole tree dumps or shape listings in their messages)."""
    lines = str(err).strip().splitlines()
    text = f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


@contextlib.contextmanager
def rejected_input(what: str) -> Iterator[None]:
    """Inside, any exception is the input's doing: re-raised as a UserError naming `what`.

    For code that only reads and checks user input (a config's checks and its abstract
    build, before anything runs): a value no check was taught still ends in one line,
    `<what> was rejected ... (<Type>: <message>)`, and `--debug` shows where it failed.
    Around code that runs the work, it would hide bugs as user errors: do not use it there.
    """
    try:
        yield
    except UserError:
        raise
    except Exception as err:  # noqa: BLE001  (the point: every exception of the input)
        raise UserError(f"{what} was rejected while checking the run ({one_line(err)}); "
                        "change it (--debug shows where it failed).") from err


def debug_requested() -> bool:
    """Tracebacks wanted: `--debug` / `--verbosity>=1` on the command line, or the env."""
    if os.environ.get("GAN_DYNAMICS_DEBUG", "") not in ("", "0"):
        return True
    for arg in sys.argv[1:]:
        if arg in ("--debug", "--debug=true", "--debug=True", "--debug=1"):
            return True
        if arg.startswith("--verbosity=") or arg.startswith("-v="):
            try:
                if int(arg.split("=", 1)[1]) >= 1:
                    return True
            except ValueError:
                pass
    return False


def report(err: BaseException, debug: bool | None = None) -> int:
    """Print `err` for a user (message alone unless debugging); return the exit status."""
    if debug is None:
        debug = debug_requested()
    if debug:
        traceback.print_exception(err)
    message = str(err).strip() or type(err).__name__
    sys.stderr.write(f"Error: {message}\n")
    sys.stderr.flush()
    return EXIT_NON_FINITE if isinstance(err, NonFiniteLoss) else EXIT_USER_ERROR


def run_main(main: Callable[..., Any], *args: Any) -> None:
    """Run a script's `main(*args)`; user errors and Ctrl-C end it without a traceback.

    Use as `if __name__ == "__main__": errors.run_main(main)`.
    """
    try:
        status = main(*args)
    except UserError as err:
        sys.exit(report(err))
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        sys.exit(130)
    sys.exit(status if isinstance(status, int) else 0)
