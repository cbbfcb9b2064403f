"""Evaluate a saved model on FER+ Valid and Test under both protocols.

    python -m training.evaluate models/fernet/model.keras [--out models/fernet]

Writes `metrics.json` (accuracy under each protocol, per-class precision / recall / F1,
confusion counts, parameter count, file size), `confusion_test.png` and, when the
run folder has a `history.csv`, `training_curves.png`; prints a short table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from training.data import EMOTIONS, PROTOCOLS, DataError, default_data_dir, load_ferplus, protocol_labels


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n: int = len(EMOTIONS)) -> np.ndarray:
    """Counts, rows = true class, columns = predicted class."""
    return np.bincount(y_true * n + y_pred, minlength=n * n).reshape(n, n)


def summarise(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    cm = confusion(y_true, y_pred)
    tp = np.diag(cm).astype(float)
    precision = np.divide(tp, cm.sum(0), out=np.zeros_like(tp), where=cm.sum(0) > 0)
    recall = np.divide(tp, cm.sum(1), out=np.zeros_like(tp), where=cm.sum(1) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp), where=precision + recall > 0)
    return {
        "images": int(len(y_true)),
        "accuracy": float((y_true == y_pred).mean()) if len(y_true) else float("nan"),
        "mean_class_recall": float(recall[cm.sum(1) > 0].mean()) if cm.sum() else float("nan"),
        "per_class": {e: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                      for e, p, r, f, s in zip(EMOTIONS, precision, recall, f1, cm.sum(1))},
        "confusion": cm.tolist(),
    }


def predict(model, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    return np.asarray(model.predict(images.astype("float32"), batch_size=batch_size, verbose=0))


def evaluate(model, splits, split_names=("valid", "test")) -> dict:
    results = {}
    for split in split_names:
        s = splits[split]
        probs = predict(model, s.images)
        results[split] = {}
        for protocol in PROTOCOLS:
            mask, labels = protocol_labels(s.votes, protocol)
            results[split][protocol] = summarise(labels, probs[mask].argmax(1))
    return results


def valid_summary(model, splits) -> dict:
    """The figures models are chosen by: FER+ majority protocol on Valid, one pass."""
    mask, labels = protocol_labels(splits["valid"].votes, "ferplus_majority")
    return summarise(labels, predict(model, splits["valid"].images)[mask].argmax(1))


SAMPLE_EVERY = 8  # the Test sample a quick check re-measures (tests/test_committed_model.py)


def evaluate_sample(model, splits, every: int = SAMPLE_EVERY) -> dict:
    """Test figures on every `every`-th image: a ten-view ensemble takes minutes on all of Test,
    so CI checks that the committed file still gives what was recorded on this sample."""
    s = splits["test"]
    probs = predict(model, s.images[::every])
    out = {"every": every}
    for protocol in PROTOCOLS:
        mask, labels = protocol_labels(s.votes[::every], protocol)
        out[protocol] = summarise(labels, probs[mask].argmax(1))
    return out


def plot_confusion(cm, title: str, path: Path, columns=EMOTIONS, rows=EMOTIONS, ylabel: str = "true"):
    """Counts (rows true, columns predicted), shaded by the fraction of each true class."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(cm)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.5 + 0.7 * (len(columns) - len(EMOTIONS)), 5.5))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, f"{cm[i, j]}", ha="center", va="center", fontsize=8,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label="fraction of true class")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_history(history_csv: Path, path: Path):
    import csv

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(csv.DictReader(history_csv.open()))
    if not rows:
        return
    epochs = [int(r["epoch"]) + 1 for r in rows]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for key, ax in (("loss", a1), ("accuracy", a2)):
        ax.plot(epochs, [float(r[key]) for r in rows], label=f"train {key} (augmented)")
        ax.plot(epochs, [float(r[f"val_{key}"]) for r in rows], label=f"Valid {key} (FER+ majority)")
        for i in range(1, len(rows)):  # a released model may join runs: mark each warm restart
            if rows[i].get("run") != rows[i - 1].get("run"):
                ax.axvline(epochs[i] - 0.5, color="gray", ls="--", lw=1)
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path, help="a .keras file")
    ap.add_argument("--data", type=Path, default=default_data_dir())
    ap.add_argument("--out", type=Path, help="folder for metrics.json and plots (default: beside the model)")
    ap.add_argument("--no-plots", action="store_true")
    args = ap.parse_args(argv)

    from training.models import load_model  # deferred: importing the backend takes seconds

    if not args.model.is_file():
        sys.exit(f"error: model file {args.model} not found")
    try:
        splits = load_ferplus(args.data)
    except DataError as e:
        sys.exit(f"error: {e}")
    out = args.out or args.model.parent
    out.mkdir(parents=True, exist_ok=True)
    model = load_model(args.model)
    start = time.time()
    results = evaluate(model, splits)
    sample = evaluate_sample(model, splits)
    metrics = {
        "model": model.name,
        "model_file": args.model.name,
        "params": int(model.count_params()),
        "file_bytes": args.model.stat().st_size,
        "model_sha256": hashlib.sha256(args.model.read_bytes()).hexdigest(),  # which file these figures are of
        "votes": "fer2013new.csv (2017 release)",
        "protocols": {"ferplus_majority": "Barsoum et al. 2016: counts of 1 zeroed, top count > half of all ten, an emotion",
                      "all_majority": "every image whose top raw count is an emotion (ties to the first column)"},
        "classes": list(EMOTIONS),
        **results,
        "test_sample": sample,
        "eval_seconds": round(time.time() - start, 1),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    if not args.no_plots:
        plot_confusion(results["test"]["ferplus_majority"]["confusion"],
                       f"{model.name}: Test, FER+ majority", out / "confusion_test.png")
        history = args.model.parent / "history.csv"
        if history.is_file():
            plot_history(history, out / "training_curves.png")

    print(f"{model.name}: {model.count_params():,} parameters, {args.model.stat().st_size / 1e6:.1f} MB")
    print(f"{'split':<6} {'protocol':<17} {'images':>6} {'accuracy':>9} {'mean recall':>12}")
    for split in ("valid", "test"):
        for protocol in PROTOCOLS:
            r = results[split][protocol]
            print(f"{split:<6} {protocol:<17} {r['images']:>6} {r['accuracy']:>9.4f} {r['mean_class_recall']:>12.4f}")
    print(f"wrote {out / 'metrics.json'}")


if __name__ == "__main__":
    main()
