"""The signals that stop a run, and helper processes shielded from them."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
from collections.abc import Iterator
from typing import Protocol

# Ctrl-C and SIGTERM ask a run to stop at its next safe point (stop_signals)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run_shielded(args: list[str], data: bytes) -> bytes:
    """stdout of `args` fed `data`; raises CalledProcessError if it fails.

    Ctrl-C, which a terminal (and torchrun) sends to the whole process group, stops a run at its
    next safe point and must not kill a helper such as `dot` half-way through an epoch's files.
    A session of its own is not enough: a signal that lands between fork and setsid still reaches
    the child. So the stop signals are blocked while the child is spawned (it inherits the mask
    through exec and never sees them); one that arrived meanwhile is handled once unblocked.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        done = subprocess.run(args, input=data, capture_output=True, start_new_session=True)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    if done.returncode:
        raise subprocess.CalledProcessError(done.returncode, done.args, done.stdout, done.stderr)
    return done.stdout


class Interruptible(Protocol):
    interrupted: bool  # set by the first stop signal; the run stops at its next safe point


@contextlib.contextmanager
def stop_signals(engine: Interruptible) -> Iterator[None]:
    """Ctrl-C or SIGTERM asks the engine to stop at its next safe point (a training batch saves
    its state first); a second one stops at once, keeping the last checkpoint."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum, frame) -> None:
        if engine.interrupted:
            raise KeyboardInterrupt
        engine.interrupted = True

    previous = {s: signal.signal(s, handle) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
