"""Sharpness-aware minimisation (training/sam.py): the step it takes, and a run that resumes."""

import csv

import numpy as np
import pytest

from tests.test_train_smoke import tiny_ferplus  # noqa: F401  (fixture)
from training import train


def test_step_applies_the_gradient_taken_at_the_worst_nearby_weights(tmp_path):
    import keras
    import tensorflow as tf

    from training.sam import SharpnessAwareTrainer

    keras.utils.set_random_seed(0)
    network = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="softmax")])
    trainer = SharpnessAwareTrainer([keras.Input((3,)), network], rho=0.5)
    trainer.compile(optimizer=keras.optimizers.SGD(0.1), loss=keras.losses.CategoricalCrossentropy())
    x = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
    y = np.eye(4, dtype="float32")[[0, 1, 2, 3, 0, 1, 2, 3]]

    def gradient(weights):
        variables = [tf.Variable(w) for w in weights]
        with tf.GradientTape() as tape:
            probs = tf.nn.softmax(x @ variables[0] + variables[1])
            loss = tf.reduce_mean(keras.losses.categorical_crossentropy(y, probs))
        return [g.numpy() for g in tape.gradient(loss, variables)]

    start = [w.numpy() for w in network.trainable_weights]
    g = gradient(start)
    norm = np.sqrt(sum((v ** 2).sum() for v in g))
    worst = gradient([w + 0.5 * v / norm for w, v in zip(start, g)])
    trainer.train_on_batch(x, y)
    for after, w, v, plain in zip(network.trainable_weights, start, worst, g):
        np.testing.assert_allclose(after.numpy(), w - 0.1 * v, rtol=1e-4, atol=1e-6)
        assert not np.allclose(after.numpy(), w - 0.1 * plain, atol=1e-6)  # not the plain step

    trainer.save(tmp_path / "trainer.keras")
    loaded = keras.saving.load_model(tmp_path / "trainer.keras")
    assert isinstance(loaded, SharpnessAwareTrainer) and loaded.rho == 0.5


def test_sam_run_resumes_where_it_stopped(tiny_ferplus, tmp_path):  # noqa: F811
    import keras

    from training.sam import SharpnessAwareTrainer

    out = tmp_path / "run"
    common = ["--data", str(tiny_ferplus), "--model", "pagenet", "--batch-size", "4", "--verbose", "0",
              "--warmup-epochs", "1", "--ema", "0.9", "--photometric", "--patience", "0", "--out", str(out)]
    train.main(common + ["--epochs", "2", "--sam", "0.05", "--stop-at", "1"])
    train.main(common + ["--epochs", "2", "--resume"])  # --sam comes back from the run's config
    assert [int(r["epoch"]) for r in csv.DictReader((out / "history.csv").open())] == [0, 1]
    trainer = keras.saving.load_model(out / "last.keras")
    assert isinstance(trainer, SharpnessAwareTrainer) and trainer.rho == pytest.approx(0.05)
