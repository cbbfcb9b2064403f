"""The model contract: raw 48x48x1 pixels 0-255 in, 8 FER+ probabilities out."""

import numpy as np
import pytest

from training.augment import create_augmentation
from training.models import (MODELS, VIEW_PRESETS, create_model, load_model, unwrap, with_flip_averaging,
                             with_test_time_views)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_input_output_contract(name):
    model = create_model(name)
    assert model.input_shape == (None, 48, 48, 1)
    assert model.output_shape == (None, 8)
    x = np.random.default_rng(0).integers(0, 256, (4, 48, 48, 1)).astype("float32")
    p = np.asarray(model(x, training=False))
    np.testing.assert_allclose(p.sum(1), 1, rtol=1e-5)
    assert (p >= 0).all()


def test_parameter_budgets():
    assert 0.70e6 <= create_model("seed_cnn").count_params() <= 0.75e6   # "about 0.71M"
    assert create_model("fernet").count_params() <= 1.0e6


def test_pagenet_depth_goes_where_convs_says():
    plain, deeper = create_model("pagenet", width=20), create_model("pagenet", width=20, convs=(2, 3, 3, 2))
    convs = lambda m: [layer.name for layer in m.layers if layer.name.endswith("_conv")]  # noqa: E731
    assert len(convs(plain)) == 8 and len(convs(deeper)) == 10
    assert "stage2_c_conv" in convs(deeper) and "stage4_c_conv" not in convs(deeper)
    # One 3x3 conv (and its batch norm) more at 40 and at 80 channels, nothing else changes.
    extra = (9 * 40 * 40 + 4 * 40) + (9 * 80 * 80 + 4 * 80)
    assert deeper.count_params() - plain.count_params() == extra
    assert deeper.count_params() <= 560_000  # the page's 0.6 MB bundle at ~1 byte a parameter
    with pytest.raises(ValueError, match="four counts"):
        create_model("pagenet", convs=(2, 2, 2))


def test_pagenet_channels_replace_the_width_multiples():
    same = create_model("pagenet", width=20, convs=(2, 3, 3, 2), channels=(20, 40, 80, 160))
    assert same.count_params() == create_model("pagenet", width=20, convs=(2, 3, 3, 2)).count_params()
    # Channels moved from the 6 px stage (most parameters) to the others (most multiply-adds).
    moved = create_model("pagenet", convs=(2, 3, 3, 2), channels=(24, 48, 96, 128))
    assert [moved.get_layer(f"stage{s}_a_conv").filters for s in (1, 2, 3, 4)] == [24, 48, 96, 128]
    assert moved.count_params() < same.count_params()
    with pytest.raises(ValueError, match="four counts"):
        create_model("pagenet", channels=(24, 48, 96))


def test_pagenet_squeeze_excite_gates_each_stage():
    import keras

    plain = create_model("pagenet", width=20, convs=(2, 3, 3, 2))
    gated = create_model("pagenet", width=20, convs=(2, 3, 3, 2), squeeze_excite=8)
    # Per stage: a 1x1 conv down to C/8 and one back up to C, each with biases.
    extra = sum(c * (c // 8) + c // 8 + (c // 8) * c + c for c in (20, 40, 80, 160))
    assert gated.count_params() - plain.count_params() == extra
    assert gated.count_params() <= 560_000  # still inside the page's 0.6 MB bundle
    # The stage's output is its features scaled channel by channel by a gate in (0, 1).
    x = np.random.default_rng(0).integers(0, 256, (2, 48, 48, 1)).astype("float32")
    probe = keras.Model(gated.input, [gated.get_layer(n).output for n in
                                      ("stage4_b_relu", "stage4_se_expand", "stage4_se_excite")])
    features, gate, excited = (np.asarray(t) for t in probe(x, training=False))
    assert gate.shape == (2, 1, 1, 160) and (gate > 0).all() and (gate < 1).all()
    np.testing.assert_allclose(excited, features * gate, rtol=1e-5, atol=1e-6)


def test_pagenet_separable_is_the_compact_peers_shape():
    peer = create_model("pagenet", channels=(48, 96, 192, 384), convs=(3, 3, 2, 1), separable=True)
    kinds = {layer.name: type(layer).__name__ for layer in peer.layers if layer.name.endswith("_conv")}
    # The first convolution sees one gray channel, so it stays plain; every other one is separable.
    assert kinds.pop("stage1_a_conv") == "Conv2D"
    assert len(kinds) == 8 and set(kinds.values()) == {"SeparableConv2D"}
    assert 165_000 < peer.count_params() < 180_000  # the published model's ~0.17M
    plain = create_model("pagenet", channels=(48, 96, 192, 384), convs=(3, 3, 2, 1))
    assert peer.count_params() < plain.count_params() / 5


def _randomise_batch_norms(model, seed=0):
    """Trained-looking batch-norm statistics, so a fold is tested on more than identity layers."""
    import keras

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.3, c), rng.normal(0, 0.3, c),
                               rng.uniform(0.5, 2, c)])


