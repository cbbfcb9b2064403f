"""Valid accuracy of weight averages of two runs of one architecture ("model soup").

    python bench/weight_average.py runs/fernet/model.keras runs/fernet_ft/model.keras

Mixes the weights (batch-norm statistics included) at each fraction of the second model
and prints Valid accuracy (FER+ majority), bare and flip-averaged. Valid only: this is a
model-selection experiment, so Test is never read.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from training.data import default_data_dir, load_ferplus  # noqa: E402
from training.evaluate import evaluate  # noqa: E402
from training.models import load_model, unwrap, with_flip_averaging  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("first", help="a .keras model")
    ap.add_argument("second", help="a .keras model of the same architecture (e.g. a warm restart of the first)")
    ap.add_argument("--fractions", type=float, nargs="+", default=[0.0, 0.5, 0.75, 1.0], help="share of the second")
    ap.add_argument("--data", default=default_data_dir())
    args = ap.parse_args()
    splits = load_ferplus(args.data)
    a, b = unwrap(load_model(args.first)), unwrap(load_model(args.second))
    mixed = unwrap(load_model(args.second))

    def valid(model):
        return evaluate(model, splits, split_names=("valid",))["valid"]["ferplus_majority"]["accuracy"]

    print(f"{'share of second':>15} {'Valid':>7} {'flip-averaged':>14}")
    for t in args.fractions:
        mixed.set_weights([(1 - t) * wa + t * wb for wa, wb in zip(a.get_weights(), b.get_weights())])
        print(f"{t:>15.2f} {valid(mixed):>7.4f} {valid(with_flip_averaging(mixed)):>14.4f}")


if __name__ == "__main__":
    main()
