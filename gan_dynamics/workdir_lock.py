"""One writer per workdir: a lock file that names the process holding it.

Two commands writing into one workdir would each resume from the other's checkpoints and
interleave their metrics, samples and checkpoints. Every command that writes into a run's
workdir (training and sweeps through `experiments/run.py`, `experiments/evaluate.py`,
`experiments/diagnose.py`, a study) holds `DIR/run.lock` while it writes:

    with workdir_lock.hold(workdir):
        ...

- The lock is created with O_CREAT | O_EXCL (atomic, also on NFS v3+) and holds JSON
  `{"host", "pid", "started", "command"}`; a second command is refused with a
  `WorkdirBusy` (a `UserError`: exit status 2) whose one line names the holder.
- While held, a daemon thread refreshes the file's modification time every
  `HEARTBEAT_S` seconds. A lock is stale, and is taken over with a warning, when its
  holder is gone: on the same host, no process has its pid (`kill -9`, a crash); on any
  host, its heartbeat is older than `STALE_AFTER_S` (a crashed node on a shared
  filesystem, or a pid reused by an unrelated process). Clocks of hosts that share the
  filesystem must agree to well within `STALE_AFTER_S`.
- A take-over is serialised by a second O_EXCL file (`run.lock.takeover`), so two
  commands that find the same stale lock cannot both take it.
- In a multi-process run only process 0 holds the lock (the others write nothing).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
from typing import Any, Iterator, Optional

from gan_dynamics.errors import UserError

LOCK_FILE = "run.lock"
HEARTBEAT_S = 60.0
STALE_AFTER_S = 600.0  # ten missed heartbeats
_TAKEOVER_WAIT_S = 5.0  # how long to wait for another command's take-over to finish

_HELD: set[str] = set()  # lock paths this process holds


class WorkdirBusy(UserError):
    """Another live command holds the workdir's lock."""


def lock_path(workdir: str) -> str:
    return os.path.join(workdir, LOCK_FILE)


def _me() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": " ".join(sys.argv)[:500]}


def read_holder(path: str) -> Optional[dict[str, Any]]:
    """The holder a lock file names; None if it is gone; {} if it cannot be parsed."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return None
    try:
        holder = json.loads(text)
    except ValueError:
        return {}
    return holder if isinstance(holder, dict) else {}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def stale_reason(path: str, holder: dict[str, Any], stale_after_s: float) -> Optional[str]:
    """Why the lock at `path` (naming `holder`) no longer protects a live command, or None."""
    try:
        age = time.time() - os.stat(path).st_mtime
    except FileNotFoundError:
        return "is gone"
    if age > stale_after_s:
        return f"has not refreshed its lock for {age:.0f} s"
    if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
        pid = holder["pid"]
        if pid == os.getpid() and os.path.abspath(path) not in _HELD:
            return "was an earlier process with this process's id"
        if pid != os.getpid() and not _pid_alive(pid):
            return "no longer exists"
    return None


def describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "a command whose lock file cannot be read"
    return (f"pid {holder.get('pid')} on {holder.get('host')}, started "
            f"{holder.get('started')} ({holder.get('command', '?')})")


def _create(path: str, me: dict[str, Any]) -> bool:
    """Create the lock naming `me`; False if one exists."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        json.dump(me, f)
        f.flush()
        os.fsync(f.fileno())
    return True


def _remove_if_same(path: str, holder: dict[str, Any]) -> None:
    """Remove the lock at `path` if it still names `holder` (one take-over at a time)."""
    guard = path + ".takeover"
    deadline = time.monotonic() + _TAKEOVER_WAIT_S
    while True:
        try:
            os.close(os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            break
        except FileExistsError:
            with contextlib.suppress(FileNotFoundError):
                if time.time() - os.stat(guard).st_mtime > _TAKEOVER_WAIT_S:
                    os.remove(guard)  # left by a command that died during its take-over
                    continue
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)
    try:
        if read_holder(path) == holder:
            os.remove(path)
    finally:
        os.remove(guard)


def acquire(workdir: str, stale_after_s: float = STALE_AFTER_S) -> dict[str, Any]:
    """Take `workdir`'s lock (taking over a stale one, with a warning on stderr); the
    holder record written. WorkdirBusy naming the holder if a live command has it."""
    path = lock_path(workdir)
    me = _me()
    for _ in range(5):
        if _create(path, me):
            _HELD.add(os.path.abspath(path))
            return me
        holder = read_holder(path)
        if holder is None:
            continue  # released meanwhile
        reason = stale_reason(path, holder, stale_after_s)
        if reason is None:
            raise WorkdirBusy(
                f"--workdir={workdir} is in use by {describe(holder)}; wait for it to "
                f"finish or stop it, or use another --workdir (if that command is gone, "
                f"delete {path}).")
        print(f"Taking over {path}: its holder ({describe(holder)}) {reason}.",
              file=sys.stderr, flush=True)
        _remove_if_same(path, holder)
    raise WorkdirBusy(f"--workdir={workdir}: could not take {path}; other commands keep "
                      "taking it. Use another --workdir.")


def release(workdir: str, me: dict[str, Any]) -> None:
    """Remove the lock if it still names `me`."""
    path = lock_path(workdir)
    _HELD.discard(os.path.abspath(path))
    if read_holder(path) == me:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def _heartbeat(path: str, me: dict[str, Any], stop: threading.Event, every_s: float) -> None:
    """Refresh the lock's mtime until `stop`; warn once if another command took it."""
    while not stop.wait(every_s):
        if read_holder(path) != me:
            print(f"Warning: {path} no longer names this process (another command took "
                  "it over); this run's outputs may mix with that command's.",
                  file=sys.stderr, flush=True)
            return
        with contextlib.suppress(FileNotFoundError):
            os.utime(path)


@contextlib.contextmanager
def hold(workdir: str, heartbeat_s: float = HEARTBEAT_S,
         stale_after_s: float = STALE_AFTER_S) -> Iterator[dict[str, Any]]:
    """Hold `workdir`'s lock for the block (heartbeat included); yields the holder record."""
    me = acquire(workdir, stale_after_s)
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(lock_path(workdir), me, stop, heartbeat_s),
                            name="workdir-lock-heartbeat", daemon=True)
    beat.start()
    try:
        yield me
    finally:
        stop.set()
        beat.join(timeout=1.0)
        release(workdir, me)
