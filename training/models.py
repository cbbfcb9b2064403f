"""Named FER+ architectures behind one factory, `create_model(name)`.

Every model obeys one contract, so callers never normalise anything themselves:
raw 48x48x1 gray values 0-255 in, 8 probabilities in FER+ order out.

* `seed_cnn`: the original student network, kept as the reference point.
* `fernet`: the production network. Plain 3x3 convolutions because they are what both
  this CPU (training) and WebGL/wasm (inference) run fastest per FLOP at 48x48; residual
  stages so it trains quickly, global average pooling instead of a large dense head, so
  the parameter budget goes into features rather than a classifier.
"""

from __future__ import annotations

import keras
from keras import layers

from training.data import EMOTIONS, IMAGE_SIZE

INPUT_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)
NUM_CLASSES = len(EMOTIONS)


def _normalise(x):
    # Inside the model, so every caller (browser, API, tests) passes raw 0-255 pixels.
    return layers.Normalization(mean=127.5, variance=127.5**2, name="scale")(x)


def _conv_bn_relu(x, filters, name, strides=1, separable=False):
    conv = layers.SeparableConv2D if separable else layers.Conv2D
    x = conv(filters, 3, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _rep_conv_bn_relu(x, filters, name):
    """A RepVGG block (Ding et al. 2021) for training: the 3x3 convolution plus a 1x1 one and, where
    the shapes allow, the identity, each batch-normalised, summed before the ReLU. The extra paths
    make a plain stack train like a residual one; `training.reparam.fuse` folds all three into one
    3x3 convolution afterwards, so the page runs the plain network at the plain network's cost.
    The 3x3 path keeps the plain block's layer names."""
    branches = [layers.BatchNormalization(name=f"{name}_bn")(
        layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x))]
    branches.append(layers.BatchNormalization(name=f"{name}_rep1x1_bn")(
        layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_rep1x1_conv")(x)))
    if x.shape[-1] == filters:
        branches.append(layers.BatchNormalization(name=f"{name}_repid_bn")(x))
    x = layers.Add(name=f"{name}_rep_add")(branches)
    return layers.ReLU(name=f"{name}_relu")(x)


def _squeeze_excite(x, reduction, name):
    """Hu et al.'s squeeze-and-excitation: each channel rescaled by a gate computed from all
    channels' means, so a stage can weigh its features by what the whole face shows."""
    channels = x.shape[-1]
    gate = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_squeeze")(x)
    # 1x1 convolutions on the 1x1 map, as keras.applications' EfficientNet does: tfjs runs them as
    # fused convolutions, where Dense on a 4-D tensor exports as a dozen reshape and gather ops.
    gate = layers.Conv2D(max(1, channels // reduction), 1, activation="relu", name=f"{name}_reduce")(gate)
    gate = layers.Conv2D(channels, 1, activation="sigmoid", name=f"{name}_expand")(gate)
    return layers.Multiply(name=f"{name}_excite")([x, gate])


def seed_cnn(dropout: float = 0.4) -> keras.Model:
    """The original student CNN: Conv-BN-ReLU 32, 32, 64, 64, 128, 256, dense head."""
    inputs = keras.Input(INPUT_SHAPE, name="pixels")
    x = _normalise(inputs)
    for i, (filters, pool) in enumerate([(32, False), (32, True), (64, False), (64, True),
                                         (128, True), (256, True)]):
        x = _conv_bn_relu(x, filters, f"block{i + 1}")
        if pool:
            x = layers.MaxPooling2D(name=f"block{i + 1}_pool")(x)
            x = layers.Dropout(dropout / 2, name=f"block{i + 1}_drop")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(128, activation="relu", name="fc")(x)
    x = layers.Dropout(dropout, name="fc_drop")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="seed_cnn")


def _residual_stage(x, filters, name, downsample):
    """Two 3x3 convs with an identity (or strided 1x1) shortcut, as in ResNet-18."""
    strides = 2 if downsample else 1
    shortcut = x
    if downsample or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False, name=f"{name}_proj")(x)
        shortcut = layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    x = _conv_bn_relu(x, filters, f"{name}_a", strides=strides)
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_b_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_b_bn")(x)
    x = layers.Add(name=f"{name}_add")([x, shortcut])
    return layers.ReLU(name=f"{name}_out")(x)


def fernet(width: int = 32, dropout: float = 0.3) -> keras.Model:
    """Production model: 3x3 stem, four residual stages (48, 24, 12, 6 px), GAP, softmax.

    width=32 gives stages of 32, 64, 128, 192 channels and about 0.85M parameters.
    """
    inputs = keras.Input(INPUT_SHAPE, name="pixels")
    x = _normalise(inputs)
    x = _conv_bn_relu(x, width, "stem")
    for i, (mult, down) in enumerate([(1, False), (2, True), (4, True), (6, True)]):
        x = _residual_stage(x, width * mult, f"stage{i + 1}", down)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, name="head_drop")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="fernet")


