"""Quantisation-aware training of the kernels: every step runs forward and backward with each
convolution and dense kernel rounded to 2**bits levels per output channel (affine, between that
channel's minimum and maximum, as `bench/weight_bits.py` rounds them), and the gradient taken
there updates the float kernels (the straight-through estimator: Bengio et al. 2013; Jacob et al.
2018, "Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
Inference"). Batch norm's statistics are gathered on the rounded kernels too, and validation reads
the network with its kernels rounded, so a run's Valid curve is what a bundle at that many bits
would score. The saved model keeps float kernels; rounding them again gives the same network.

Per output channel, rounding commutes with folding batch norm's per-channel scale into the kernel,
so a bundle that folds first stores the same levels.
"""
import keras
import tensorflow as tf

from training.sam import SettingTrainer


def rounded_per_channel(kernel, bits: int):
    """`kernel` rounded to 2**bits evenly spaced levels between each output channel's (last axis)
    minimum and maximum."""
    axes = list(range(len(kernel.shape) - 1))
    lo = tf.reduce_min(kernel, axis=axes, keepdims=True)
    hi = tf.reduce_max(kernel, axis=axes, keepdims=True)
    scale = tf.where(hi > lo, (hi - lo) / (2 ** bits - 1), tf.ones_like(hi))
    return tf.round((kernel - lo) / scale) * scale + lo


def kernels(network: keras.Model) -> list:
    return [w for w in network.trainable_weights if w.path.endswith("kernel")]


def round_kernels(network: keras.Model, bits: int):
    """Rounds the network's kernels in place, for good: how a run trained with `bits` is released
    (training.release), so the released network is the one its Valid curve measured."""
    for w in kernels(network):
        w.assign(rounded_per_channel(w.value, bits))


@keras.saving.register_keras_serializable(package="ferlive")
class QuantisedKernelTrainer(SettingTrainer):
    """A `keras.Sequential` of [augmentation..., network] whose steps see the network's kernels
    rounded to `bits` per output channel (TensorFlow backend)."""

    SETTING, DEFAULT = "bits", 4

    def _round_kernels(self):
        """Rounds the network's kernels in place; returns their float values, to put back."""
        saved = []
        for w in kernels(self.layers[-1]):
            value = tf.identity(w.value)
            saved.append(value)
            w.assign(rounded_per_channel(value, self.bits))
        return saved

    def _restore_kernels(self, saved):
        for w, value in zip(kernels(self.layers[-1]), saved):
            w.assign(value)

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        *augmentation, network = self.layers
        for layer in augmentation:
            x = layer(x, training=True)
        saved = self._round_kernels()
        with tf.GradientTape() as tape:
            y_pred = network(x, training=True)
            loss = self._compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
        self._loss_tracker.update_state(loss, sample_weight=tf.shape(x)[0])
        gradients = tape.gradient(loss, network.trainable_weights)
        self._restore_kernels(saved)  # the step lands on the float kernels (straight through)
        self.optimizer.apply_gradients(zip(gradients, network.trainable_weights))
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        saved = self._round_kernels()
        y_pred = self.layers[-1](x, training=False)
        loss = self._compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=False)
        self._loss_tracker.update_state(loss, sample_weight=tf.shape(x)[0])
        self._restore_kernels(saved)
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
