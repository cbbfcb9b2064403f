"""What a page bundle with B-bit kernels per output channel would weigh, and whether the exported
graph's kernels (batch norm folded in) still sit on B-bit levels, so that packing them loses nothing.

    python -m training.release campaign/pagenet_w20_2332_fkd_q4at100 --out /tmp/rel22   # kernels rounded to 4 bits
    python export/convert.py --model /tmp/rel22/model.keras --out /tmp/b32 --quantize none --parity-images 0
    python bench/bundle_bits.py /tmp/b32 --bits 4

Reads a float32 bundle (`--quantize none`). For each convolution and dense kernel it prints the most
distinct values in any output channel and the largest error of re-rounding it to 2**B levels per
channel (about 1e-7 where the network was trained at B bits: folding scales each channel, which keeps
its levels evenly spaced); then the bundle's weights at B bits a kernel value plus a float32 minimum
and step per channel, the rest in float16 as `--quantize kernels` stores it: what `--quantize kernels4`
(export/kernels4.py) writes, measured before exporting so.
"""

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundle", type=Path, help="a bundle exported with --quantize none")
    ap.add_argument("--bits", type=int, default=4)
    args = ap.parse_args(argv)
    if not (args.bundle / "model.json").is_file():
        sys.exit(f"error: {args.bundle} has no model.json")

    from export.convert import import_converter

    _, read_weights = import_converter()
    manifest = json.loads((args.bundle / "model.json").read_text())["weightsManifest"]
    if any(w.get("quantization") for group in manifest for w in group["weights"]):
        sys.exit(f"error: {args.bundle} is quantised already: export it with --quantize none")
    levels = 2 ** args.bits
    float32 = packed = 0
    for group in read_weights(manifest, str(args.bundle)):
        for w in group:
            data = w["data"]
            float32 += data.nbytes
            if data.ndim not in (2, 4) or data.dtype != np.float32 or data.size <= 1000:
                packed += data.nbytes // 2 if data.dtype == np.float32 else data.nbytes  # float16, as exported
                continue
            per_channel = data.reshape(-1, data.shape[-1])
            lo, hi = per_channel.min(0), per_channel.max(0)
            step = np.where(hi > lo, (hi - lo) / (levels - 1), 1.0)
            error = np.abs(np.round((per_channel - lo) / step) * step + lo - per_channel).max()
            distinct = max(len(np.unique(per_channel[:, c])) for c in range(per_channel.shape[1]))
            size = (per_channel.size * args.bits + 7) // 8 + 8 * per_channel.shape[1]
            packed += size
            print(f"{w['name'][-60:]:60s} {str(data.shape):18s} distinct a channel {distinct:5d}  "
                  f"re-rounding error {error:.1e}  {size:7,d} B")
    print(f"weights: {float32 / 1e6:.3f} MB in float32; {packed / 1e6:.3f} MB with {args.bits}-bit kernels")


if __name__ == "__main__":
    main()
