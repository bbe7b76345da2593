"""Keras mappings of PyTorch's max and average pools: their padding and ceil_mode made explicit
(pads with the lowest float before a max pool, zeros before an average pool that counts them).
Registered into `KERAS_OPS` when imported (lightnas.deploy.convert imports this module)."""

from __future__ import annotations

import numpy as np
from torch import nn

from lightnas.deploy.backend import keras, tf
from lightnas.deploy.keras_layers import ConstantPad
from lightnas.deploy.keras_model import KerasBuilder, check_spatial, keras_op, layer_name, pair
from lightnas.errors import DeployError

# what a max pool pads with: below every float a network produces (as PyTorch's -inf padding)
_MAX_POOL_PAD = float(np.finfo(np.float32).min)


def ceil_overhang(x: tf.Tensor, pool: nn.Module) -> tuple[int, int]:
    """Rows / columns past the padded input that ceil_mode's last window reads (0, 0 without
    ceil_mode). PyTorch's rule: a last window must start inside the input or its left padding."""
    check_spatial(x, "a pool")
    if not pool.ceil_mode:
        return 0, 0
    size, stride = pair(pool.kernel_size), pair(pool.stride or pool.kernel_size)
    pad = pair(pool.padding)
    over = []
    for i in range(2):
        length = int(x.shape[1 + i])
        span = length + 2 * pad[i]
        out = -(-(span - size[i]) // stride[i]) + 1  # ceil
        if (out - 1) * stride[i] >= length + pad[i]:
            out -= 1
        over.append(max(0, (out - 1) * stride[i] + size[i] - span))
    return over[0], over[1]


@keras_op(nn.MaxPool2d)
def _max_pool(build: KerasBuilder, pool: nn.MaxPool2d, x: tf.Tensor, name: str) -> tf.Tensor:
    if pair(pool.dilation) != (1, 1):
        raise DeployError(f"{name}: max pooling with dilation has no mapping")
    (ph, pw), (oh, ow) = pair(pool.padding), ceil_overhang(x, pool)
    if ph or pw or oh or ow:
        pads = [(ph, ph + oh), (pw, pw + ow)]
        x = ConstantPad(pads, _MAX_POOL_PAD, name=layer_name(name, "pad"))(x)
    size = pair(pool.kernel_size)
    stride = pair(pool.stride or pool.kernel_size)
    return keras.layers.MaxPooling2D(size, stride, "valid", name=layer_name(name))(x)


@keras_op(nn.AvgPool2d)
def _avg_pool(build: KerasBuilder, pool: nn.AvgPool2d, x: tf.Tensor, name: str) -> tf.Tensor:
    size, stride = pair(pool.kernel_size), pair(pool.stride or pool.kernel_size)
    (ph, pw), overhang = pair(pool.padding), ceil_overhang(x, pool)
    if pool.divisor_override is not None or ((ph or pw) and not pool.count_include_pad):
        raise DeployError(
            f"{name}: average pooling with divisor_override or count_include_pad=False has no "
            "mapping"
        )
    if any(overhang):
        # ceil_mode's last window averages the pixels it holds: TensorFlow's 'same' padding
        # does so when the window is the stride and all its padding is at the end (stride 2)
        wide = any(s > 2 for s, o in zip(stride, overhang, strict=True) if o)
        if size != stride or ph or pw or wide:
            raise DeployError(
                f"{name}: ceil_mode average pooling with a partial last window needs kernel == "
                "stride <= 2 and no padding"
            )
        return keras.layers.AveragePooling2D(size, stride, "same", name=layer_name(name))(x)
    if ph or pw:
        # PyTorch's default counts the zero padding in the average, as an explicit pad does
        x = ConstantPad([(ph, ph), (pw, pw)], 0.0, name=layer_name(name, "pad"))(x)
    return keras.layers.AveragePooling2D(size, stride, "valid", name=layer_name(name))(x)
