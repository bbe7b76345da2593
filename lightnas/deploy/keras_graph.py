"""Keras mappings of the modules only graph-file spaces build (lightnas.models.graph): the graph
body with its merges, the ReLU in front of a 32-bit transition conv, and the activations of the
`prelu`, `hardtanh` and `dropout` ops. Registered into `KERAS_OPS` when imported
(lightnas.deploy.convert imports this module)."""

from __future__ import annotations

import numpy as np
from torch import nn

from lightnas.deploy.backend import keras, tf
from lightnas.deploy.keras_layers import Clip
from lightnas.deploy.keras_model import (
    KerasBuilder,
    _relu,
    keras_op,
    layer_name,
    numpy,
    qualified,
)
from lightnas.errors import DeployError
from lightnas.models.graph.modules import Add, Concat, GraphBody, ReluAt32


def _merge(layer: object, inputs: list[tf.Tensor], name: str) -> tf.Tensor:
    """A merge node over several values: a sum (Add) or a concatenation along channels (NHWC)."""
    if isinstance(layer, Add):
        return keras.layers.Add(name=layer_name(name))(inputs)
    if isinstance(layer, Concat):
        return keras.layers.Concatenate(axis=3, name=layer_name(name))(inputs)
    raise DeployError(f"cannot convert {name} ({type(layer).__name__}) with several inputs")


@keras_op(GraphBody)
def _graph_body(build: KerasBuilder, body: GraphBody, x: tf.Tensor, name: str) -> tf.Tensor:
    """The body's layers in its order, each reading the values its `reads` name (0 = the input)."""
    values = [x]
    for k, (layer, reads) in enumerate(zip(body.layers, body.reads, strict=True)):
        where = qualified(name, f"layers.{k}")
        inputs = [values[i] for i in reads]
        if len(inputs) == 1:
            values.append(build(layer, inputs[0], where))
        else:
            values.append(_merge(layer, inputs, where))
    return values[-1]


@keras_op(ReluAt32)
def _relu_at_32(build: KerasBuilder, module: ReluAt32, x: tf.Tensor, name: str) -> tf.Tensor:
    y = _relu(build, module, x, qualified(name, "relu"))
    return build(module.conv, y, qualified(name, "conv"))


@keras_op(nn.PReLU)
def _prelu(build: KerasBuilder, module: nn.PReLU, x: tf.Tensor, name: str) -> tf.Tensor:
    layer = keras.layers.PReLU(shared_axes=[1, 2], name=layer_name(name))
    y = layer(x)
    slopes = numpy(module.weight)
    # one slope per channel, or PyTorch's default single slope shared by every channel
    layer.set_weights([np.broadcast_to(slopes, (int(x.shape[-1]),)).reshape(1, 1, -1)])
    return y


@keras_op(nn.Hardtanh)
def _hardtanh(build: KerasBuilder, module: nn.Hardtanh, x: tf.Tensor, name: str) -> tf.Tensor:
    return Clip(float(module.min_val), float(module.max_val), name=layer_name(name))(x)


@keras_op(nn.Dropout)
def _dropout(build: KerasBuilder, module: nn.Module, x: tf.Tensor, name: str) -> tf.Tensor:
    return x  # the child is converted in eval mode: dropout is the identity
