"""Training-time augmentation as Keras preprocessing layers.

They run only while training: `train.py` puts them in front of the model in a wrapper
it fits, and saves the bare model, so the exported network never carries them. The
layers work on raw 0-255 pixels, before the model's own normalisation.
"""

import keras
from keras import layers


@keras.saving.register_keras_serializable(package="ferlive")
class RandomGamma(layers.Layer):
    """Per-image gamma curve 255 * (x / 255) ** g, log g uniform in [-strength, strength].

    Cameras and rooms differ most in their tone curve (dim rooms, backlight, auto exposure),
    which a linear contrast/brightness change does not imitate.
    """

    def __init__(self, strength=0.4, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.strength, self.seed = strength, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training or self.strength <= 0:
            return images
        ops = keras.ops
        log_gamma = keras.random.uniform((ops.shape(images)[0], 1, 1, 1), -self.strength, self.strength,
                                         seed=self.seed_generator)
        return 255.0 * ops.power(ops.clip(images / 255.0, 0.0, 1.0), ops.exp(log_gamma))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "strength": self.strength, "seed": self.seed}


def create_augmentation(seed: int | None = None, strength: float = 1.0, photometric: bool = False,
                        geometric: bool = True) -> keras.Sequential:
    """Flip, small rotation, shift, zoom, contrast and brightness, and a cut-out patch.

    The geometry is kept small: FER2013 faces are already registered, and the live
    pipeline crops faces the same way, so large warps would only teach distortions the
    model never sees at inference. The shift and zoom imitate a detector's box jitter.
    `photometric` adds what real cameras do to a face and FER2013 rarely shows: tone
    curves (gamma), defocus or motion blur, and sensor noise. `geometric=False` leaves out the
    flip, rotation, shift, zoom and cut-out (training/consistent.py draws those into fixed copies,
    mirrored there at strength 1).
    """
    s = strength
    stack = [
        layers.RandomFlip("horizontal", seed=seed),
        layers.RandomRotation(0.03 * s, fill_mode="reflect", seed=seed),  # about +-11 degrees
        layers.RandomTranslation(0.1 * s, 0.1 * s, fill_mode="reflect", seed=seed),
        layers.RandomZoom((-0.15 * s, 0.1 * s), fill_mode="reflect", seed=seed),
    ] if geometric else []
    stack += [
        layers.RandomContrast(0.3 * s, value_range=(0, 255), seed=seed),
        layers.RandomBrightness(0.2 * s, value_range=(0, 255), seed=seed),
    ]
    if photometric:
        stack += [
            RandomGamma(0.4 * s, seed=seed),
            layers.RandomGaussianBlur(factor=0.3 * s, kernel_size=3, sigma=(0.1, 1.2), value_range=(0, 255), seed=seed),
            # GaussianNoise takes a stddev in [0, 1]: apply it on the 0-1 scale (about 3 gray levels).
            layers.Rescaling(1 / 255),
            layers.GaussianNoise(0.012 * s, seed=seed),
            layers.Rescaling(255),
        ]
    if geometric:
        stack.append(layers.RandomErasing(factor=0.5, scale=(0.02, 0.15), value_range=(0, 255), seed=seed))
    return keras.Sequential(stack, name="augment")
