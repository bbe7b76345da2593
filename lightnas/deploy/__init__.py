"""Deployment of a searched child as a real 1-bit network: the child rebuilt as a Larq/Keras
model and converted by Larq Compute Engine (LCE) into a .tflite whose 1-bit convs are LCE binary
convolutions (XNOR-popcount), checked against the PyTorch child, sized and timed.

Its modules need the optional `deploy` extra (TensorFlow 2.16, tf-keras, Larq, LCE 0.16), which
`lightnas.deploy.backend` imports. This package module needs none of it: the layers above
(export's `tflite` format, the `deploy` and `latency-table` commands) import the others inside
the functions that deploy, under `extra_imports()`, so that `lightnas` without the extra starts
and says which extra is missing.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator

from lightnas.errors import DeployError

# Larq builds on Keras 2: TensorFlow 2.16 picks Keras 3 unless this is set before TensorFlow is
# first imported, and other code imports TensorFlow early (PyTorch's TensorBoard writer does
# when it is installed). Set here, when the export formats are first imported (before any
# command runs); a value the user set is kept.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

# the top-level packages of the `deploy` extra
EXTRA_PACKAGES = ("tensorflow", "tf_keras", "larq", "larq_compute_engine")
INSTALL_HINT = (
    "pip install 'lightnas[deploy]' (TensorFlow 2.16 needs numpy < 2: a virtualenv of its own, "
    "see the README's Deployment section)"
)
# what `--fallback` may keep of a layer that has no LCE kernel
FALLBACKS = ("float",)


@contextlib.contextmanager
def extra_imports() -> Iterator[None]:
    """Around the imports of `lightnas.deploy.<module>`s: a missing `deploy` extra is a
    DeployError naming it (one line), any other ImportError stays a bug."""
    try:
        yield
    except ImportError as err:
        root = (err.name or "").split(".")[0]
        if root not in EXTRA_PACKAGES:
            raise
        raise DeployError(f"deployment needs the `deploy` extra ({root}): {INSTALL_HINT}") from None


def installed() -> bool:
    """Whether the `deploy` extra's packages are importable (without importing them)."""
    return all(importlib.util.find_spec(name) is not None for name in EXTRA_PACKAGES)
