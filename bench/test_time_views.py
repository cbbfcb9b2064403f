"""FER+ Valid accuracy and mean class recall of models averaged over test-time views.

    python bench/test_time_views.py models/pagenet/model.keras [more.keras ...]

For each view preset (training.models.VIEW_PRESETS: 1 = the face as it is, 2 = and its
mirror image, 4 and 10 = and copies shifted by 2 px) it prints the FER+ majority accuracy and
the mean class recall on Valid, and the views' cost relative to one pass. Valid only: this
chooses `python -m training.release --views N`, so Test is never read. The page pays the
views in time a face: check the choice with `python bench/browser_latency.py --classifier`.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from training.data import default_data_dir, load_ferplus, protocol_labels  # noqa: E402
from training.evaluate import summarise  # noqa: E402
from training.models import VIEW_PRESETS, load_model, unwrap, with_test_time_views  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help=".keras models (any wrapper is taken off first)")
    ap.add_argument("--views", type=int, nargs="+", default=sorted(VIEW_PRESETS), choices=sorted(VIEW_PRESETS))
    ap.add_argument("--data", default=default_data_dir(), help="FER+ folder or its cache .npz")
    args = ap.parse_args()
    valid = load_ferplus(args.data)["valid"]
    mask, labels = protocol_labels(valid.votes, "ferplus_majority")
    images = valid.images[mask].astype("float32")
    print(f"FER+ Valid, majority protocol, {len(labels)} faces")
    print(f"{'model':<40} {'views':>5} {'accuracy':>9} {'mean class recall':>18}")
    for path in args.models:
        net = unwrap(load_model(path))
        for count in args.views:
            probs = np.asarray(with_test_time_views(net, count).predict(images, batch_size=256, verbose=0))
            r = summarise(labels, probs.argmax(1))
            print(f"{path:<40} {count:>5} {r['accuracy']:>9.4f} {r['mean_class_recall']:>18.4f}", flush=True)


if __name__ == "__main__":
    main()
