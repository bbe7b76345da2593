import signal
import subprocess
import sys

import pytest

from lightnas.runtime.signals import STOP_SIGNALS, run_shielded


def test_a_helper_never_sees_the_stop_signals_sent_to_its_process_group():
    # `kill -INT 0` reaches the helper's whole group, as a Ctrl-C that lands mid-spawn would
    # (a Python child: dash clears its inherited signal mask, `dot` and Python do not)
    code = "import os, signal, sys; [os.killpg(0, s) for s in (signal.SIGINT, signal.SIGTERM)]; "
    code += "sys.stdout.buffer.write(sys.stdin.buffer.read())"
    out = run_shielded([sys.executable, "-c", code], b"rendered")
    assert out == b"rendered"


def test_a_stop_signal_sent_meanwhile_reaches_the_run_once_the_helper_is_done():
    seen = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: seen.append(signum))
    try:
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
        run_shielded(["sh", "-c", "kill -INT $PPID"], b"")
        assert seen == [signal.SIGINT]
        assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == mask
        assert not set(STOP_SIGNALS) & mask
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_failing_helper_raises_with_its_stderr():
    with pytest.raises(subprocess.CalledProcessError) as err:
        run_shielded(["sh", "-c", "echo broken >&2; exit 3"], b"")
    assert err.value.returncode == 3 and err.value.stderr == b"broken\n"
