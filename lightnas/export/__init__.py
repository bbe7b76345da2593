"""Export of a searched child: trainable weights (safetensors + JSON), inference graphs (pt2,
ONNX) and the packed 1-bit deployment file (writing.py), the Larq Compute Engine .tflite
(tflite.py, the `deploy` extra), and reading them back (reading.py).

`lightnas.export.load_child(path)` and `lightnas.export.export_child(...)` are the documented API.
"""

from lightnas.export.reading import (
    best_epoch,
    exported_trainables,
    find_trainable,
    load_architecture,
    load_child,
    read_metadata,
    resolve_target,
    supernet_of,
)
from lightnas.export.tflite import TFLITE
from lightnas.export.writing import (
    EXPORT_FORMATS,
    FORMAT_EXTRAS,
    METADATA_KEY,
    PACKED,
    PACKED_KEY,
    PACKED_SUFFIX,
    check_formats_installed,
    export_child,
    format_path,
    model_info,
    safetensors_bytes,
)

__all__ = [
    "EXPORT_FORMATS",
    "FORMAT_EXTRAS",
    "METADATA_KEY",
    "PACKED",
    "PACKED_KEY",
    "PACKED_SUFFIX",
    "TFLITE",
    "best_epoch",
    "check_formats_installed",
    "export_child",
    "exported_trainables",
    "find_trainable",
    "format_path",
    "load_architecture",
    "load_child",
    "model_info",
    "read_metadata",
    "resolve_target",
    "safetensors_bytes",
    "supernet_of",
]