def pagenet(width: int = 16, convs=(2, 2, 2, 2), channels=None, dropout: float = 0.3,
            squeeze_excite: int = 0, separable: bool = False, rep_branches: bool = False) -> keras.Model:
    """Page model: a plain VGG-style stack of 3x3 Conv-BN-ReLU at four resolutions (48, 24, 12, 6 px)
    with 1x, 2x, 4x, 8x `width` channels, max-pool between, global average pooling, softmax.
    `convs` says how many convolutions each resolution gets (default two each); `channels`, four
    counts, replaces the 1x, 2x, 4x, 8x `width` (the 6 px stage holds most of the parameters,
    the 48 and 24 px stages most of the multiply-adds).

    At width 16 about 0.30M parameters and 29M multiply-adds a face, a quarter of fernet's. Plain 3x3
    convolutions rather than depthwise-separable ones: on this 2-core CPU the separable shape
    of the best compact FER+ model trains at half the speed
    (`python bench/train_speed.py --models pagenet separable`), and training time is what
    limits accuracy here. Extra depth is cheapest in the middle stages: a conv at 24 or 12 px
    costs as many multiply-adds as one at 48 px but a quarter of the parameters of one at 6 px.
    `squeeze_excite` R > 0 ends each resolution with a squeeze-and-excitation gate whose hidden
    layer has 1/R of the channels (about 2/R of the last stage's channels squared in parameters).
    `separable` makes every convolution but the first depthwise-separable, the shape of the best
    compact FER+ model (48-96-192-384 channels, 3-3-2-1 convolutions, 0.17M parameters); the first
    stays plain because a depthwise filter on the one gray channel would be a single 3x3 kernel.
    `rep_branches` trains each convolution as a RepVGG block (1x1 and identity paths beside the 3x3);
    `training.reparam.fuse` turns the trained network into the plain one, weights folded in.
    """
    if separable and rep_branches:
        raise ValueError("rep_branches folds into plain 3x3 convolutions; it does not combine with separable")
    if len(convs) != 4 or min(convs) < 1:
        raise ValueError(f"convs needs four counts of at least 1, one per resolution; got {convs}")
    channels = tuple(channels) if channels else tuple(width * m for m in (1, 2, 4, 8))
    if len(channels) != 4 or min(channels) < 1:
        raise ValueError(f"channels needs four counts of at least 1, one per resolution; got {channels}")
    inputs = keras.Input(INPUT_SHAPE, name="pixels")
    x = _normalise(inputs)
    for stage, (filters, count) in enumerate(zip(channels, convs), start=1):
        if stage > 1:
            x = layers.MaxPooling2D(name=f"stage{stage}_pool")(x)
        for i in range(count):
            name = f"stage{stage}_{'abcdefgh'[i]}"
            if rep_branches:
                x = _rep_conv_bn_relu(x, filters, name)
            else:
                x = _conv_bn_relu(x, filters, name, separable=separable and (stage, i) != (1, 0))
        if squeeze_excite:
            x = _squeeze_excite(x, squeeze_excite, f"stage{stage}_se")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, name="head_drop")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="pagenet")


MODELS = {"seed_cnn": seed_cnn, "fernet": fernet, "pagenet": pagenet}


@keras.saving.register_keras_serializable(package="ferlive")
class AppendMirrorImages(layers.Layer):
    """(N, H, W, C) -> (2N, H, W, C): the batch, then the same images mirrored left-right."""

    def call(self, images):
        return keras.ops.concatenate([images, keras.ops.flip(images, axis=-2)], axis=0)

    def compute_output_shape(self, input_shape):
        return (None, *input_shape[1:])


@keras.saving.register_keras_serializable(package="ferlive")
class AverageMirrorPairs(layers.Layer):
    """(2N, K) -> (N, K): the mean of row i and row N + i."""

    def call(self, probs):
        half = keras.ops.shape(probs)[0] // 2
        return (probs[:half] + probs[half:]) / 2

    def compute_output_shape(self, input_shape):
        return (None, *input_shape[1:])


def with_flip_averaging(model: keras.Model) -> keras.Model:
    """Wraps `model` so it returns the mean of its answers on the face and its mirror image.

    Faces are roughly left-right symmetric in expression, so the two views disagree mostly
    where the model is unsure; averaging them is a cheap, label-free ensemble (test-time
    augmentation). Both views go through the network as one batch, so an exported graph
    holds the weights once; it costs a second pass, no parameters.
    """
    inputs = keras.Input(INPUT_SHAPE, name="pixels")
    probs = model(AppendMirrorImages(name="mirror")(inputs))
    return keras.Model(inputs, AverageMirrorPairs(name="mean_of_views")(probs), name=f"{model.name}_flip")


