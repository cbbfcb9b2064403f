"""Training throughput (images/s) and inference latency (ms/image) of each named model.

Random data, so it measures the machine and the architecture, not the input pipeline
(augmentation is not included). Inference is Keras on the CPU, batch 1 and batch 256,
for the bare network and wrapped in flip averaging (what a released model may ship).
    python bench/train_speed.py [--models seed_cnn fernet pagenet pagenet:20 pagenet:20:2332 separable] [--batch 128] [--steps 20]

`NAME:WIDTH` builds fernet or pagenet at another first-stage width (training.train --width);
`pagenet:WIDTH:CONVS` also sets the convolutions per resolution (`:2332` is --convs 2 3 3 2), and
`pagenet:WIDTH:CONVS:C1-C2-C3-C4` the channels per resolution (--channels; WIDTH is then ignored).

`separable` is pagenet with depthwise-separable convolutions (training.train --separable) in the
shape of the best compact FER+ model published (48-96-192-384 channels, 3-3-2-1 convolutions,
~0.17M parameters); `separable::CONVS:C1-C2-C3-C4` changes its convolutions and channels.
`rep:WIDTH:CONVS[:C1-C2-C3-C4]` is pagenet trained with RepVGG branches (training.train --rep-branches),
the training-time network; the page runs it folded into the plain one.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras
import numpy as np

from training.models import create_model, with_flip_averaging


def measure(name, batch, steps, precision):
    keras.mixed_precision.set_global_policy(precision)
    base, width, convs, channels = (name.split(":") + [None, None, None])[:4]
    convs = tuple(map(int, convs)) if convs else None
    channels = tuple(map(int, channels.split("-"))) if channels else None
    if base == "separable":
        model = create_model("pagenet", separable=True, convs=convs or (3, 3, 2, 1),
                             channels=channels or (48, 96, 192, 384))
    elif base == "rep":
        model = create_model("pagenet", rep_branches=True, width=int(width) if width else None,
                             convs=convs, channels=channels)
    else:
        model = create_model(base, width=int(width) if width else None, convs=convs, channels=channels)
    model.compile(optimizer="adam", loss="categorical_crossentropy", jit_compile="auto")
    x = np.random.randint(0, 256, (batch * steps, 48, 48, 1)).astype("float32")
    y = keras.utils.to_categorical(np.random.randint(0, 8, batch * steps), 8)
    model.fit(x[: batch * 3], y[: batch * 3], batch_size=batch, epochs=1, verbose=0)  # compile
    t = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    train_ips = batch * steps / (time.perf_counter() - t)
    infer_ms = {}
    for label, net in (("bare", model), ("flip", with_flip_averaging(model))):
        for b in (1, 256):
            batch_x = x[:b]
            for _ in range(3):
                net.predict_on_batch(batch_x)  # compiled graph, as serving uses it
            n = max(3, 200 // b)
            t = time.perf_counter()
            for _ in range(n):
                net.predict_on_batch(batch_x)
            infer_ms[label, b] = (time.perf_counter() - t) / (n * b) * 1000
    return model.count_params(), train_ips, infer_ms


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["seed_cnn", "fernet"])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--precision", default="float32", help="keras dtype policy, e.g. mixed_bfloat16")
    args = ap.parse_args()
    print(f"backend={keras.backend.backend()} batch={args.batch} steps={args.steps} precision={args.precision} cpus={os.cpu_count()}")
    print(f"{'':<32} {'infer ms/img, bare':>20} {'flip-averaged':>16}")
    print(f"{'model':<16} {'params':>9} {'train img/s':>11} {'batch 1':>10} {'256':>9} {'batch 1':>8} {'256':>7}")
    for name in args.models:
        params, ips, ms = measure(name, args.batch, args.steps, args.precision)
        print(f"{name:<16} {params:>9,} {ips:>11.0f} {ms['bare', 1]:>10.2f} {ms['bare', 256]:>9.3f} "
              f"{ms['flip', 1]:>8.2f} {ms['flip', 256]:>7.3f}")


if __name__ == "__main__":
    main()
