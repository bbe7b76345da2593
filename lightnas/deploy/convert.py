"""A child to a Larq Compute Engine .tflite, and reading one back: its ops, its metadata, its
outputs under LCE's interpreter.

The .tflite takes one NHWC float32 image (normalised as in training: the metadata holds the
mean and std) and returns the logits. Its metadata entry `lightnas` (a JSON string) holds the
architecture, the model description, the binary convs, the convs kept in float and the versions
that converted it.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

# registers the mappings of graph-space modules and of pools
from lightnas.deploy import keras_graph, keras_pooling  # noqa: F401
from lightnas.deploy.backend import (
    Interpreter,
    flatbuffer_utils,
    flexbuffers,
    lce,
    tflite_schema,
    versions,
)
from lightnas.deploy.keras_model import BITPACK_WORD, build_keras_model
from lightnas.errors import DeployError

METADATA_NAME = "lightnas"
BCONV_OP = "LceBconv2d"  # LCE's binary convolution (a TFLite custom op)
QUANTIZE_OP = "LceQuantize"
CHECK_IMAGES = 2  # random images every deployment is checked on against the PyTorch child


@dataclass
class Deployment:
    """A converted child: the .tflite bytes and what they hold."""

    flatbuffer: bytes
    binary_convs: list[str]
    float_fallback: list[str]
    ops: dict[str, int] = field(default_factory=dict)
    grouped: int = 0
    """Grouped binary convs: they run LCE's indirect BGEMM kernels."""

    @property
    def bconv_ops(self) -> int:
        return self.ops.get(BCONV_OP, 0)


def convert_child(
    net: nn.Module,
    input_shape: Sequence[int],
    description: Mapping | None = None,
    fallback: str | None = None,
) -> Deployment:
    """The .tflite of `net` (a child, eval mode) for (C, H, W) inputs; raises DeployError when a
    part has no mapping, or when a 1-bit conv did not become an LCE binary conv."""
    build = build_keras_model(net, input_shape, fallback)
    flatbuffer = lce.convert_keras_model(build.model)
    ops = op_counts(flatbuffer)
    if ops.get(BCONV_OP, 0) != len(build.binary_convs):
        # a 1-bit conv that the converter kept as a float conv would run at float cost
        raise DeployError(
            f"LCE converted {ops.get(BCONV_OP, 0)} of the child's {len(build.binary_convs)} "
            "1-bit convs to binary convs; the others would run in float"
        )
    grouped = grouped_binary_convs(flatbuffer)
    metadata = {
        **dict(description or {}),
        "binary_convs": build.binary_convs,
        "grouped_binary_convs": grouped,  # they need LCE's indirect BGEMM kernels
        "float_fallback": build.float_fallback,
        "input": "NHWC float32, batch 1, normalised with model.mean / model.std",
        "versions": versions(),
    }
    flatbuffer = with_metadata(flatbuffer, METADATA_NAME, json.dumps(metadata))
    return Deployment(flatbuffer, build.binary_convs, build.float_fallback, ops, grouped)


# ---- reading a flatbuffer -----------------------------------------------------------------------
def _model(flatbuffer: bytes) -> tflite_schema.ModelT:
    try:
        return flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    except Exception as err:  # the flatbuffers library raises assorted errors on bad bytes
        raise DeployError(f"not a .tflite flatbuffer ({type(err).__name__}: {err})") from None


_BUILTIN_NAMES = {
    value: name for name, value in vars(tflite_schema.BuiltinOperator).items() if name.isupper()
}


def _op_name(code: tflite_schema.OperatorCodeT) -> str:
    if code.customCode:
        return code.customCode.decode()
    # builtin codes above 127 live only in `builtinCode`; older ones in the deprecated byte too
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    return _BUILTIN_NAMES.get(builtin, str(builtin))


def op_counts(flatbuffer: bytes) -> dict[str, int]:
    """{op type: count} over the operators of every subgraph, parsed with TFLite's schema."""
    model = _model(flatbuffer)
    names = [_op_name(code) for code in model.operatorCodes]
    counts = collections.Counter(
        names[op.opcodeIndex] for graph in model.subgraphs for op in graph.operators
    )
    return dict(sorted(counts.items()))


