"""Branch a run at its saved epoch: a new run folder that continues the same schedule and
targets from there, trained with sharpness-aware minimisation (training/sam.py, `--sam`) and/or
on batches in another order (`--order-seed`) and/or towards other teachers' answers on the
same copies (`--targets`) and/or with its kernels rounded to fewer bits (`--weight-bits`,
training/quantise.py) and/or with mixup (`--mixup`) and/or with plain faces (`--plain-share`) from then on.

    python -m training.branch /tmp/at89/campaign/pagenet_w20_2332_fkd runs/pagenet_w20_2332_fkd_sam89 --sam 0.05
    ./scripts/campaign.sh resume pagenet_w20_2332_fkd_sam89 MINUTES

`--order-seed N` gives the branch its own batch order, copy choice and augmentation draws (the
teachers' copies and answers stay the source's). Branches of one run that differ only in that
end in one basin, so their weights can be averaged (training.soup): Gupta et al. (2020,
"Stochastic Weight Averaging in Parallel") train a shared start, refine copies apart, and average.

`--targets NPY` swaps a consistently distilled run's targets for another run's answers on the
same augmented copies (its `teacher.npy`; the `teacher.json` beside it must name the same copies),
so the end of a schedule can be taught by stronger teachers without running them again.

SAM costs about twice a plain step. Zhou et al. (2024, "Sharpness-Aware Minimization Efficiently
Selects Flatter Minima Late in Training") found that switching to SAM for the last part of a
schedule reaches about the flatness and accuracy of SAM throughout, so a long plain run can be
branched late and the two endings compared on the same first epochs. The source must not be
training while it is read (a committed campaign folder, or a stopped run); an autosave commit
gives one at an earlier epoch: `git archive COMMIT campaign/NAME | tar -x -C /tmp/at`.

`--mixup ALPHA` blends each face with another of its batch from the branch on (training.train's
`--mixup`), so a regulariser across faces can be tried on a schedule's low-learning-rate end alone.

`--plain-share P` eases the augmentation off for the rest of the schedule: that share of the faces
comes plain (training.train's `--plain-share`: copy 0, mirrored half of the time) instead of as a
shifted, rotated, cut-out copy; a consistently distilled source only.
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


def branch(source: Path, out: Path, rho: float, argv: list[str], order_seed: int | None = None,
           targets: Path | None = None, weight_bits: int = 0, mixup: float = 0.0,
           plain_share: float = 0.0) -> int:
    """Writes the branch into `out`; returns the epoch it starts from."""
    import keras

    import training.augment  # noqa: F401  (registers the custom augmentation layers, so last.keras loads)
    from training.quantise import QuantisedKernelTrainer
    from training.sam import SharpnessAwareTrainer
    from training.train import compile_trainer

    for name in ("last.keras", "config.json", *RUN_FILES):
        if not (source / name).is_file():
            raise ValueError(f"{source} has no {name}: branch a run folder that has saved at least one epoch")
    if (out / "last.keras").exists():
        raise ValueError(f"{out} already holds a run: choose a new folder")
    config = json.load(open(source / "config.json"))
    if rho > 0 and config.get("sam", 0) > 0:
        raise ValueError(f"{source} already trains with SAM (rho {config['sam']}): resume it instead")
    if rho > 0 and weight_bits:
        raise ValueError("SAM and --weight-bits each need a training step of their own; choose one")
    if weight_bits and config.get("weight_bits"):
        raise ValueError(f"{source} already trains with its kernels at {config['weight_bits']} bits: resume it instead")
    if (rho > 0 or weight_bits) and (config.get("backend", "tensorflow") != "tensorflow" or keras.backend.backend() != "tensorflow"):
        raise ValueError("SAM's and --weight-bits' training steps need the TensorFlow backend")
    if mixup and config.get("mixup"):
        raise ValueError(f"{source} already trains with mixup (alpha {config['mixup']}): resume it instead")
    if plain_share and not config.get("teacher_copies"):
        raise ValueError(f"{source} trains on its faces' augmentation on the fly, not on copies (--teacher-copies): "
                         "--plain-share has no copies to ease off")
    if plain_share and config.get("plain_share"):
        raise ValueError(f"{source} already shows {config['plain_share']} of its faces plain: resume it instead")
    was = config.get("order_seed") if config.get("order_seed") is not None else config.get("seed")
    if order_seed is not None and order_seed == was:
        raise ValueError(f"{source} already draws its batches from seed {was}: choose another --order-seed")

    if targets is not None:
        same_copies = [json.load(open(p.with_suffix(".json"))).get("fingerprint") if p.with_suffix(".json").is_file() else None
                       for p in (source / "teacher.npy", targets)]
        if not config.get("teacher_copies") or same_copies[0] is None:
            raise ValueError(f"{source} was not distilled on augmented copies (--teacher-copies): nothing to swap")
        if not targets.is_file() or same_copies[1] != same_copies[0]:
            raise ValueError(f"{targets} is not a teacher.npy answering on {source}'s copies (see the .json beside each)")
        own = source / "teacher.npy"  # a saved campaign may name its answers' .npy instead of keeping a copy
        if not own.is_file() or targets.resolve() == own.resolve() or targets.read_bytes() == own.read_bytes():
            raise ValueError(f"{targets} holds {source}'s own targets, or {source} keeps none to compare: "
                             "branch a run folder that holds its teacher.npy")

    if rho > 0:
        plain = keras.saving.load_model(source / "last.keras")
        # The same layers and the same optimizer object: weights, moments, EMA and step count carry over.
        trainer = SharpnessAwareTrainer([keras.Input(plain.input_shape[1:]), *plain.layers], rho=rho, name=plain.name)
        compile_trainer(trainer, plain.optimizer)
    elif weight_bits:
        plain = keras.saving.load_model(source / "last.keras")
        trainer = QuantisedKernelTrainer([keras.Input(plain.input_shape[1:]), *plain.layers], bits=weight_bits, name=plain.name)
        compile_trainer(trainer, plain.optimizer)
    out.mkdir(parents=True, exist_ok=True)
    for name in RUN_FILES + TARGET_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, out / name)
    at = epochs_done(source)
    changed = {"sam": rho} if rho > 0 else {}
    if weight_bits:
        changed["weight_bits"] = weight_bits
    if order_seed is not None:
        changed["order_seed"] = order_seed
    if mixup:
        changed["mixup"] = mixup
    if plain_share:
        changed["plain_share"] = plain_share
    if targets is not None:  # resuming reads OUT/teacher.npy; the teachers named here are never run again
        shutil.copy2(targets, out / "teacher.npy")
        changed.update(teacher=[str(targets)], targets_from_epoch=at)
    json.dump({**config, **changed, "out": str(out), "branched_from": str(source), "branched_at_epoch": at},
              open(out / "config.json", "w"), indent=2)
    with open(out / "command.txt", "a") as f:
        f.write("python -m training.branch " + " ".join(argv) + "\n")
    if rho > 0 or weight_bits:
        trainer.save(out / "last.keras")
    else:  # the training state is unchanged: only what the resumed run reads from config.json differs
        shutil.copy2(source / "last.keras", out / "last.keras")
    return at


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", type=Path, help="a run folder (runs/NAME or campaign/NAME) at the epoch to branch from")
    ap.add_argument("out", type=Path, help="the new run folder (then: python -m training.train --out OUT --resume)")
    ap.add_argument("--sam", type=float, default=0.0, metavar="RHO", help="SAM's radius from the branch on (e.g. 0.05)")
    ap.add_argument("--order-seed", type=int, default=None, metavar="N",
                    help="the seed of the batch order, copy choice and augmentation from the branch on")
    ap.add_argument("--targets", type=Path, default=None, metavar="NPY",
                    help="another run's teacher.npy on the same copies: the teachers' answers from the branch on")
    ap.add_argument("--weight-bits", type=int, default=0, metavar="B",
                    help="quantisation-aware from the branch on: kernels rounded to 2**B levels per output channel")
    ap.add_argument("--mixup", type=float, default=0.0, metavar="ALPHA",
                    help="mixup from the branch on: each face blended with another by a Beta(ALPHA, ALPHA) weight")
    ap.add_argument("--plain-share", type=float, default=0.0, metavar="P",
                    help="from the branch on, this share of the faces shown plain (mirrored half of the time) "
                         "instead of as augmented copies")
    args = ap.parse_args(argv)
    if args.weight_bits and not 2 <= args.weight_bits <= 8:
        ap.error("--weight-bits takes 2 to 8 bits")
    if args.sam < 0:
        ap.error("--sam must be above 0")
    if args.mixup < 0:
        ap.error("--mixup takes an alpha above 0")
    if not 0 <= args.plain_share <= 1:
        ap.error("--plain-share takes a share from 0 to 1")
    if (args.sam == 0 and args.order_seed is None and args.targets is None and not args.weight_bits and not args.mixup
            and not args.plain_share):
        ap.error("give --sam RHO (above 0), --order-seed N, --targets NPY, --weight-bits B, --mixup ALPHA "
                 "and/or --plain-share P: "
                 "a branch that changes nothing is the source")
    try:
        at = branch(args.source, args.out, args.sam, argv, args.order_seed, args.targets, args.weight_bits, args.mixup,
                    args.plain_share)
    except ValueError as e:
        sys.exit(f"error: {e}")
    what = ", ".join(([f"SAM rho {args.sam}"] if args.sam else []) + ([f"order seed {args.order_seed}"] if args.order_seed is not None else [])
                     + ([f"targets {args.targets}"] if args.targets is not None else [])
                     + ([f"kernels at {args.weight_bits} bits"] if args.weight_bits else [])
                     + ([f"mixup alpha {args.mixup}"] if args.mixup else [])
                     + ([f"{args.plain_share:.0%} of the faces plain"] if args.plain_share else []))
    print(f"{args.out}: branched from {args.source} after epoch {at}, {what} from here; "
          f"continue with: python -m training.train --out {args.out} --resume")


if __name__ == "__main__":
    main()
