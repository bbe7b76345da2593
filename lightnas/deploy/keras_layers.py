"""Custom Keras layers of the rebuilt child: plain TF ops (pads with a value, channel
permutations and slices, clipping, k-bit activations), which TFLite and LCE convert."""

from __future__ import annotations

from collections.abc import Sequence

from lightnas.deploy.backend import keras, tf


class ConstantPad(keras.layers.Layer):
    """Pads height and width, ((top, bottom), (left, right)), with a constant (-1 before a
    binary conv's sign, 0 for a float conv, the lowest float before a max pool)."""

    def __init__(self, pads: Sequence[Sequence[int]], value: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.pads = [[int(a), int(b)] for a, b in pads]
        self.value = value

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return tf.pad(x, [[0, 0], *self.pads, [0, 0]], constant_values=self.value)


class ChannelPermute(keras.layers.Layer):
    """Reorders the channels (a channel shuffle) with a constant permutation."""

    def __init__(self, order: Sequence[int], **kwargs) -> None:
        super().__init__(**kwargs)
        self.order = [int(i) for i in order]

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return tf.gather(x, self.order, axis=3)


class ChannelSlice(keras.layers.Layer):
    """Channels [start, stop) of an NHWC tensor."""

    def __init__(self, start: int, stop: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.start, self.stop = start, stop

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return x[..., self.start : self.stop]


class Clip(keras.layers.Layer):
    """Clips to [low, high] (a Hardtanh)."""

    def __init__(self, low: float, high: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.low, self.high = low, high

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return tf.clip_by_value(x, self.low, self.high)


class KBitActivation(keras.layers.Layer):
    """`lightnas.binary.quantize_activation` at 2/4/8 bits: uniform levels on [-1, 1] (tf.round
    and torch.round both round half to even)."""

    def __init__(self, bits: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.bits = bits

    def call(self, x: tf.Tensor) -> tf.Tensor:
        levels = float(2**self.bits - 1)
        unit = (tf.clip_by_value(x, -1.0, 1.0) + 1.0) / 2.0
        return tf.round(unit * levels) / levels * 2.0 - 1.0


# ---- the builder -------------------------------------------------------------------------------
