"""The committed models: their figures reproduce, the web bundle is the page model's export, and the bars."""

from __future__ import annotations

import json

import pytest

from tests.conftest import API_MODEL, PAGE_MODEL, REPO

BAR = 0.875  # the best compact published FER+ model reports 87.0% (0.17M parameters)


FERNET = REPO / "models" / "fernet" / "model.keras"  # the page's and the API's model until 2026-11-30; a teacher now
SEED_CNN = REPO / "models" / "seed_cnn" / "model.keras"  # the reference everything is measured against
COMMITTED = [PAGE_MODEL, API_MODEL, FERNET, SEED_CNN]


def measure(path, ferplus_dir):
    from training.data import load_ferplus
    from training.evaluate import evaluate
    from training.models import load_model

    return evaluate(load_model(path), load_ferplus(ferplus_dir), split_names=("test",))["test"]


@pytest.fixture(scope="module")
def measured(ferplus_dir):
    return measure(PAGE_MODEL, ferplus_dir)


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.parent.name)
def test_committed_files_are_there(path):
    folder = path.parent
    for name in ("model.keras", "metrics.json", "command.txt", "confusion_test.png"):
        assert (folder / name).is_file(), name
    # A trained network has its curve; an ensemble or a soup (training.ensemble, training.soup) has
    # its members' commands instead.
    made = (folder / "command.txt").read_text()
    combined = "python -m training.ensemble" in made or "python -m training.soup" in made
    assert combined or (folder / "training_curves.png").is_file()
    assert (folder / "history.csv").is_file() != combined
    assert (folder / "command.txt").read_text().startswith("python -m training.train")


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.parent.name)
def test_metrics_file_is_of_the_committed_model(path):
    import hashlib

    recorded = json.loads((path.parent / "metrics.json").read_text())
    assert recorded["model_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert recorded["file_bytes"] == path.stat().st_size


# The page model is measured again on all of Test; the API's ten-view ensemble (over 3 minutes on
# all of Test, a sixth of CI's 20) on the sample `training.evaluate` records beside the full figures
# in the same run (every 8th Test image); the retired ones (fernet, seed_cnn: a teacher and the
# reference) only by the hash above. `python -m training.evaluate models/NAME/model.keras` redoes any of them.
def test_metrics_file_is_reproduced(ferplus_dir, measured):
    recorded = json.loads((PAGE_MODEL.parent / "metrics.json").read_text())["test"]
    for protocol in ("ferplus_majority", "all_majority"):
        assert measured[protocol]["images"] == recorded[protocol]["images"]
        assert measured[protocol]["accuracy"] == pytest.approx(recorded[protocol]["accuracy"], abs=1.5 / 3152)
    assert measured["ferplus_majority"]["images"] == 3152


@pytest.mark.parametrize("path", [PAGE_MODEL, API_MODEL], ids=lambda p: p.parent.name)
def test_metrics_file_sample_is_reproduced(path, ferplus_dir):
    from training.data import load_ferplus
    from training.evaluate import SAMPLE_EVERY, evaluate_sample
    from training.models import load_model

    recorded = json.loads((path.parent / "metrics.json").read_text())["test_sample"]
    assert recorded["every"] == SAMPLE_EVERY
    now = evaluate_sample(load_model(path), load_ferplus(ferplus_dir))
    for protocol in ("ferplus_majority", "all_majority"):
        assert now[protocol]["images"] == recorded[protocol]["images"] > 350
        assert now[protocol]["accuracy"] == pytest.approx(recorded[protocol]["accuracy"], abs=1.5 / recorded[protocol]["images"])


def recorded(path, split="test"):
    return json.loads((path.parent / "metrics.json").read_text())[split]["ferplus_majority"]


def test_served_models_beat_the_ones_before():
    for served in (PAGE_MODEL, API_MODEL):
        assert recorded(served)["accuracy"] > recorded(FERNET)["accuracy"]
        assert recorded(served)["mean_class_recall"] > recorded(FERNET)["mean_class_recall"]
    assert recorded(FERNET)["accuracy"] > recorded(SEED_CNN)["accuracy"] + 0.01


def test_api_model_was_chosen_on_valid():
    """The API may spend more time a face than the page, so it must be better where models are chosen."""
    assert recorded(API_MODEL, "valid")["accuracy"] >= recorded(PAGE_MODEL, "valid")["accuracy"]


def test_web_bundle_is_the_export_of_the_committed_model():
    from ferlive.classifier import model_version

    meta = json.loads((REPO / "web" / "model" / "meta.json").read_text())
    metrics = json.loads((PAGE_MODEL.parent / "metrics.json").read_text())
    assert meta["version"] == model_version(PAGE_MODEL)
    assert meta["test_accuracy"]["ferplus_majority"] == metrics["test"]["ferplus_majority"]["accuracy"]
    assert meta["parity"]["top1_agreement"] >= 0.99


@pytest.mark.xfail(strict=True, reason="not reached yet: the page model measures 87.21% (FER+ majority, Test), below 87.5% "
                                       "(see models/pagenet/metrics.json and README 'Results')")
def test_test_accuracy_meets_the_published_bar(measured):
    assert measured["ferplus_majority"]["accuracy"] >= BAR


def test_mean_class_recall_meets_the_bar(measured):
    assert measured["ferplus_majority"]["mean_class_recall"] >= 0.70


def test_page_model_is_compact():
    meta = json.loads((REPO / "web" / "model" / "meta.json").read_text())
    assert meta["params"] <= 1_000_000


def test_page_bundle_is_light():
    """As light as face-api's expression net to download: model.json and shards at most 0.6 MB."""
    bundle = REPO / "web" / "model"
    size = sum(p.stat().st_size for p in [bundle / "model.json", *bundle.glob("*.bin")])
    assert size <= 600_000
