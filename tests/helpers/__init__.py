"""Helpers shared by the tests (imported as `helpers`, tests/ being on sys.path): tiny runs,
hand-written training folders and sweeps, a dashboard process, exports."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository
