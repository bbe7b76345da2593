"""The `tflite` export format: the child as a Larq Compute Engine .tflite, its 1-bit convs LCE
binary convs (lightnas.deploy, which needs the optional `deploy` extra).

Registered here, beside the extra it needs, and imported by the package (lightnas.export) so
that every run knows the format: the extra itself is imported only when a .tflite is written.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from torch import Tensor, nn

from lightnas import deploy
from lightnas.export.writing import EXPORT_FORMATS, FORMAT_EXTRAS
from lightnas.runtime.fileio import write_atomic

TFLITE = "tflite"
FORMAT_EXTRAS[TFLITE] = ("deploy", deploy.EXTRA_PACKAGES)


@EXPORT_FORMATS.register(TFLITE)
def _save_tflite(model: nn.Module, example: Tensor, description: dict, path: Path) -> None:
    """A Larq Compute Engine .tflite, 1-bit convs as LCE binary convs. k-bit convs, which have
    no LCE kernel, stay float convs over their quantized values (a warning and the file's
    metadata name them) rather than stop a search: `lightnas deploy` refuses them unless asked."""
    with deploy.extra_imports():
        # imported here: TensorFlow, Larq and LCE are the optional `deploy` extra
        from lightnas.deploy.convert import convert_child

    shape = list(example.shape[1:])
    deployment = convert_child(model, shape, description, fallback="float")
    if deployment.float_fallback:
        warnings.warn(
            f"{path.name}: k-bit convs kept as float convs: {', '.join(deployment.float_fallback)}",
            stacklevel=2,
        )
    write_atomic(path, deployment.flatbuffer)
