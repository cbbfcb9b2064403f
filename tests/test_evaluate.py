"""`python -m ferlive evaluate`: scoring, folder checks, the command on a small folder built
here, and the committed wild-photo figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ferlive.evaluate import NO_FACE, FolderError, read_folder, score
from tests.conftest import REPO

WILD = REPO.parent / "shared" / "data" / "wild-photos"
COMMITTED = REPO / "models" / "api" / "wild-photos"  # the API's default model


def test_score_counts_misses_and_averages_only_common_classes():
    truth = [0, 0, 1, 1, 2]
    prediction = [0, 1, 1, NO_FACE, 2]
    m = score(truth, prediction, ["a", "b", "c", "d", "e"], min_photos=2, bootstrap=0)
    assert m["photos"] == 5 and m["face_found"] == 0.8 and m["accuracy"] == 0.6
    assert m["classes_scored"] == ["neutral", "happiness"]  # surprise has one photo: reported, not averaged
    assert m["mean_class_recall"] == 0.5
    assert m["per_class"]["surprise"] == {"photos": 1, "recall": 1.0, "predicted": 1}
    assert m["per_class"]["fear"]["recall"] is None
    assert m["confusion"][1][NO_FACE] == 1 and m["confusion_columns"][-1] == "no face"


def test_bootstrap_resamples_people_not_photos():
    # Two people, ten photos each: all of one person's right, all of the other's wrong. Photos are
    # not independent: resampling people can draw either person twice, so the interval is 0..1.
    truth = [1] * 20
    prediction = [1] * 10 + [0] * 10
    m = score(truth, prediction, ["ann"] * 10 + ["bob"] * 10, min_photos=1, bootstrap=500)
    assert m["accuracy"] == 0.5
    assert m["bootstrap"]["unit"] == "person" and m["bootstrap"]["people"] == 2
    assert m["bootstrap"]["accuracy_95"] == [0.0, 1.0]


def test_auc_says_whether_a_class_is_ranked_above_the_others():
    onehot = lambda k, p: [p if j == k else (1 - p) / 7 for j in range(8)]  # noqa: E731
    truth = [0, 0, 1, 1, 5, 5]
    # disgust (5) never wins, but its photos score higher for it than the rest: recall 0, AUC 1
    scores = [onehot(0, 0.9), onehot(0, 0.8), onehot(1, 0.9), onehot(1, 0.7),
              [0.85, 0, 0, 0, 0, 0.15, 0, 0], [0.75, 0, 0, 0, 0, 0.25, 0, 0]]
    prediction = [int(np.argmax(s)) for s in scores] + [NO_FACE]
    m = score(truth + [1], prediction, list("abcdefg"), min_photos=1, bootstrap=0, scores=scores + [None])
    assert m["per_class"]["disgust"]["recall"] == 0.0 and m["per_class"]["disgust"]["auc"] == 1.0
    assert m["per_class"]["neutral"]["auc"] == 7 / 8  # of 8 (neutral, other) pairs one is ranked wrong: 0.8 < 0.85
    assert m["per_class"]["fear"]["auc"] is None  # no photo of it


def write_folder(root: Path, rows: list[str], images: dict[str, Image.Image]) -> Path:
    (root / "images").mkdir(parents=True)
    for name, im in images.items():
        im.save(root / "images" / name)
    (root / "labels.csv").write_text("image,emotion,person\n" + "".join(r + "\n" for r in rows))
    return root


def test_folder_problems_are_all_reported(tmp_path):
    with pytest.raises(FolderError, match="labels.csv.*not found"):
        read_folder(tmp_path)
    gray = Image.new("RGB", (64, 64), "gray")
    folder = write_folder(tmp_path / "f", ["a.png,happiness,p1", "b.png,joy,p2", "c.png,anger,p3", ",neutral,p4"],
                          {"a.png": gray, "b.png": gray})
    with pytest.raises(FolderError) as e:
        read_folder(folder)
    text = str(e.value)
    assert "3 problem(s)" in text
    assert "line 3: b.png: emotion 'joy' is not one of neutral, happiness" in text
    assert "line 4:" in text and "c.png not found" in text
    assert "line 5: no image name" in text
    (folder / "labels.csv").write_text("file,label\na.png,happiness\n")
    with pytest.raises(FolderError, match="no column emotion, image"):
        read_folder(folder)


def test_labels_are_read_leniently(tmp_path):
    folder = write_folder(tmp_path, ["a.png, Happiness ,"], {"a.png": Image.new("RGB", (64, 64))})
    [item] = read_folder(folder)
    assert item.label == 1 and item.person == "a.png"  # no person: each photo is its own


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory, media) -> Path:
    """Photos with known answers: faces in a scene, a face that fills the frame, no face."""
    happy = Image.open(media / "faceapi_happy.jpg").convert("RGB")
    face_only = happy.crop((250, 75, 390, 215))  # forehead to chin, cheek to cheek: touches every border
    return write_folder(tmp_path_factory.mktemp("eval"), [
        "happy.jpg,happiness,anna", "face_only.png,happiness,anna", "surprised.jpg,surprise,ben",
        "sad.jpg,sadness,carl", "wall.png,neutral,dora",
    ], {"happy.jpg": happy, "face_only.png": face_only,
        "surprised.jpg": Image.open(media / "faceapi_surprised.jpg").convert("RGB"),
        "sad.jpg": Image.open(media / "faceapi_sad.jpg").convert("RGB"),
        "wall.png": Image.new("RGB", (300, 200), (180, 170, 160))})


def run_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ferlive", "evaluate", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=600)


def test_evaluate_command_on_a_small_folder(small_folder, tmp_path):
    out = tmp_path / "report"
    r = run_cli(small_folder, "--out", out, "--bootstrap", "50")
    assert r.returncode == 0, r.stderr
    assert "photo mode: 5/5 photos" in r.stderr  # progress while it runs
    report = json.loads((out / "metrics.json").read_text())
    assert set(report["modes"]) == {"photo", "faces"} and report["photos"] == 5 and report["people"] == 4
    photo = {p["image"]: p for p in map(json.loads, (out / "predictions_photo.jsonl").read_text().splitlines())}
    assert photo["wall.png"]["prediction"] == NO_FACE and photo["wall.png"]["box"] is None
    assert photo["face_only.png"]["found_by"] == "padded"  # a face that fills the frame is found, with a border
    assert photo["happy.jpg"]["prediction"] == 1  # happiness
    assert report["modes"]["photo"]["face_found"] == 0.8
    assert report["modes"]["faces"]["face_found"] == 1.0
    assert report["modes"]["photo"]["found_by"] == {"photo": 3, "padded": 1}
    for mode in ("photo", "faces"):
        assert Image.open(out / f"confusion_{mode}.png").size[0] > 300
        assert Image.open(out / f"mistakes_{mode}.jpg").size[0] > 0
    assert "face found 80.0%" in r.stdout and "mean class recall" in r.stdout


def test_evaluate_command_explains_a_bad_folder(tmp_path):
    r = run_cli(tmp_path / "nowhere", "--out", tmp_path / "out")
    assert r.returncode == 2
    assert "labels.csv" in r.stderr and "not found" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.skipif(not (WILD / "labels.csv").is_file(), reason=f"wild photos not found at {WILD}")
def test_committed_wild_photo_figures_reproduce():
    """Every 25th photo through today's code gives the committed prediction, and the committed
    metrics are what the committed predictions score to."""
    from ferlive.evaluate import run
    from ferlive.pipeline import Analyser

    report = json.loads((COMMITTED / "metrics.json").read_text())
    items = read_folder(WILD)
    analyser = Analyser()
    assert report["model_version"] == analyser.classifier.info.version
    for mode in ("photo", "faces"):
        committed = [json.loads(line) for line in (COMMITTED / f"predictions_{mode}.jsonl").read_text().splitlines()]
        assert [c["image"] for c in committed] == [i.image.name for i in items]
        sample = items[::25]
        now = run(analyser, sample, mode, progress=None)
        same = np.mean([n["prediction"] == c["prediction"] for n, c in zip(now, committed[::25])])
        assert same >= 0.97, same  # another CPU may round a near tie the other way, not more
        again = score([c["truth"] for c in committed], [c["prediction"] for c in committed],
                      [i.person for i in items], bootstrap=0, scores=[c["scores"] for c in committed])
        recorded = report["modes"][mode]
        for key in ("photos", "face_found", "accuracy", "mean_class_recall", "confusion", "per_class"):
            assert again[key] == recorded[key], key
        assert np.isclose(recorded["accuracy"], np.trace(np.array(recorded["confusion"])[:, :8]) / len(items))
