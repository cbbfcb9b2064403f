"""Sharpness-aware minimisation (Foret et al. 2021, "Sharpness-Aware Minimization for Efficiently
Improving Generalization") as a Keras trainer: each step takes the gradient at the worst weights
within a radius `rho` of the current ones (one extra forward and backward pass, so about twice the
step cost) and applies it at the current weights, which steers training towards flat minima.
Its gains were largest on noisy labels, which FER's crowd votes are.
"""
import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="ferlive")
class SharpnessAwareTrainer(keras.Sequential):
    """A `keras.Sequential` of [augmentation..., network] trained with SAM (TensorFlow backend)."""

    def __init__(self, layers=None, rho: float = 0.05, **kwargs):
        super().__init__(layers, **kwargs)
        self.rho = rho

    def get_config(self):
        return {**super().get_config(), "rho": self.rho}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        trainer = super().from_config(config, custom_objects=custom_objects)
        trainer.rho = config.get("rho", 0.05)
        return trainer

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
