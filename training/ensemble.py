"""One model that answers with the weighted mean of several released models' answers.

    python -m training.ensemble models/pagenet/model.keras models/fernet/model.keras \\
        --views 10 --weights 2 1 --out models/api

Each member is taken without its wrappers and averaged over `--views` test-time views
(training.models.VIEW_PRESETS), then the members' probabilities are mixed in proportion to
`--weights`. The result is an ordinary .keras model (48x48x1 gray in, 8 probabilities out),
so the API, the CLI, `training.evaluate` and `training.train --teacher` take it as they take
one network. It prints each member's and the ensemble's Valid figures (FER+ majority), so the
mix is chosen on Valid; Test is never read here. It is for the server, not the page: the page
pays every member and every view in time a face.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from training.data import DataError, default_data_dir, load_ferplus


def build_ensemble(members, weights, views: int):
    import keras

    from training.models import INPUT_SHAPE, unwrap, with_test_time_views

    inputs = keras.Input(INPUT_SHAPE, name="pixels")
    total = float(sum(weights))
    mixed = []
    for i, (model, weight) in enumerate(zip(members, weights)):
        x = keras.Input(INPUT_SHAPE)  # each member in a model of its own name: two pagenets may not clash
        member = keras.Model(x, with_test_time_views(unwrap(model), views)(x), name=f"member{i}")
        mixed.append(keras.layers.Rescaling(weight / total, name=f"weight{i}")(member(inputs)))
    out = mixed[0] if len(mixed) == 1 else keras.layers.Add(name="mean_of_members")(mixed)
    return keras.Model(inputs, out, name="ensemble")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("members", type=Path, nargs="+", help="released .keras models")
    ap.add_argument("--weights", type=float, nargs="+", help="one per member (default: equal)")
    ap.add_argument("--views", type=int, default=1, help="test-time views per member (1, 2, 4 or 10)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=default_data_dir(), help="FER+ folder, for the Valid figures")
    args = ap.parse_args(argv)
    weights = args.weights or [1.0] * len(args.members)
    if len(weights) != len(args.members) or min(weights) < 0 or sum(weights) <= 0:
        sys.exit("error: --weights needs one non-negative number per member, not all zero")
    missing = [str(m) for m in args.members if not m.is_file()]
    if missing:
        sys.exit(f"error: not found: {', '.join(missing)}")

    from training.evaluate import evaluate
    from training.models import load_model, unwrap, with_test_time_views

    try:
        splits = load_ferplus(args.data)
        members = [load_model(m) for m in args.members]
        ensemble = build_ensemble(members, weights, args.views)
    except (DataError, ValueError) as e:
        sys.exit(f"error: {e}")

    def report(name, model):
        r = evaluate(model, splits, split_names=("valid",))["valid"]["ferplus_majority"]
        print(f"  {name:<48} Valid accuracy {r['accuracy']:.4f}, mean class recall {r['mean_class_recall']:.4f}")

    print(f"FER+ Valid, majority protocol, {args.views} view(s) per member:")
    for path, model in zip(args.members, members):
        report(str(path), with_test_time_views(unwrap(model), args.views))
    report("ensemble (weights " + " ".join(f"{w:g}" for w in weights) + ")", ensemble)

    args.out.mkdir(parents=True, exist_ok=True)
    ensemble.save(args.out / "model.keras")
    command = "python -m training.ensemble " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    (args.out / "command.txt").write_text(command + "\n")
    print(f"wrote {args.out / 'model.keras'} ({ensemble.count_params():,} parameters)")


if __name__ == "__main__":
    main()
