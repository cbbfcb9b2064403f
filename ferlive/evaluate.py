"""Accuracy on a folder of labelled photos, end to end, through the API's own code path.

    python -m ferlive evaluate ../shared/data/wild-photos --out reports/wild-photos

The folder holds `labels.csv` (columns `image,emotion`, optional `person`) and `images/`.
Two modes, both through ferlive.pipeline.Analyser as POST /api/predict runs it:
- photo: the detector finds the faces and the largest one is scored; no face is a miss.
- faces: each image is taken as one face (the crop code still squares and frames it).
Writes metrics.json (both modes), confusion_<mode>.png and mistakes_<mode>.jpg (a contact
sheet of wrong answers: photo, box, truth, prediction), and prints a summary.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.data import EMOTIONS
from training.evaluate import plot_confusion

MODES = ("photo", "faces")
MIN_PHOTOS = 20  # classes with fewer photos are reported, not averaged into mean class recall
NO_FACE = len(EMOTIONS)  # the "prediction" of a photo where no face was found


class FolderError(ValueError):
    """The labelled folder cannot be evaluated as it is; the message says what to fix."""


@dataclass(frozen=True)
class Item:
    image: Path
    label: int
    person: str


def read_folder(folder: Path) -> list[Item]:
    """labels.csv + images/ -> items; every problem found is reported at once."""
    folder = Path(folder)
    labels = folder / "labels.csv"
    if not labels.is_file():
        raise FolderError(f"{labels} not found: the folder needs labels.csv (image,emotion[,person]) and images/")
    with labels.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing_columns = {"image", "emotion"} - set(reader.fieldnames or [])
        if missing_columns:
            raise FolderError(f"{labels}: no column {', '.join(sorted(missing_columns))} "
                              f"(found: {', '.join(reader.fieldnames or []) or 'nothing'})")
        rows = list(reader)
    items, problems = [], []
    for line, row in enumerate(rows, start=2):
        name, emotion = (row.get("image") or "").strip(), (row.get("emotion") or "").strip().lower()
        path = folder / "images" / name
        if not name:
            problems.append(f"line {line}: no image name")
        elif emotion not in EMOTIONS:
            problems.append(f"line {line}: {name}: emotion {row.get('emotion')!r} is not one of {', '.join(EMOTIONS)}")
        elif not path.is_file():
            problems.append(f"line {line}: {path} not found")
        else:
            items.append(Item(path, EMOTIONS.index(emotion), (row.get("person") or "").strip() or name))
    if problems:
        more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise FolderError(f"{labels}: {len(problems)} problem(s):\n  " + "\n  ".join(problems[:10]) + more)
    if not items:
        raise FolderError(f"{labels} lists no photos")
    return items


def run(analyser, items: list[Item], mode: str, progress=sys.stderr) -> list[dict]:
    """One record per photo: the prediction (or NO_FACE), probabilities, box and how it was found."""
    from ferlive.images import BadImage, decode_image

    records, start = [], time.perf_counter()
    for i, item in enumerate(items):
        try:
            rgb = decode_image(item.image.read_bytes())
        except (OSError, BadImage) as e:
            raise FolderError(f"{item.image}: {e}") from None
        faces = analyser.analyse(rgb, whole_image_is_face=(mode == "faces")).faces
        face = faces[0] if faces else None  # the detector lists the largest face first
        records.append({
            "image": item.image.name, "truth": item.label,
            "prediction": EMOTIONS.index(face.emotion) if face else NO_FACE,
            "scores": [face.scores[e] for e in EMOTIONS] if face else None,
            "box": face.box if face else None, "found_by": face.found_by if face else None,
        })
        if progress and ((i + 1) % 100 == 0 or i + 1 == len(items)):
            rate = (i + 1) / (time.perf_counter() - start)
            print(f"  {mode} mode: {i + 1}/{len(items)} photos ({rate:.1f}/s)", file=progress, flush=True)
    return records


def _recalls(counts: np.ndarray) -> np.ndarray:
    """counts: (..., 8 true, 9 predicted incl. no face) -> recall per class (nan where none)."""
    support = counts.sum(-1)
    hits = np.diagonal(counts[..., :, :len(EMOTIONS)], axis1=-2, axis2=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, hits / support, np.nan)


def _auc(positive: np.ndarray, values: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney, ties counted half): the chance that a photo of
    the class scores higher for it than a photo of another class. None without both kinds."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    mid_rank = np.cumsum(counts) - (counts - 1) / 2  # tied values share their mean rank
    rank_sum = mid_rank[inverse][positive].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def separability(truth, scores) -> list[float | None]:
    """Per class, the AUC of its score over the photos where a face was found. Recall says
    whether the top answer is right; this says whether the model ranks the class's photos
    above the others at all, which a prior or threshold change cannot create."""
    found = [k for k, s in enumerate(scores) if s is not None]
    truth = np.asarray(truth)[found]
    values = np.asarray([scores[k] for k in found], dtype=float).reshape(len(found), len(EMOTIONS))
    return [_auc(truth == k, values[:, k]) for k in range(len(EMOTIONS))]


def score(truth, prediction, persons, min_photos: int = MIN_PHOTOS, bootstrap: int = 1000, seed: int = 0,
          scores=None) -> dict:
    """Accuracy, mean class recall (classes with >= min_photos), per-class recall, confusion
    (rows true, columns predicted, last column no face) and 95% intervals from a bootstrap that
    resamples people, not photos: many photos of one person are not independent evidence.
    With `scores` (8 probabilities per photo, None where no face), each class also gets its AUC."""
    truth, prediction = np.asarray(truth), np.asarray(prediction)
    n = len(EMOTIONS)
    confusion = np.zeros((n, n + 1), int)
    np.add.at(confusion, (truth, prediction), 1)
    support = confusion.sum(1)
    scored = support >= min_photos
    recall = _recalls(confusion)
    result = {
        "photos": int(len(truth)),
        "face_found": float((prediction != NO_FACE).mean()),
        "accuracy": float((truth == prediction).mean()),
        "mean_class_recall": float(np.mean(recall[scored])) if scored.any() else None,
        "classes_scored": [e for e, s in zip(EMOTIONS, scored) if s],
        "per_class": {e: {"photos": int(support[k]), "recall": None if support[k] == 0 else float(recall[k]),
                          "predicted": int(confusion[:, k].sum())} for k, e in enumerate(EMOTIONS)},
        "confusion": confusion.tolist(),
        "confusion_columns": [*EMOTIONS, "no face"],
    }
    if scores is not None:
        for e, auc in zip(EMOTIONS, separability(truth, scores)):
            result["per_class"][e]["auc"] = auc
    people = sorted(set(persons))
    if bootstrap and len(people) > 1:
        index = {p: i for i, p in enumerate(people)}
        per_person = np.zeros((len(people), n, n + 1), int)
        np.add.at(per_person, (np.array([index[p] for p in persons]), truth, prediction), 1)
        rng = np.random.default_rng(seed)
        weights = np.stack([np.bincount(rng.integers(0, len(people), len(people)), minlength=len(people))
                            for _ in range(bootstrap)])
        counts = np.einsum("bp,pij->bij", weights, per_person)
        accuracy = np.trace(counts[:, :, :n], axis1=1, axis2=2) / counts.sum((1, 2))
        mcr = np.nanmean(_recalls(counts)[:, scored], axis=1) if scored.any() else None
        result["bootstrap"] = {
            "resamples": bootstrap, "unit": "person", "people": len(people), "seed": seed,
            "accuracy_95": [float(v) for v in np.percentile(accuracy, [2.5, 97.5])],
            "mean_class_recall_95": [float(v) for v in np.nanpercentile(mcr, [2.5, 97.5])] if mcr is not None else None,
        }
    return result


def contact_sheet(records: list[dict], folder: Path, path: Path, limit: int = 120, thumb: int = 128) -> int:
    """The wrong answers as thumbnails with the scored box, truth and prediction under each.
    Returns how many mistakes there were (the sheet shows the first `limit`)."""
    from PIL import Image, ImageDraw, ImageFont

    wrong = [r for r in records if r["prediction"] != r["truth"]]
    shown = wrong[:limit]
    cols = 10
    rows = max(1, -(-len(shown) // cols))
    caption = 30
    sheet = Image.new("RGB", (cols * thumb, rows * (thumb + caption)), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=11)
    for k, r in enumerate(shown):
        with Image.open(folder / "images" / r["image"]) as im:
            im = im.convert("RGB")
            scale = thumb / max(im.size)
            small = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))))
        x, y = (k % cols) * thumb, (k // cols) * (thumb + caption)
        sheet.paste(small, (x, y))
        if r["box"]:
            b = r["box"]
            draw.rectangle([x + b["x"] * scale, y + b["y"] * scale, x + (b["x"] + b["width"]) * scale,
                            y + (b["y"] + b["height"]) * scale], outline="#00e676", width=2)
        predicted = "no face" if r["prediction"] == NO_FACE else EMOTIONS[r["prediction"]]
        draw.text((x + 3, y + thumb + 2), f"true {EMOTIONS[r['truth']]}", fill="black", font=font)
        draw.text((x + 3, y + thumb + 15), f"said {predicted}", fill="#c62828", font=font)
    sheet.save(path, quality=85)
    return len(wrong)


def evaluate(folder: Path, out: Path, modes=MODES, model=None, bootstrap: int = 1000, progress=sys.stderr) -> dict:
    from ferlive.pipeline import Analyser

    items = read_folder(folder)
    out.mkdir(parents=True, exist_ok=True)
    analyser = Analyser(model)
    report = {"folder": str(folder), "photos": len(items), "people": len({i.person for i in items}),
              "model_version": analyser.classifier.info.version, "crop_margin": analyser.margin,
              "min_photos_per_scored_class": MIN_PHOTOS, "modes": {}}
    for mode in modes:
        records = run(analyser, items, mode, progress)
        metrics = score([r["truth"] for r in records], [r["prediction"] for r in records],
                        [i.person for i in items], bootstrap=bootstrap, scores=[r["scores"] for r in records])
        metrics["found_by"] = {k: sum(r["found_by"] == k for r in records)
                               for k in ("photo", "tile", "padded", "given") if any(r["found_by"] == k for r in records)}
        confusion = np.asarray(metrics["confusion"])
        plot_confusion(confusion, f"{folder.name}, {mode} mode ({analyser.classifier.info.version})",
                       out / f"confusion_{mode}.png", columns=metrics["confusion_columns"],
                       rows=[f"{e} ({n})" for e, n in zip(EMOTIONS, confusion.sum(1))], ylabel="true (photos)")
        metrics["mistakes"] = contact_sheet(records, folder, out / f"mistakes_{mode}.jpg")
        report["modes"][mode] = metrics
        (out / f"predictions_{mode}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (out / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _number(value, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def summary(report: dict) -> str:
    lines = [f"{report['folder']}: {report['photos']} photos of {report['people']} people, model {report['model_version']}"]
    for mode, m in report["modes"].items():
        ci = m.get("bootstrap", {})
        acc_ci = " [{:.3f}, {:.3f}]".format(*ci["accuracy_95"]) if ci else ""
        mcr = m["mean_class_recall"]
        mcr_ci = " [{:.3f}, {:.3f}]".format(*ci["mean_class_recall_95"]) if ci.get("mean_class_recall_95") else ""
        lines.append(f"  {mode:<6} face found {m['face_found']:.1%}  accuracy {m['accuracy']:.3f}{acc_ci}  "
                     f"mean class recall {_number(mcr, 3)}{mcr_ci} over {', '.join(m['classes_scored'])}")
        lines.append("         recall: " + ", ".join(
            f"{e} {_number(c['recall'], 2)} ({c['photos']})" for e, c in m["per_class"].items()))
        if any("auc" in c for c in m["per_class"].values()):
            lines.append("         AUC:    " + ", ".join(
                f"{e} {_number(c.get('auc'), 2)}" for e, c in m["per_class"].items()))
    return "\n".join(lines)
