"""The deployment libraries: TensorFlow 2.16 with its legacy Keras (tf-keras), Larq and Larq
Compute Engine, imported once here with the environment they need.

Larq 0.13/0.14 builds on Keras 2: TensorFlow 2.16 hands out Keras 3 unless
`TF_USE_LEGACY_KERAS=1` is set before TensorFlow is first imported (lightnas.deploy sets it);
this module also quiets TensorFlow's C++ start-up logging.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import larq  # noqa: E402
import larq_compute_engine as lce  # noqa: E402
import tensorflow as tf  # noqa: E402
from flatbuffers import flexbuffers  # noqa: E402
from larq_compute_engine.tflite.python.interpreter import Interpreter  # noqa: E402
from tensorflow.lite.python import schema_py_generated as tflite_schema  # noqa: E402
from tensorflow.lite.tools import flatbuffer_utils  # noqa: E402

if not tf.keras.layers.Layer.__module__.startswith("tf_keras"):
    # TensorFlow was imported before LightNAS with Keras 3: Larq's layers would not work
    raise ImportError(
        "lightnas.deploy needs TensorFlow's legacy Keras: set TF_USE_LEGACY_KERAS=1 before "
        "importing tensorflow (or import lightnas first)",
        name="tf_keras",
    )

keras = tf.keras

__all__ = [
    "Interpreter",
    "flatbuffer_utils",
    "flexbuffers",
    "keras",
    "larq",
    "lce",
    "tf",
    "tflite_schema",
]


def versions() -> dict[str, str]:
    """The versions of the deployment libraries (for reports and file metadata)."""
    return {"tensorflow": tf.__version__, "larq": larq.__version__, "lce": lce.__version__}
