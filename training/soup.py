"""One network whose weights are the mean of several runs' weights ("model soup").

    python -m training.soup runs/pagenet_a/model.keras runs/pagenet_b/model.keras --select greedy --out runs/soup
    python -m training.release runs/soup --views 1 --prior-correction auto --out models/pagenet --must-beat models/pagenet/model.keras

Unlike an ensemble (training.ensemble), a soup costs what one member costs, so the page can
ship it. Averaging only works for networks in one basin of the loss: branches of one run that
differ in what they saw after the branch point (`training.branch --order-seed`), as in Gupta et
al. (2020, "Stochastic Weight Averaging in Parallel"); two runs from scratch average to a much
worse network (bench/weight_average.py shows it). Every weight is averaged, batch-norm
statistics included; `--recompute-bn` then measures those statistics again on plain Train faces
(as SWA does: the mean of the members' statistics is not the statistics of the mean network).

`--select greedy` is Wortsman et al.'s (2022) greedy soup: the members are ranked by Valid
accuracy, and each in turn joins the soup only if the soup's Valid accuracy does not drop.
`all` averages every member. Valid figures (FER+ majority, one view) are printed for each
member and the soup; Test is never read. `command.txt` starts with each member's own commands,
so the folder says how every weight was made.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from training.data import default_data_dir
from training.ensemble import load_members, member_commands


def mean_weights(models) -> list:
    return [sum(ws) / len(ws) for ws in zip(*(m.get_weights() for m in models))]


def recompute_batch_norm(model, images, batches: int = 100, batch_size: int = 128, seed: int = 0):
    """Sets every batch-norm layer's moving statistics to their mean over `batches` random batches
    of `images`, the network otherwise as in training (dropout on); the other weights stay."""
    import keras
    import numpy as np

    layers = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    saved = [layer.momentum for layer in layers]
    for layer in layers:
        layer.moving_mean.assign(np.zeros(layer.moving_mean.shape))
        layer.moving_variance.assign(np.ones(layer.moving_variance.shape))
    order = np.random.default_rng(seed).permutation(len(images))
    batches = min(batches, len(images) // batch_size) or 1
    for k in range(batches):
        for layer in layers:  # momentum k/(k+1): the running value is the mean over the batches so far
            layer.momentum = k / (k + 1)
        model(images[order[k * batch_size:(k + 1) * batch_size]].astype("float32"), training=True)
    for layer, momentum in zip(layers, saved):
        layer.momentum = momentum


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("members", type=Path, nargs="+", help=".keras models of one architecture (branches of one run)")
    ap.add_argument("--select", choices=["all", "greedy"], default="all",
                    help="greedy: a member joins only if the soup's Valid accuracy does not drop")
    ap.add_argument("--recompute-bn", action="store_true",
                    help="measure the soup's batch-norm statistics again on 100 batches of plain Train faces")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=default_data_dir(), help="FER+ folder, for the Valid figures")
    args = ap.parse_args(argv)
    if len(args.members) < 2:
        ap.error("a soup needs two or more members")

    from training.evaluate import evaluate
    from training.models import load_model, unwrap

    splits, members = load_members(args.members, args.data)
    members = [unwrap(m) for m in members]
    shapes = [[w.shape for w in m.get_weights()] for m in members]
    for path, shape in zip(args.members[1:], shapes[1:]):
        if shape != shapes[0]:
            sys.exit(f"error: {path} is not the architecture of {args.members[0]}: a soup averages networks of one shape")

    soup = unwrap(load_model(args.members[0]))  # a fresh copy of the architecture to hold the mean

    def mix(indices):
        soup.set_weights(mean_weights([members[i] for i in indices]))
        if args.recompute_bn:
            recompute_batch_norm(soup, splits["train"].images)

    def valid(model) -> dict:
        return evaluate(model, splits, split_names=("valid",))["valid"]["ferplus_majority"]

    def show(name, r):
        print(f"  {name:<56} Valid accuracy {r['accuracy']:.4f}, mean class recall {r['mean_class_recall']:.4f}")

    print("FER+ Valid, majority protocol, one view:")
    scores = []
    for path, model in zip(args.members, members):
        r = valid(model)
        scores.append(r["accuracy"])
        show(str(path), r)
    if args.select == "greedy":
        ranked = sorted(range(len(members)), key=lambda i: -scores[i])
        keep, best = [ranked[0]], scores[ranked[0]]
        for i in ranked[1:]:
            mix(keep + [i])
            acc = valid(soup)["accuracy"]
            print(f"  greedy: + {args.members[i]} -> Valid accuracy {acc:.4f} ({'kept' if acc >= best else 'left out'})")
            if acc >= best:
                keep, best = keep + [i], acc
    else:
        keep = list(range(len(members)))
    mix(keep)
    kept = [args.members[i] for i in keep]
    show(f"soup of {len(kept)}", valid(soup))

    args.out.mkdir(parents=True, exist_ok=True)
    soup.save(args.out / "model.keras")
    command = "python -m training.soup " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    made = [line for m in kept for line in member_commands(m)]
    (args.out / "command.txt").write_text("\n".join(made + [command]) + "\n")
    print(f"wrote {args.out / 'model.keras'}: the mean of " + ", ".join(map(str, kept)))


if __name__ == "__main__":
    main()
