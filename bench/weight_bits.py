"""Valid accuracy of a saved network with its kernels rounded to fewer bits, as a bundle would store them.

    python bench/weight_bits.py models/pagenet/model.keras --bits 8 6 5 4

The page's bundle stores each convolution and dense kernel as uint8, affine per tensor (tfjs's
quantisation; `export/convert.py --quantize kernels`), so its size caps the network at about a byte a
parameter. This measures what fewer bits would cost, per tensor as tfjs does and per output channel
(one scale and minimum for each), before anyone builds a bundle format around it. FER+ majority
protocol on Valid, one view, no prior correction; Test is never read.
"""

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def rounded(kernel: np.ndarray, bits: int, per_channel: bool) -> np.ndarray:
    """Affine rounding to 2**bits levels between the minimum and maximum, of the whole tensor or of
    each output channel (the last axis)."""
    axes = tuple(range(kernel.ndim - 1)) if per_channel else None
    lo, hi = kernel.min(axis=axes, keepdims=True), kernel.max(axis=axes, keepdims=True)
    scale = np.where(hi > lo, (hi - lo) / (2 ** bits - 1), 1.0)
    return (np.round((kernel - lo) / scale) * scale + lo).astype(kernel.dtype)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path)
    ap.add_argument("--bits", type=int, nargs="+", default=[8, 6, 5, 4])
    ap.add_argument("--data", type=Path, default=None, help="FER+ folder (default: ../shared/data/ferplus or $FERPLUS_DATA)")
    args = ap.parse_args(argv)
    if not args.model.is_file():
        sys.exit(f"error: not found: {args.model}")

    from training.data import DataError, default_data_dir, load_ferplus
    from training.evaluate import valid_summary
    from training.models import load_model, unwrap

    try:
        splits = load_ferplus(args.data or default_data_dir())
    except DataError as e:
        sys.exit(f"error: {e}")
    model = load_model(args.model)
    kernels = [w for w in unwrap(model).weights if w.path.endswith("kernel")]
    original = [np.asarray(w) for w in kernels]
    params = sum(k.size for k in original)

    def valid() -> str:
        r = valid_summary(model, splits)
        return f"{100 * r['accuracy']:.2f}% / {r['mean_class_recall']:.3f}"

    print(f"{args.model}: {len(kernels)} kernels, {params:,} parameters in them")
    print(f"{'kernels':28s} {'Valid (accuracy / mean class recall)':>38s}")
    print(f"{'float32 (as saved)':28s} {valid():>38s}")
    for bits in args.bits:
        for per_channel in (False, True):
            for w, k in zip(kernels, original):
                w.assign(rounded(k, bits, per_channel))
            name = f"{bits} bits, per {'output channel' if per_channel else 'tensor'}"
            print(f"{name:28s} {valid():>38s}  ({params * bits / 8 / 1e6:.2f} MB of kernels)", flush=True)
    for w, k in zip(kernels, original):
        w.assign(k)


if __name__ == "__main__":
    main()