@pytest.mark.parametrize("squeeze_excite", [0, 4])
def test_rep_branches_fold_into_the_plain_pagenet(squeeze_excite):
    from training.reparam import fuse, has_rep_branches

    shape = dict(width=8, convs=(2, 3, 3, 2), squeeze_excite=squeeze_excite)
    trained = create_model("pagenet", rep_branches=True, **shape)
    names = {layer.name for layer in trained.layers}
    # A 1x1 path beside every 3x3; the identity only where a block keeps its channel count.
    assert sum(n.endswith("_rep1x1_conv") for n in names) == 10
    assert {n for n in names if n.endswith("_repid_bn")} == {
        f"stage{s}_{c}_repid_bn" for s, c in [(1, "b"), (2, "b"), (2, "c"), (3, "b"), (3, "c"), (4, "b")]}
    _randomise_batch_norms(trained)
    plain = fuse(trained)
    reference = create_model("pagenet", **shape)
    assert not has_rep_branches(plain)
    assert [layer.name for layer in plain.layers] == [layer.name for layer in reference.layers]
    assert plain.count_params() == reference.count_params() < trained.count_params()
    x = np.random.default_rng(1).integers(0, 256, (8, 48, 48, 1)).astype("float32")
    expected = np.asarray(trained(x, training=False))
    np.testing.assert_allclose(np.asarray(plain(x, training=False)), expected, atol=2e-6)
    assert fuse(plain) is plain  # a plain network passes unchanged
    with pytest.raises(ValueError, match="does not combine with separable"):
        create_model("pagenet", rep_branches=True, separable=True)


def test_squeeze_excite_option_is_pagenet_only(capsys):
    from training.train import parse_args

    assert parse_args(["--model", "pagenet", "--squeeze-excite", "8"]).squeeze_excite == 8
    with pytest.raises(SystemExit):
        parse_args(["--model", "fernet", "--squeeze-excite", "8"])
    assert "--squeeze-excite applies to --model pagenet only" in capsys.readouterr().err
    assert parse_args(["--model", "pagenet", "--separable"]).separable is True
    assert parse_args(["--model", "fernet"]).separable is None  # unset: fernet's factory never sees it
    with pytest.raises(SystemExit):
        parse_args(["--model", "fernet", "--separable"])
    assert "--separable applies to --model pagenet only" in capsys.readouterr().err
    assert parse_args(["--model", "pagenet", "--rep-branches"]).rep_branches is True
    with pytest.raises(SystemExit):
        parse_args(["--model", "fernet", "--rep-branches"])
    assert "--rep-branches applies to --model pagenet only" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--convs", "--channels"])
def test_shape_options_are_pagenet_only(option, capsys):
    from training.train import parse_args

    assert getattr(parse_args(["--model", "pagenet", option, "2", "3", "3", "2"]), option[2:]) == [2, 3, 3, 2]
    with pytest.raises(SystemExit):
        parse_args(["--model", "fernet", option, "2", "3", "3", "2"])
    assert "pagenet only" in capsys.readouterr().err


