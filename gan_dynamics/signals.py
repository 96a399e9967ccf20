"""Stop requests (SIGTERM, SIGINT) for long runs: acknowledge at once, stop at a step
boundary, exit with the status a scheduler expects.

    with signals.StopRequests("saving a checkpoint after step {step}") as stop:
        for step in range(start, num_steps):
            stop.step = step + 1                  # what the acknowledgement names
            state = train_step(state)
            if stop.agreed(step) is not None:     # all processes agree on this step
                save(state); break
    if stop.received is not None:
        sys.exit(stop.exit_code())                # 128 + signal number (SIGTERM: 143)

- The first SIGTERM or SIGINT sets `.received` (the signal number). The acknowledgement
  ("SIGTERM received during step 12: saving a checkpoint at the next step boundary") is
  written to stderr at once,
  even while the main thread sits in a compile or a device wait: Python runs its signal
  handlers only between bytecodes of the main thread, so the C-level handler's wakeup
  byte (`signal.set_wakeup_fd`) wakes a small watcher thread that writes it.
- A second SIGINT (Ctrl-C twice) means "stop now without saving": the handler raises
  `StopNow` (a `KeyboardInterrupt`) in the main thread; entry points exit with 130.
  A second SIGTERM is acknowledged and otherwise ignored (the save is under way).
- In a multi-process run every process must stop at the same step, or one enters the
  collective checkpoint save while another waits in the next step's all-reduce.
  `agreed(step)` all-reduces the processes' signal numbers (a max over processes, one
  tiny collective per call) and also asks JAX's preemption-sync service
  (`multihost_utils.reached_preemption_sync_point`), which learns of preemption notices
  the runtime receives itself; every process gets the same answer at the same step. With
  one process it is `.received`, no collective.

Signal handlers can only be installed from the main thread; elsewhere (a run inside a
worker thread) `StopRequests` is inert and `.received` stays None.
"""

from __future__ import annotations

import _thread
import os
import signal
import socket
import threading
from typing import Optional

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopNow(KeyboardInterrupt):
    """A second Ctrl-C: stop at once, without saving."""


class Stopped(Exception):
    """A run that stopped for signal `signum` after saving; entry points exit with
    `exit_code` (128 + signum). The message says where the checkpoint is."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.signum = int(signum)
        self.exit_code = exit_code(signum)


def exit_code(signum: int) -> int:
    """The shell's status for a process stopped by `signum`: 128 + signum (SIGTERM: 143)."""
    return 128 + int(signum)


def name(signum: int) -> str:
    """'SIGTERM' for 15."""
    return signal.Signals(signum).name


def _write_stderr(text: str) -> None:
    try:
        os.write(2, text.encode())
    except OSError:  # stderr closed: nothing to tell
        pass