def with_metadata(flatbuffer: bytes, name: str, text: str) -> bytes:
    """`flatbuffer` with a metadata entry `name` holding `text` (replacing one of that name)."""
    model = _model(flatbuffer)
    buffer = tflite_schema.BufferT()
    buffer.data = np.frombuffer(text.encode(), dtype=np.uint8)
    model.buffers.append(buffer)
    entry = tflite_schema.MetadataT()
    entry.name = name.encode()
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name != name.encode()] + [entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


@dataclass(frozen=True)
class FileParts:
    """What the bytes of a .tflite hold."""

    total: int
    weights: int
    """The constant tensors' data: packed binary filters, float kernels, biases, multipliers."""
    metadata: int
    """The metadata entries' data (LightNAS's JSON, the converter's runtime version)."""

    @property
    def graph(self) -> int:
        """The rest: tensor and op descriptors, names, op options, alignment. It grows with
        the number of tensors and ops (about 100 bytes each), not with the weights, so it is
        most of a tiny model's file and a fraction of a percent of a full-size network's."""
        return self.total - self.weights - self.metadata


def _data_bytes(buffer: tflite_schema.BufferT) -> int:
    return 0 if buffer.data is None else len(buffer.data)


def file_parts(flatbuffer: bytes) -> FileParts:
    """The .tflite's bytes split into weights, metadata and graph structure."""
    model = _model(flatbuffer)
    constants = {t.buffer for graph in model.subgraphs for t in graph.tensors}
    noted = {entry.buffer for entry in model.metadata or []}
    return FileParts(
        total=len(flatbuffer),
        weights=sum(_data_bytes(model.buffers[i]) for i in constants),
        metadata=sum(_data_bytes(model.buffers[i]) for i in noted - constants),
    )


def read_metadata(flatbuffer: bytes, name: str = METADATA_NAME) -> dict | None:
    """The JSON metadata entry `name` of a .tflite (None: it has none)."""
    model = _model(flatbuffer)
    for entry in model.metadata or []:
        if entry.name == name.encode():
            return json.loads(bytes(model.buffers[entry.buffer].data).decode())
    return None


# ---- running ------------------------------------------------------------------------------------
def interpreter(
    flatbuffer: bytes, threads: int = 1, reference: bool = False, grouped: bool | None = None
) -> Interpreter:
    """LCE's interpreter of `flatbuffer` (`reference`: LCE's reference binary conv kernel). A
    file with grouped binary convs (`grouped`; None: read from the file) runs LCE's indirect
    BGEMM kernels: its default ones refuse groups."""
    if grouped is None:
        grouped = grouped_binary_convs(flatbuffer) > 0
    return Interpreter(
        flatbuffer,
        num_threads=threads,
        use_reference_bconv=reference,
        use_indirect_bgemm=grouped and not reference,
    )


def grouped_binary_convs(flatbuffer: bytes) -> int:
    """How many of the file's LCE binary convs are grouped: their filter's packed input words
    cover fewer channels than the op's `channels_in` option."""
    model = _model(flatbuffer)
    names = [_op_name(code) for code in model.operatorCodes]
    grouped = 0
    for graph in model.subgraphs:
        for op in graph.operators:
            if names[op.opcodeIndex] == BCONV_OP:
                words = graph.tensors[op.inputs[1]].shape[-1]  # filter: (out, kh, kw, words)
                channels = flexbuffers.Loads(bytes(op.customOptions))["channels_in"]
                grouped += int(words) * BITPACK_WORD < int(channels)
    return grouped


def run_tflite(flatbuffer: bytes | Interpreter, images: np.ndarray) -> np.ndarray:
    """Logits of NCHW float `images` (as the PyTorch child takes them), one image at a time."""
    runner = flatbuffer if isinstance(flatbuffer, Interpreter) else interpreter(flatbuffer)
    nhwc = np.ascontiguousarray(np.asarray(images, dtype=np.float32).transpose(0, 2, 3, 1))
    return runner.predict(nhwc)


def random_check(net: nn.Module, flatbuffer: bytes, input_shape: Sequence[int]) -> float:
    """The largest |logit difference| between the .tflite and `net` on random images."""
    images = torch.randn(CHECK_IMAGES, *input_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = net.eval()(images).numpy()
    return float(abs(run_tflite(flatbuffer, images.numpy()) - expected).max())


@dataclass(frozen=True)
class Comparison:
    """The .tflite against the PyTorch child on a labelled split."""

    samples: int
    agreement: float
    """Fraction of images with the same top-1 class."""
    torch_accuracy: float
    tflite_accuracy: float
    max_difference: float
    """Largest |logit difference|."""

    def describe(self) -> str:
        return (
            f"verify: {self.samples} images; same top-1 on {100 * self.agreement:.2f}%; accuracy "
            f"PyTorch {100 * self.torch_accuracy:.2f}%, .tflite {100 * self.tflite_accuracy:.2f}%"
            f"; max |logit difference| {self.max_difference:.3g}"
        )


def compare(net: nn.Module, flatbuffer: bytes, loader) -> Comparison:
    """Run the PyTorch child and the .tflite over `loader`'s (images, labels) batches."""
    runner = interpreter(flatbuffer)
    same = right_torch = right_tflite = samples = 0
    worst = 0.0
    net = net.eval()
    for images, labels in loader:
        with torch.no_grad():
            expected = net(images).cpu().numpy()
        got = run_tflite(runner, images.cpu().numpy())
        labels = labels.cpu().numpy()
        same += int((got.argmax(1) == expected.argmax(1)).sum())
        right_torch += int((expected.argmax(1) == labels).sum())
        right_tflite += int((got.argmax(1) == labels).sum())
        worst = max(worst, float(np.abs(got - expected).max()))
        samples += len(labels)
    return Comparison(samples, same / samples, right_torch / samples, right_tflite / samples, worst)