# Test-time views: (dx, dy, mirrored). A shift of 2 px is 4% of the face, about the framing
# jitter a detector's box has from frame to frame. Each preset was compared on FER+ Valid
# (README, "Test-time views"); more views cost proportionally more time a face.
VIEW_PRESETS = {
    1: ((0, 0, False),),
    2: ((0, 0, False), (0, 0, True)),
    4: ((0, 0, False), (0, 0, True), (2, 2, False), (-2, -2, True)),
    10: tuple((dx, dy, m) for dx, dy in ((0, 0), (2, 0), (-2, 0), (0, 2), (0, -2)) for m in (False, True)),
}


@keras.saving.register_keras_serializable(package="ferlive")
class AppendViews(layers.Layer):
    """(N, H, W, C) -> (V*N, H, W, C): each view of the batch in turn, a view being the faces
    shifted by (dx, dy) pixels (the border reflected in) and optionally mirrored left-right."""

    def __init__(self, views, **kwargs):
        super().__init__(**kwargs)
        self.views = [[int(dx), int(dy), bool(m)] for dx, dy, m in views]
        self.pad = max([abs(v) for dx, dy, _ in self.views for v in (dx, dy)] + [0])

    def call(self, images):
        p = self.pad
        h, w = images.shape[1], images.shape[2]
        padded = keras.ops.pad(images, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect") if p else images
        out = []
        for dx, dy, mirrored in self.views:
            view = padded[:, p + dy: p + dy + h, p + dx: p + dx + w, :]
            out.append(keras.ops.flip(view, axis=-2) if mirrored else view)
        return keras.ops.concatenate(out, axis=0)

    def compute_output_shape(self, input_shape):
        return (None, *input_shape[1:])

    def get_config(self):
        return {**super().get_config(), "views": self.views}


@keras.saving.register_keras_serializable(package="ferlive")
class AverageViews(layers.Layer):
    """(V*N, K) -> (N, K): the mean over the V views of each face."""

    def __init__(self, count: int, **kwargs):
        super().__init__(**kwargs)
        self.count = int(count)

    def call(self, probs):
        return keras.ops.mean(keras.ops.reshape(probs, (self.count, -1, probs.shape[-1])), axis=0)

    def compute_output_shape(self, input_shape):
        return (None, *input_shape[1:])

    def get_config(self):
        return {**super().get_config(), "count": self.count}


def with_test_time_views(model: keras.Model, count: int) -> keras.Model:
    """Wraps `model` so it answers with the mean of its answers on `count` views of the face
    (VIEW_PRESETS: mirrored, shifted by 2 px): a label-free ensemble of one network. One batch
    goes through the network, so an exported graph holds the weights once."""
    if count == 2:
        return with_flip_averaging(model)  # the same views; kept so existing models stay identical
    try:
        views = VIEW_PRESETS[count]
    except KeyError:
        raise ValueError(f"no preset of {count} views; choose one of {sorted(VIEW_PRESETS)}") from None
    if count == 1:
        return model
    inputs = keras.Input(INPUT_SHAPE, name="pixels")
    probs = model(AppendViews(views, name="views")(inputs))
    return keras.Model(inputs, AverageViews(count, name="mean_of_views")(probs), name=f"{model.name}_views{count}")


@keras.saving.register_keras_serializable(package="ferlive")
class PriorCorrection(layers.Layer):
    """Probabilities -> probabilities divided by the training class prior to the power `tau`,
    renormalised: softmax(log p - tau * log prior). FER+ has 0.5% disgust and contempt in
    Train, so a model's scores under-call them; tau 0 changes nothing, tau 1 is the balanced
    (equal-prior) answer. Logit adjustment, applied after training (Menon et al. 2021)."""

    def __init__(self, prior, tau: float, **kwargs):
        super().__init__(**kwargs)
        self.prior, self.tau = [float(p) for p in prior], float(tau)

    def call(self, probs):
        log_prior = keras.ops.log(keras.ops.convert_to_tensor(self.prior, dtype=probs.dtype))
        return keras.ops.softmax(keras.ops.log(keras.ops.maximum(probs, 1e-7)) - self.tau * log_prior, axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "prior": self.prior, "tau": self.tau}


def with_prior_correction(model: keras.Model, prior, tau: float) -> keras.Model:
    """Wraps `model` so its answers are corrected for the training class prior (PriorCorrection)."""
    inputs = keras.Input(INPUT_SHAPE, name="pixels")
    out = PriorCorrection(prior, tau, name="prior_correction")(model(inputs))
    return keras.Model(inputs, out, name=f"{model.name}_prior{tau:g}")


def load_model(path, compile: bool = False) -> keras.Model:
    """Loads a saved FER+ model; importing this module registers the custom layers it may use."""
    return keras.saving.load_model(path, compile=compile)


def unwrap(model: keras.Model) -> keras.Model:
    """The network inside `with_flip_averaging` / `with_test_time_views` / `with_prior_correction` wrappers, or `model` itself."""
    inner = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return unwrap(inner[0]) if len(inner) == 1 else model


def create_model(name: str, **kwargs) -> keras.Model:
    """The named architecture; options given as None keep the factory's default (e.g. --width unset)."""
    try:
        factory = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}") from None
    return factory(**{k: v for k, v in kwargs.items() if v is not None})
