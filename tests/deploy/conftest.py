"""The deployment benchmarks import their sibling modules by name, as they do when run as scripts
(their folder is then on sys.path); the tests import them the same way."""

import sys

from helpers import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
