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

`--select greedy` treats the models given as candidates and keeps those that greedy forward
selection on Valid picks (Caruana et al. 2004: start from the most accurate, add whichever
candidate raises the equal-weight mean's Valid accuracy most, stop when none raises it), so
the choice of members is a rule, not a judgement. `command.txt` starts with each member's own
commands (the `command.txt` beside it), so the folder says how every weight was made.
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


def greedy_selection(probs, labels) -> list[int]:
    """Indices of the candidates greedy forward selection keeps, in the order it added them."""
    import numpy as np

    chosen, best = [], -1.0
    while len(chosen) < len(probs):
        score, pick = max((float((np.mean([probs[j] for j in chosen + [i]], 0).argmax(1) == labels).mean()), -i)
                          for i in range(len(probs)) if i not in chosen)
        if score <= best:
            break
        chosen.append(-pick)
        best = score
    return chosen


def load_members(paths: list[Path], data: Path):
    """FER+ (for the Valid figures) and the models at `paths`, or exit with a clear error."""
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        sys.exit(f"error: not found: {', '.join(missing)}")
    from training.models import load_model
    from training.reparam import fuse

    try:  # members trained with RepVGG branches join folded, at the plain network's cost
        return load_ferplus(data), [fuse(load_model(p)) for p in paths]
    except (DataError, ValueError) as e:
        sys.exit(f"error: {e}")


def member_commands(path: Path) -> list[str]:
    """The commands that made a member (its folder's command.txt), if they are on record."""
    record = path.parent / "command.txt"
    return record.read_text().strip().splitlines() if record.is_file() else [f"# {path}: no command.txt beside it"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("members", type=Path, nargs="+", help="released .keras models")
    ap.add_argument("--weights", type=float, nargs="+", help="one per member (default: equal)")
    ap.add_argument("--views", type=int, default=1, help="test-time views per member (1, 2, 4 or 10)")
    ap.add_argument("--select", choices=["all", "greedy"], default="all",
                    help="greedy: keep the members forward selection on Valid accuracy picks (equal weights)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=default_data_dir(), help="FER+ folder, for the Valid figures")
    args = ap.parse_args(argv)
    weights = args.weights or [1.0] * len(args.members)
    if len(weights) != len(args.members) or min(weights) < 0 or sum(weights) <= 0:
        sys.exit("error: --weights needs one non-negative number per member, not all zero")
    if args.select == "greedy" and args.weights:
        sys.exit("error: --select greedy weighs the members it keeps equally; leave out --weights")

    from training.data import protocol_labels
    from training.evaluate import evaluate, predict
    from training.models import unwrap, with_test_time_views

    splits, members = load_members(args.members, args.data)
    try:
        viewed = [with_test_time_views(unwrap(m), args.views) for m in members]
    except ValueError as e:  # no such preset of views
        sys.exit(f"error: {e}")

    def report(name, model):
        r = evaluate(model, splits, split_names=("valid",))["valid"]["ferplus_majority"]
        print(f"  {name:<48} Valid accuracy {r['accuracy']:.4f}, mean class recall {r['mean_class_recall']:.4f}")

    print(f"FER+ Valid, majority protocol, {args.views} view(s) per member:")
    for path, model in zip(args.members, viewed):
        report(str(path), model)
    if args.select == "greedy":
        mask, labels = protocol_labels(splits["valid"].votes, "ferplus_majority")
        probs = [predict(model, splits["valid"].images)[mask] for model in viewed]
        keep = greedy_selection(probs, labels)
        for n in range(1, len(keep) + 1):
            acc = (sum(probs[i] for i in keep[:n]).argmax(1) == labels).mean()
            print(f"  greedy step {n}: + {args.members[keep[n - 1]]} -> Valid accuracy {acc:.4f}")
        args.members, members, weights = [args.members[i] for i in keep], [members[i] for i in keep], [1.0] * len(keep)
    ensemble = build_ensemble(members, weights, args.views)
    report("ensemble of " + " ".join(map(str, args.members)) + " (weights " + " ".join(f"{w:g}" for w in weights) + ")",
           ensemble)

    args.out.mkdir(parents=True, exist_ok=True)
    ensemble.save(args.out / "model.keras")
    command = "python -m training.ensemble " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    made = [line for m in args.members for line in member_commands(m)]
    (args.out / "command.txt").write_text("\n".join(made + [command]) + "\n")
    print(f"wrote {args.out / 'model.keras'} ({ensemble.count_params():,} parameters)")


if __name__ == "__main__":
    main()
