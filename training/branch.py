"""Branch a run at its saved epoch: a new run folder that continues the same schedule, data and
targets from there, trained with sharpness-aware minimisation (training/sam.py) from then on.

    python -m training.branch /tmp/at89/campaign/pagenet_w20_2332_fkd runs/pagenet_w20_2332_fkd_sam89 --sam 0.05
    ./scripts/campaign.sh resume pagenet_w20_2332_fkd_sam89 MINUTES

SAM costs about twice a plain step. Zhou et al. (2024, "Sharpness-Aware Minimization Efficiently
Selects Flatter Minima Late in Training") found that switching to SAM for the last part of a
schedule reaches about the flatness and accuracy of SAM throughout, so a long plain run can be
branched late and the two endings compared on the same first epochs. The source must not be
training while it is read (a committed campaign folder, or a stopped run); an autosave commit
gives one at an earlier epoch: `git archive COMMIT campaign/NAME | tar -x -C /tmp/at`.
"""

import argparse
import json
import shutil
import sys
from pathlib import Path

RUN_FILES = ("model.keras", "model.json", "history.csv", "command.txt")
TARGET_FILES = ("teacher.npy", "teacher.json")  # a distilled run's targets, where it kept them


def epochs_done(run: Path) -> int:
    rows = (run / "history.csv").read_text().strip().splitlines()[1:] if (run / "history.csv").is_file() else []
    return len(rows)


def branch(source: Path, out: Path, rho: float, argv: list[str]) -> int:
    """Writes the branch into `out`; returns the epoch it starts from."""
    import keras

    import training.augment  # noqa: F401  (registers the custom augmentation layers, so last.keras loads)
    from training.sam import SharpnessAwareTrainer
    from training.train import compile_trainer

    for name in ("last.keras", "config.json", *RUN_FILES):
        if not (source / name).is_file():
            raise ValueError(f"{source} has no {name}: branch a run folder that has saved at least one epoch")
    if (out / "last.keras").exists():
        raise ValueError(f"{out} already holds a run: choose a new folder")
    config = json.load(open(source / "config.json"))
    if config.get("sam", 0) > 0:
        raise ValueError(f"{source} already trains with SAM (rho {config['sam']}): resume it instead")
    if config.get("backend", "tensorflow") != "tensorflow" or keras.backend.backend() != "tensorflow":
        raise ValueError("SAM's training step needs the TensorFlow backend")

    plain = keras.saving.load_model(source / "last.keras")
    # The same layers and the same optimizer object: weights, moments, EMA and step count carry over.
    trainer = SharpnessAwareTrainer([keras.Input(plain.input_shape[1:]), *plain.layers], rho=rho, name=plain.name)
    compile_trainer(trainer, plain.optimizer)
    out.mkdir(parents=True, exist_ok=True)
    for name in RUN_FILES + TARGET_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, out / name)
    at = epochs_done(source)
    json.dump({**config, "sam": rho, "out": str(out), "branched_from": str(source), "branched_at_epoch": at},
              open(out / "config.json", "w"), indent=2)
    with open(out / "command.txt", "a") as f:
        f.write("python -m training.branch " + " ".join(argv) + "\n")
    trainer.save(out / "last.keras")
    return at


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", type=Path, help="a run folder (runs/NAME or campaign/NAME) at the epoch to branch from")
    ap.add_argument("out", type=Path, help="the new run folder (then: python -m training.train --out OUT --resume)")
    ap.add_argument("--sam", type=float, required=True, metavar="RHO", help="SAM's radius from the branch on (e.g. 0.05)")
    args = ap.parse_args(argv)
    if args.sam <= 0:
        ap.error("--sam must be above 0")
    try:
        at = branch(args.source, args.out, args.sam, argv)
    except ValueError as e:
        sys.exit(f"error: {e}")
    print(f"{args.out}: branched from {args.source} after epoch {at}, SAM rho {args.sam} from here; "
          f"continue with: python -m training.train --out {args.out} --resume")


if __name__ == "__main__":
    main()
