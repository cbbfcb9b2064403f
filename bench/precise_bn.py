"""Valid accuracy of saved networks as saved, and with their batch-norm statistics measured again.

    python bench/precise_bn.py runs/pagenet_w20_2332_rep_fkd/model.keras campaign/pagenet_w20_2332_fkd/model.keras
    git show COMMIT:campaign/NAME/model.keras > /tmp/m.keras && python bench/precise_bn.py /tmp/m.keras

A run with `--ema` saves the averaged weights with the batch-norm statistics gathered under the raw
weights (Keras' EMA averages trainable variables only). Where the two differ, the saved network is
measured below what its weights can do; "precise BN" (Wu & Johnson 2021) measures the statistics
again for the weights as saved, here as the mean over BATCHES batches of plain Train faces
(`training.soup.recompute_batch_norm`). Campaign 20 (RepVGG blocks) showed a gap of 5.8 points at its
epoch 15 where campaign 10's finished network shows 0.1: mid-run curves of the two are compared with
this, not as saved. FER+ majority protocol on Valid, one view; Test is never read.
"""

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", type=Path, nargs="+")
    ap.add_argument("--batches", type=int, default=40, help="batches of 128 plain Train faces to measure on")
    ap.add_argument("--data", type=Path, default=None, help="FER+ folder (default: ../shared/data/ferplus or $FERPLUS_DATA)")
    args = ap.parse_args(argv)
    missing = [str(p) for p in args.models if not p.is_file()]
    if missing:
        sys.exit(f"error: not found: {', '.join(missing)}")

    from training.data import DataError, default_data_dir, load_ferplus
    from training.evaluate import valid_summary
    from training.models import load_model
    from training.soup import recompute_batch_norm

    try:
        splits = load_ferplus(args.data or default_data_dir())
    except DataError as e:
        sys.exit(f"error: {e}")

    def valid(model):
        r = valid_summary(model, splits)
        return f"{100 * r['accuracy']:.2f}% / {r['mean_class_recall']:.3f}"

    print(f"{'model':60s} {'as saved':>16s} {'BN measured again':>18s}   (Valid accuracy / mean class recall)")
    for path in args.models:
        model = load_model(path)
        before = valid(model)
        recompute_batch_norm(model, splits["train"].images, batches=args.batches)
        print(f"{str(path):60s} {before:>16s} {valid(model):>18s}")


if __name__ == "__main__":
    main()
