"""Sharpness-aware minimisation (Foret et al. 2021, "Sharpness-Aware Minimization for Efficiently
Improving Generalization") as a Keras trainer: each step takes the gradient at the worst weights
within a radius `rho` of the current ones (one extra forward and backward pass, so about twice the
step cost) and applies it at the current weights, which steers training towards flat minima.
Its gains were largest on noisy labels, which FER's crowd votes are.
"""
import keras
import tensorflow as tf


class SettingTrainer(keras.Sequential):
    """A `keras.Sequential` of [augmentation..., network] with one setting of its own training step
    (`SETTING`, default `DEFAULT`), saved with the model so that `last.keras` resumes with it."""

    SETTING, DEFAULT = "", None

    def __init__(self, layers=None, **kwargs):
        value = kwargs.pop(self.SETTING, self.DEFAULT)
        super().__init__(layers, **kwargs)
        setattr(self, self.SETTING, value)

    def get_config(self):
        return {**super().get_config(), self.SETTING: getattr(self, self.SETTING)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        trainer = super().from_config(config, custom_objects=custom_objects)
        setattr(trainer, cls.SETTING, config.get(cls.SETTING, cls.DEFAULT))
        return trainer


@keras.saving.register_keras_serializable(package="ferlive")
class SharpnessAwareTrainer(SettingTrainer):
    """A `keras.Sequential` of [augmentation..., network] trained with SAM (TensorFlow backend)."""

    SETTING, DEFAULT = "rho", 0.05

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        *augmentation, network = self.layers
        # Augment once, so both passes see the same images.
        for layer in augmentation:
            x = layer(x, training=True)
        weights = network.trainable_weights

        with tf.GradientTape() as tape:
            y_pred = network(x, training=True)
            loss = self._compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
        self._loss_tracker.update_state(loss, sample_weight=tf.shape(x)[0])
        gradients = tape.gradient(loss, weights)

        # Climb to the worst point of the rho-ball (first-order), take the gradient there, come back.
        scale = self.rho / (tf.linalg.global_norm(gradients) + 1e-12)
        shifts = [g * scale for g in gradients]
        for w, shift in zip(weights, shifts):
            w.assign_add(shift)
        with tf.GradientTape() as tape:
            worst_loss = self._compute_loss(x=x, y=y, y_pred=network(x, training=True),
                                            sample_weight=sample_weight, training=True)
        gradients = tape.gradient(worst_loss, weights)
        for w, shift in zip(weights, shifts):
            w.assign_sub(shift)

        self.optimizer.apply_gradients(zip(gradients, weights))
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