def test_normalisation_lives_inside_the_model():
    model = create_model("fernet")
    white = np.full((1, 48, 48, 1), 255, "float32")
    scaled = model.get_layer("scale")(white)
    np.testing.assert_allclose(np.asarray(scaled), 1.0, rtol=1e-6)  # 0-255 -> -1..1 inside


def test_unknown_model_name():
    with pytest.raises(ValueError, match="unknown model"):
        create_model("resnet1000")


def test_augmentation_only_in_training():
    aug = create_augmentation(seed=1)
    x = np.random.default_rng(0).integers(0, 256, (8, 48, 48, 1)).astype("float32")
    np.testing.assert_array_equal(np.asarray(aug(x, training=False)), x)
    assert not np.allclose(np.asarray(aug(x, training=True)), x)


def test_flip_averaging_is_the_mean_of_both_views_and_survives_saving(tmp_path):
    model = create_model("fernet")
    wrapped = with_flip_averaging(model)
    assert wrapped.count_params() == model.count_params()  # same weights, two passes
    x = np.random.default_rng(0).integers(0, 256, (4, 48, 48, 1)).astype("float32")
    expected = (np.asarray(model(x)) + np.asarray(model(x[:, :, ::-1]))) / 2
    np.testing.assert_allclose(np.asarray(wrapped(x)), expected, atol=1e-6)
    np.testing.assert_allclose(np.asarray(wrapped(x[:, :, ::-1])), expected, atol=1e-6)  # mirror-invariant

    wrapped.save(tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(np.asarray(loaded(x)), expected, atol=1e-6)
    assert unwrap(loaded).name == "fernet" and unwrap(model) is model


def test_test_time_views_average_shifted_and_mirrored_faces_and_survive_saving(tmp_path):
    model = create_model("pagenet")
    x = np.random.default_rng(0).integers(0, 256, (3, 48, 48, 1)).astype("float32")
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")  # numpy's reflect = TensorFlow's REFLECT

    def view(dx, dy, mirrored):
        v = padded[:, 2 + dy: 50 + dy, 2 + dx: 50 + dx]
        return v[:, :, ::-1] if mirrored else v

    for count in (4, 10):
        wrapped = with_test_time_views(model, count)
        assert wrapped.count_params() == model.count_params()
        expected = np.mean([np.asarray(model(view(*v))) for v in VIEW_PRESETS[count]], axis=0)
        np.testing.assert_allclose(np.asarray(wrapped(x)), expected, atol=1e-5)
    wrapped.save(tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(np.asarray(loaded(x)), expected, atol=1e-5)
    assert unwrap(loaded).name == "pagenet"
    assert with_test_time_views(model, 1) is model
    assert with_test_time_views(model, 2).name.endswith("_flip")
    with pytest.raises(ValueError, match="preset"):
        with_test_time_views(model, 3)


def test_prior_correction_is_logit_adjustment_and_survives_saving(tmp_path):
    import keras
    import numpy as np

    from training.models import PriorCorrection, load_model, with_prior_correction

    inputs = keras.Input((48, 48, 1))
    plain = keras.Model(inputs, keras.layers.Dense(8, activation="softmax")(keras.layers.Flatten()(inputs)))
    prior = np.array([0.35, 0.29, 0.13, 0.12, 0.08, 0.005, 0.02, 0.005])
    corrected = with_prior_correction(plain, prior, 0.5)
    x = np.random.default_rng(0).uniform(0, 1, (4, 48, 48, 1)).astype("float32")  # unsaturated softmax
    p = np.asarray(plain(x))
    assert p.min() > 1e-6
    expected = np.exp(np.log(p) - 0.5 * np.log(prior))
    expected /= expected.sum(1, keepdims=True)
    assert np.allclose(np.asarray(corrected(x)), expected, atol=1e-5)
    assert np.allclose(np.asarray(with_prior_correction(plain, prior, 0.0)(x)), p, atol=1e-5)  # tau 0: unchanged
    corrected.save(tmp_path / "m.keras")
    again = load_model(tmp_path / "m.keras")
    assert any(isinstance(layer, PriorCorrection) for layer in again.layers)
    assert np.allclose(np.asarray(again(x)), expected, atol=1e-5)
