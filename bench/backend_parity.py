"""Do two Keras backends give a saved model the same answers? Run it once per backend.

    KERAS_BACKEND=jax python bench/backend_parity.py MODEL --save /tmp/p_jax.npy
    KERAS_BACKEND=tensorflow python bench/backend_parity.py MODEL --compare /tmp/p_jax.npy

Predicts the first `--images` FER+ Test images and saves the probabilities, or prints the
largest difference from (and top-1 agreement with) probabilities saved by the other run.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from training.data import default_data_dir, load_ferplus  # noqa: E402
from training.models import load_model  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--data", default=default_data_dir())
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--save", help=".npy file for this backend's probabilities")
    what.add_argument("--compare", help=".npy file saved by a run on another backend")
    args = ap.parse_args()
    x = load_ferplus(args.data)["test"].images[: args.images].astype("float32")
    probs = np.asarray(load_model(args.model).predict(x, verbose=0))
    if args.save:
        np.save(args.save, probs)
        print(f"saved {probs.shape} probabilities from backend {keras.backend.backend()} to {args.save}")
        return
    other = np.load(args.compare)
    print(f"backend {keras.backend.backend()} vs {args.compare} on {len(x)} Test images: "
          f"max |dp| {np.abs(probs - other).max():.1e}, top-1 agreement {(probs.argmax(1) == other.argmax(1)).mean():.4f}")


if __name__ == "__main__":
    main()