class StopRequests:
    """Context manager turning SIGTERM/SIGINT into a stop request the loop checks.

    `action` is the acknowledgement's second half; `{step}` in it is replaced by `.step`
    (set by the loop: the step after which it will stop) or "the current step".
    """

    def __init__(self, action: str = "stopping after {step}"):
        self.action = action
        self.step: Optional[int] = None
        self.received: Optional[int] = None  # signal number of the first request
        self.from_peer = False  # the request came from another process (agreed())
        self._stop_now = False  # a second Ctrl-C arrived (set by the watcher)
        self._relayed = False  # the watcher's own interrupt_main is in flight
        self._raised = False
        self._previous: dict[int, object] = {}
        self._previous_wakeup = -1
        self._pipe: Optional[tuple[socket.socket, socket.socket]] = None
        self._watcher: Optional[threading.Thread] = None

    # -- installation -------------------------------------------------------------------

    def __enter__(self) -> "StopRequests":
        if threading.current_thread() is not threading.main_thread():
            return self
        reader, writer = socket.socketpair()
        reader.setblocking(True)
        writer.setblocking(False)
        self._pipe = (reader, writer)
        self._previous_wakeup = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        self._watcher = threading.Thread(target=self._watch, name="stop-requests", daemon=True)
        self._watcher.start()
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        # The watcher first, the handlers last: until the previous handlers are back, a
        # late signal (a scheduler's second SIGTERM) only sets `.received`.
        if self._pipe is not None:
            reader, writer = self._pipe
            signal.set_wakeup_fd(self._previous_wakeup)
            try:
                writer.send(b"\0")  # wakes the watcher, which then returns
            except OSError:
                pass
            self._watcher.join(timeout=1.0)
            reader.close()
            writer.close()
            self._pipe = None
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    # -- the two halves of a signal -----------------------------------------------------

    def _acknowledge(self, signum: int, first: bool, stop_now: bool) -> None:
        """Written by the watcher thread the moment the signal arrives."""
        name = signal.Signals(signum).name
        if stop_now:
            _write_stderr(f"\n{name} received again: stopping now without saving.\n")
        elif first:
            step = "the current step" if self.step is None else f"step {self.step}"
            where = "" if self.step is None else f" during step {self.step}"
            hint = "; press Ctrl-C again to stop without saving" if signum == signal.SIGINT else ""
            _write_stderr(f"\n{name} received{where}: {self.action.format(step=step)}{hint}.\n")
        else:
            _write_stderr(f"\n{name} received: already stopping.\n")

    def _watch(self) -> None:
        # One wakeup byte per delivered signal: exact counts, unlike Python's handler,
        # which runs once for signals that arrive while the main thread is in C code.
        reader = self._pipe[0]
        count, sigints = 0, 0
        while True:
            try:
                data = reader.recv(64)
            except OSError:
                return
            for signum in data:
                if signum == 0:
                    return
                if signum not in STOP_SIGNALS:
                    continue
                if signum == signal.SIGINT and self._relayed:
                    self._relayed = False  # our own interrupt_main below: not the user's
                    continue
                count += 1
                sigints += signum == signal.SIGINT
                stop_now = signum == signal.SIGINT and sigints == 2
                self._acknowledge(signum, count == 1, stop_now)
                if stop_now:
                    # Make sure the main thread's handler runs (again) and sees it.
                    self._stop_now, self._relayed = True, True
                    _thread.interrupt_main(signal.SIGINT)

    def _handle(self, signum: int, frame) -> None:
        """Python-level handler (main thread, between bytecodes): records the request;
        raises StopNow once the watcher has seen a second Ctrl-C."""
        if self.received is None:
            self.received = signum
        if self._stop_now and not self._raised:
            self._raised = True
            raise StopNow()

    # -- the loop's side -----------------------------------------------------------------

    def exit_code(self) -> int:
        """128 + the signal number; 0 when no stop was requested."""
        return 0 if self.received is None else exit_code(self.received)

    def agreed(self, step: int) -> Optional[int]:
        """The signal number every process stops for at `step`, or None to go on.

        Call it at every step, in every process, with the same `step` (it is a collective
        in multi-process runs).
        """
        import jax

        if jax.process_count() == 1:
            return self.received
        import numpy as np
        from jax.experimental import multihost_utils

        local = np.int32(self.received or 0)
        signum = int(np.max(multihost_utils.process_allgather(local)))
        if not signum and _preempted(step):
            signum = int(signal.SIGTERM)
        if signum and self.received is None:
            self.received = signum
            self.from_peer = True
            _write_stderr(f"Another process received {signal.Signals(signum).name}: "
                          f"stopping with it after step {step + 1}.\n")
        return signum or None


def _preempted(step: int) -> bool:
    """JAX's preemption-sync point (False when its service is not running)."""
    from jax._src import distributed
    from jax.experimental import multihost_utils

    if distributed.global_state.preemption_sync_manager is None:
        return False
    return bool(multihost_utils.reached_preemption_sync_point(step))
