"""Ctrl-C during a long call raises KeyboardInterrupt promptly (the call stops
between tiles, without holding the GIL) and leaves nothing half-written; a custom
Python SIGINT handler keeps Python's behaviour. POSIX only (sigaction)."""

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(sys.platform not in ("linux", "darwin"), reason="needs sigaction")

# One thread and a deep 7x7 layer, so the call takes seconds (about 20 times the
# two-image call timed first): an interrupt after 0.3 s lands mid-call on any CPU.
SETUP = """
import os, signal, threading, time
import numpy as np
import ferroconv as fc
fc.set_num_threads(1)
x = np.random.default_rng(0).standard_normal((40, 256, 56, 56), dtype=np.float32)
w = np.random.default_rng(1).standard_normal((256, 256, 7, 7), dtype=np.float32)
start = time.perf_counter()
fc.conv2d(x[:2], w, padding=3)
full = (time.perf_counter() - start) * 20
y = np.ones((40, 256, 56, 56), np.float32)  # an out= buffer in use (its pages touched)
timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
timer.start()
start = time.perf_counter()
"""


def run(body: str) -> str:
    code = textwrap.dedent(SETUP) + textwrap.dedent(body)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_ctrl_c_interrupts_a_long_call_promptly_and_leaves_no_partial_out():
    out = run("""
        try:
            fc.conv2d(x, w, padding=3, out=y)
            print("finished")
        except KeyboardInterrupt:
            elapsed = time.perf_counter() - start
            # stopped well before the call's own duration, with out= all NaN
            print("interrupted", elapsed < full / 3, bool(np.isnan(y).all()))
        # the next call is not affected, and Python's handler is back
        print(fc.conv2d(x[:1, :, :8, :8], w, padding=3).shape,
              signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    """)
    assert out.splitlines() == ["interrupted True True", "(1, 256, 8, 8) True"]


def test_a_custom_sigint_handler_keeps_pythons_behaviour():
    out = run("""
        caught = []
        signal.signal(signal.SIGINT, lambda *args: caught.append(time.perf_counter() - start))
        fc.conv2d(x[:8], w, padding=3)  # runs to its end: our handler stays out of the way
        timer.join()
        time.sleep(0.05)  # Python runs its handler at its next check
        print("finished", len(caught) == 1)
    """)
    assert out.strip() == "finished True"
