"""Training-time augmentation as Keras preprocessing layers.

They run only while training: `train.py` puts them in front of the model in a wrapper
it fits, and saves the bare model, so the exported network never carries them. The
layers work on raw 0-255 pixels, before the model's own normalisation.
"""

import keras
from keras import layers


def create_augmentation(seed: int | None = None, strength: float = 1.0) -> keras.Sequential:
    """Flip, small rotation, shift, zoom, contrast and brightness, and a cut-out patch.

    The geometry is kept small: FER2013 faces are already registered, and the live
    pipeline crops faces the same way, so large warps would only teach distortions the
    model never sees at inference.
    """
    s = strength
    return keras.Sequential(
        [
            layers.RandomFlip("horizontal", seed=seed),
            layers.RandomRotation(0.03 * s, fill_mode="reflect", seed=seed),  # about +-11 degrees
            layers.RandomTranslation(0.1 * s, 0.1 * s, fill_mode="reflect", seed=seed),
            layers.RandomZoom((-0.15 * s, 0.1 * s), fill_mode="reflect", seed=seed),
            layers.RandomContrast(0.3 * s, value_range=(0, 255), seed=seed),
            layers.RandomBrightness(0.2 * s, value_range=(0, 255), seed=seed),
            layers.RandomErasing(factor=0.5, scale=(0.02, 0.15), value_range=(0, 255), seed=seed),
        ],
        name="augment",
    )
