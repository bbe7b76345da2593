"""The signals that stop a run, and helper processes shielded from them."""

from __future__ import annotations

import signal
import subprocess

# Ctrl-C and SIGTERM ask a run to stop at its next safe point (engine.stop_signals)
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
