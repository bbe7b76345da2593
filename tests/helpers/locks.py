"""A process that holds a folder's lock (lightnas.runtime.fileio.exclusive_lock) until killed:
`subprocess.Popen([sys.executable, "-c", HOLD, path])` prints `held` once it has it."""

HOLD = """
import sys, time
from lightnas.runtime.fileio import exclusive_lock
with exclusive_lock(sys.argv[1], "the folder"):
    print("held", flush=True)
    time.sleep(60)
"""
