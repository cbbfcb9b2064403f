"""The committed model: its figures reproduce, the web bundle is its export, and the bar."""

from __future__ import annotations

import json

import pytest

from tests.conftest import MODEL, REPO

BAR = 0.875  # the best compact published FER+ model reports 87.0% (0.17M parameters)


@pytest.fixture(scope="module")
def measured(ferplus_dir):
    from training.data import load_ferplus
    from training.evaluate import evaluate
    from training.models import load_model

    model = load_model(MODEL)
    return evaluate(model, load_ferplus(ferplus_dir), split_names=("test",))["test"]


def test_committed_files_are_there():
    folder = MODEL.parent
    for name in ("model.keras", "metrics.json", "command.txt", "confusion_test.png", "training_curves.png"):
        assert (folder / name).is_file(), name
    assert (folder / "command.txt").read_text().startswith("python -m training.train")


def test_metrics_file_is_reproduced(measured):
    recorded = json.loads((MODEL.parent / "metrics.json").read_text())["test"]
    for protocol in ("ferplus_majority", "all_majority"):
        assert measured[protocol]["images"] == recorded[protocol]["images"]
        assert measured[protocol]["accuracy"] == pytest.approx(recorded[protocol]["accuracy"], abs=1.5 / 3152)
    assert measured["ferplus_majority"]["images"] == 3152


def test_web_bundle_is_the_export_of_the_committed_model():
    from ferlive.classifier import model_version

    meta = json.loads((REPO / "web" / "model" / "meta.json").read_text())
    metrics = json.loads((MODEL.parent / "metrics.json").read_text())
    assert meta["version"] == model_version(MODEL)
    assert meta["test_accuracy"]["ferplus_majority"] == metrics["test"]["ferplus_majority"]["accuracy"]
    assert meta["parity"]["top1_agreement"] >= 0.99


@pytest.mark.xfail(strict=True, reason="not reached yet: the committed model measures 84.74% (FER+ majority, Test), below 87.5% "
                                       "(see models/fernet/metrics.json and README 'Results')")
def test_test_accuracy_meets_the_published_bar(measured):
    assert measured["ferplus_majority"]["accuracy"] >= BAR
