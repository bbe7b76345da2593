"""The benchmark scripts import their helper module (jobs.py) by name, as they do when run as
scripts (their folder is then on sys.path): the tests put the folder there too."""

import sys

from helpers import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
