"""Train a FER+ classifier and write a run folder.

    python -m training.train --model fernet --label-mode soft --epochs 40 --out runs/fernet

The run folder holds: `model.keras` (best epoch on Valid, the bare model without
augmentation), `last.keras` (the training state, for --resume), `history.csv`,
`config.json` and `command.txt`. Model selection uses Valid under the FER+ majority
protocol only; Test is never looked at here.

Backend-agnostic Keras 3: the same command runs with KERAS_BACKEND=jax or torch.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from pathlib import Path

import keras
import numpy as np

from training.augment import create_augmentation
from training.consistent import copy_choice, draw_copies, fingerprint
from training.data import (EMOTIONS, LABEL_MODES, DataError, default_data_dir, load_ferplus,
                           protocol_labels, training_targets)
from training.models import MODELS, create_model, load_model, unwrap

log = logging.getLogger("train")
VALID_BATCH = 256


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=default_data_dir(), help="FER+ folder (either layout), or its cache .npz")
    ap.add_argument("--model", default="fernet", choices=sorted(MODELS))
    ap.add_argument("--width", type=int, default=None,
                    help="channels of the first stage (fernet and pagenet; later stages scale with it)")
    ap.add_argument("--convs", type=int, nargs=4, default=None, metavar="N",
                    help="pagenet only: 3x3 convolutions at each of its four resolutions (default 2 2 2 2)")
    ap.add_argument("--channels", type=int, nargs=4, default=None, metavar="C",
                    help="pagenet only: channels at each of its four resolutions (default: 1x, 2x, 4x, 8x --width)")
    ap.add_argument("--squeeze-excite", type=int, default=None, metavar="R",
                    help="pagenet only: end each resolution with a squeeze-and-excitation gate, hidden size channels/R")
    ap.add_argument("--separable", action="store_true", default=None,
                    help="pagenet only: depthwise-separable convolutions after the first one")
    ap.add_argument("--rep-branches", action="store_true", default=None,
                    help="pagenet only: train each convolution as a RepVGG block (1x1 and identity paths beside "
                         "the 3x3), folded into the plain network on release (training/reparam.py)")
    ap.add_argument("--label-mode", default="soft", choices=LABEL_MODES,
                    help="soft: vote distribution (default); majority: one-hot FER+ majority")
    ap.add_argument("--teacher", type=Path, nargs="+", default=None, metavar="MODEL",
                    help="distil: mix into the targets the mean answer of these saved models on each Train face "
                         "(computed once, unaugmented, kept in OUT/teacher.npy); a .npy is an earlier run's "
                         "teacher.npy, taken as one teacher")
    ap.add_argument("--teacher-weight", type=float, default=0.5,
                    help="share of the teachers' answer in the targets; the rest is the label mode's")
    ap.add_argument("--teacher-views", type=int, default=10,
                    help="test-time views the teachers average over (training.models.VIEW_PRESETS)")
    ap.add_argument("--teacher-copies", type=int, default=0, metavar="K",
                    help="consistent distillation (training/consistent.py): the teachers answer once, at one view, "
                         "on K fixed augmented copies of each Train face (geometry and cut-out), and each epoch the "
                         "student trains on one of those copies with the answer on that copy; 0: the teachers "
                         "answer on the plain face")
    ap.add_argument("--copy-mix", type=float, default=0.0, metavar="M",
                    help="with --teacher-copies: share of the teachers' answer taken from their mean over all of "
                         "the face's copies rather than from the copy shown, so the target changes less with "
                         "framing than the teachers do; 0 (default): the answer on the copy alone")
    ap.add_argument("--plain-share", type=float, default=0.0, metavar="P",
                    help="with --teacher-copies: share of the faces each epoch shown plain (copy 0, mirrored half "
                         "of the time, with the teachers' answer on the plain face) instead of a drawn copy: weaker "
                         "geometry for a schedule's end (training.branch --plain-share); 0 (default): none")
    ap.add_argument("--mixup", type=float, default=0.0, metavar="ALPHA",
                    help="mix each training face with another face of its batch, pixels and targets alike, at a "
                         "weight drawn from Beta(ALPHA, ALPHA) per face (mixup, Zhang et al. 2018; 0.2 is their "
                         "ImageNet value); 0 (default) disables it")
    ap.add_argument("--epochs", type=int, default=None,
                    help="length of the schedule (default 40; with --resume, the run's own)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (AdamW)")
    ap.add_argument("--weight-decay", type=float, default=0.05)
    ap.add_argument("--schedule", default="cosine", choices=["cosine", "constant"],
                    help="cosine: linear warm-up then cosine decay to 0 at the last epoch")
    ap.add_argument("--warmup-epochs", type=float, default=2)
    ap.add_argument("--sam", type=float, default=0.0, metavar="RHO",
                    help="sharpness-aware minimisation with this radius (0.05 is the paper's); about twice the "
                         "step cost; TensorFlow backend only")
    ap.add_argument("--weight-bits", type=int, default=0, metavar="B",
                    help="quantisation-aware training (training/quantise.py): every step and every validation "
                         "sees the kernels rounded to 2**B levels per output channel; 0 (default): float kernels; "
                         "TensorFlow backend only")
    ap.add_argument("--ema", type=float, default=0.0,
                    help="keep an exponential moving average of the weights with this momentum (e.g. 0.999) "
                         "and validate and save it instead of the raw weights; 0 disables it")
    ap.add_argument("--augment", type=float, default=1.0, help="augmentation strength, 0 disables it")
    ap.add_argument("--photometric", action="store_true",
                    help="also augment gamma, blur and sensor noise (how real cameras differ from FER2013)")
    ap.add_argument("--patience", type=int, default=12, help="early stop after this many epochs without a better Valid accuracy; 0 never stops early")
    ap.add_argument("--stop-at", type=int, default=0,
                    help="stop after this many epochs of the --epochs schedule, for a long run done in chunks "
                         "(continue it with --resume); 0 runs the whole schedule")
    ap.add_argument("--time-limit", type=float, default=0, metavar="MINUTES",
                    help="stop after the last epoch that fits in this many minutes from the start, so a chunk "
                         "ends on a saved epoch before its session or machine does (continue it with --resume)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--order-seed", type=int, default=None,
                    help="seed of the batch order, the copy each face shows and the on-the-fly augmentation "
                         "(default: --seed); the teachers' copies stay drawn from --seed, so a run with another "
                         "order reuses an earlier run's teacher.npy")
    ap.add_argument("--out", type=Path, default=Path("runs/fernet"))
    ap.add_argument("--resume", action="store_true", help="continue from OUT/last.keras")
    ap.add_argument("--init", type=Path, default=None,
                    help="start from the weights of this saved model (same architecture) with a fresh "
                         "optimizer and schedule: a warm restart / fine-tune")
    ap.add_argument("--data-parallel", action="store_true",
                    help="split each batch over all local devices (several GPUs) with Keras' distribution API; "
                         "JAX backend only; the batch size stays the global one")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N train/valid images (smoke tests)")
    ap.add_argument("--verbose", default="auto", help="Keras verbosity: auto, 0, 1 (progress bar), 2 (a line an epoch)")
    args = ap.parse_args(argv)
    for option in ("convs", "channels", "squeeze_excite", "separable", "rep_branches"):
        if getattr(args, option) and args.model != "pagenet":
            ap.error(f"--{option.replace('_', '-')} applies to --model pagenet only")
    if args.sam and args.weight_bits:
        ap.error("--sam and --weight-bits each need a training step of their own; choose one")
    if args.weight_bits and not 2 <= args.weight_bits <= 8:
        ap.error("--weight-bits takes 2 to 8 bits")
    if args.teacher_copies and (args.teacher_copies < 2 or not args.teacher):
        ap.error("--teacher-copies takes 2 or more copies, and --teacher")
    if args.mixup < 0:
        ap.error("--mixup takes an alpha of 0 or more")
    if not 0 <= args.plain_share <= 1 or (args.plain_share and not args.teacher_copies):
        ap.error("--plain-share takes a share from 0 to 1, with --teacher-copies")
    if not 0 <= args.copy_mix <= 1 or (args.copy_mix and not args.teacher_copies):
        ap.error("--copy-mix takes a share from 0 to 1, with --teacher-copies")
    return args


class SaveBestModel(keras.callbacks.Callback):
    """Saves the bare model (no augmentation wrapper) whenever Valid accuracy improves."""

    def __init__(self, model_to_save: keras.Model, path: Path, best: float = -np.inf):
        super().__init__()
        self.model_to_save, self.path, self.best = model_to_save, path, best

    def on_epoch_end(self, epoch, logs=None):
        acc = (logs or {}).get("val_accuracy")
        if acc is not None and acc > self.best:
            self.best = acc
            self.model_to_save.save(self.path)
            json.dump({"epoch": epoch + 1, "val_accuracy": float(acc)},
                      open(self.path.with_suffix(".json"), "w"))


class ShuffledBatches(keras.utils.PyDataset):
    """Training batches in an order fixed by (seed, epoch); `SeedEachEpoch` sets the epoch."""

    def __init__(self, x, y, batch_size: int, seed: int, full_batches_only: bool = False, mixup: float = 0.0):
        super().__init__()
        self.x, self.y, self.batch_size, self.seed = x, y, batch_size, seed
        self.full_batches_only = full_batches_only  # data parallel: every batch splits evenly
        self.mixup = mixup
        self.set_epoch(0)

    def set_epoch(self, epoch: int):
        self.epoch = epoch
        self.order = np.random.default_rng([self.seed, epoch]).permutation(len(self.x))

    def mixed(self, index: int, x: np.ndarray, y: np.ndarray):
        """The batch with mixup applied (when asked for). The partners and weights come from
        (seed, epoch, batch), so a resumed run mixes exactly as an uninterrupted one."""
        if not self.mixup:
            return x, y
        # Here and not keras.layers.MixUp: the targets (crowd votes mixed with the teachers' answers
        # on this very copy) are made in this loader, not in the model's input pipeline.
        x, y = x.astype("float32"), y.astype("float32")
        rng = np.random.default_rng([self.seed, self.epoch, index, 11])
        partner = rng.permutation(len(x))
        lam = rng.beta(self.mixup, self.mixup, size=len(x)).astype("float32")
        lam = np.maximum(lam, 1 - lam)  # each face stays the larger part of its own mix
        shape = (-1,) + (1,) * (x.ndim - 1)
        return (lam.reshape(shape) * x + (1 - lam.reshape(shape)) * x[partner],
                lam[:, None] * y + (1 - lam[:, None]) * y[partner])

    def __len__(self):
        if self.full_batches_only:
            return len(self.x) // self.batch_size  # the rest of this epoch's order waits for another epoch
        return int(np.ceil(len(self.x) / self.batch_size))

    def __getitem__(self, index):
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        return self.mixed(index, self.x[rows], self.y[rows])


class ConsistentBatches(ShuffledBatches):
    """Like ShuffledBatches, but each face comes as one of its fixed augmented copies, chosen by
    (seed, epoch), with the teachers' answer on that very copy mixed into its target. With
    `copy_mix` > 0 that share of the answer is the teachers' mean over all of the face's copies
    instead: an answer that does not move with the framing. With `plain_share` > 0 that share of
    the faces comes plain instead (copy 0, the same face un-warped), mirrored half of the time:
    the geometry and cut-out eased off, as detection and classification schedules often do at
    their end (YOLOX drops its strongest augmentation for the last epochs)."""

    def __init__(self, copies, crowd, teacher, teacher_weight: float, batch_size: int, seed: int,
                 full_batches_only: bool = False, copy_mix: float = 0.0, mixup: float = 0.0,
                 plain_share: float = 0.0):
        self.teacher, self.teacher_weight, self.copy_mix = teacher, teacher_weight, copy_mix
        self.plain_share = plain_share
        self.teacher_mean = teacher.mean(axis=1) if copy_mix else None
        super().__init__(copies, crowd, batch_size, seed, full_batches_only, mixup)

    def set_epoch(self, epoch: int):
        super().set_epoch(epoch)
        self.choice = copy_choice(len(self.x), self.x.shape[1], self.seed, epoch)
        self.mirror = np.zeros(len(self.x), bool)
        if self.plain_share:  # a draw of its own, so runs without it keep their copies
            rng = np.random.default_rng([self.seed, epoch, 13])
            plain = rng.random(len(self.x)) < self.plain_share
            self.choice[plain] = 0
            self.mirror = plain & (rng.random(len(self.x)) < 0.5)

    def __getitem__(self, index):
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        picked = self.choice[rows]
        w = self.teacher_weight
        answer = self.teacher[rows, picked]
        if self.copy_mix:  # left out at 0 so that earlier runs resume on the same arithmetic
            answer = (1 - self.copy_mix) * answer + self.copy_mix * self.teacher_mean[rows]
        targets = (1 - w) * self.y[rows] + w * answer
        faces = self.x[rows, picked].astype("float32")
        if self.plain_share:
            mirror = self.mirror[rows]
            faces[mirror] = faces[mirror, :, ::-1]  # (faces, rows, columns, 1): columns reversed
        return self.mixed(index, faces, targets.astype("float32"))


class StopBeforeDeadline(keras.callbacks.Callback):
    """Logs each epoch's seconds and stops at the end of an epoch when the next one, as long as
    the longest so far, would end after `deadline` (time.monotonic()): the run then stops on
    saved files, not in the middle of writing them."""

    def __init__(self, deadline: float = float("inf")):
        super().__init__()
        self.deadline, self.longest = deadline, 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.began = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        now = time.monotonic()
        self.longest = max(self.longest, now - self.began)
        log.info("epoch %d took %.1f s", epoch + 1, now - self.began)
        if now + self.longest > self.deadline:
            log.info("stopping after epoch %d: another would pass the time limit", epoch + 1)
            self.model.stop_training = True


class SeedEachEpoch(keras.callbacks.Callback):
    """As an epoch begins, derives from (seed, epoch) the batch order and the state of every
    random layer (augmentation, dropout).

    Keras saves no generator state in last.keras, so without this a run resumed on another
    day (or machine) would draw other batches and augmentations than an uninterrupted one;
    with it, the two end on the same weights, and a long schedule can be split across sessions.
    """

    def __init__(self, seed: int, batches: ShuffledBatches):
        super().__init__()
        self.seed, self.batches = seed, batches

    def on_epoch_begin(self, epoch, logs=None):
        self.batches.set_epoch(epoch)
        states = [v for v in self.model.variables if v.path.endswith("seed_generator_state")]
        base = int(np.random.default_rng([self.seed, epoch]).integers(2**30))
        for i, state in enumerate(states):
            state.assign(np.array([base + 7919 * i, 0], dtype=state.dtype))


def teacher_answers(paths: list[Path], views: int, images: np.ndarray, cache: Path,
                    fingerprint: str | None = None) -> np.ndarray:
    """The teachers' mean probabilities on `images`, each teacher averaged over `views` views.
    Kept in `cache` so that resuming a run (on another machine) needs neither the teachers
    nor the minutes they take. `fingerprint` names the images when they are augmented copies
    (training.consistent); it is kept beside the cache and must match for the cache to count."""
    from training.models import with_test_time_views

    def names_these(npy: Path) -> bool:
        side = npy.with_suffix(".json")
        return fingerprint is None or (side.is_file() and json.load(open(side)).get("fingerprint") == fingerprint)

    if cache.is_file():
        answers = np.load(cache).astype("float32")
        if answers.shape == (len(images), len(EMOTIONS)) and names_these(cache):
            return answers
        log.warning("%s does not fit these %d images; computing it again", cache, len(images))
    missing = [str(p) for p in paths if not Path(p).is_file()]
    if missing:
        raise DataError(f"teacher model not found: {', '.join(missing)}")
    answers = np.zeros((len(images), len(EMOTIONS)), dtype="float32")
    for path in paths:
        if Path(path).suffix == ".npy":  # an earlier run's answers: its teachers need not be at hand
            earlier = np.load(path).astype("float32")
            if earlier.shape != answers.shape:
                raise DataError(f"teacher answers {path} are for {len(earlier)} faces, not these {len(images)}")
            if not names_these(Path(path)):
                raise DataError(f"teacher answers {path} are for other augmented copies (see its .json)")
            answers += earlier / len(paths)
            continue
        teacher = with_test_time_views(unwrap(load_model(path)), views)
        chunk = 16384  # the copies are uint8; a float32 copy of all of them would take gigabytes
        for start in range(0, len(images), chunk):
            answers[start:start + chunk] += np.asarray(teacher.predict(
                images[start:start + chunk].astype("float32"), batch_size=VALID_BATCH, verbose=0)) / len(paths)
        log.info("teacher %s answered on %d Train faces (%d views)", path, len(images), views)
    if fingerprint:  # answers on copies are many: half precision halves the file a campaign commits,
        answers = answers.astype("float16")  # and the run trains on what it keeps, so a resume matches
        json.dump({"fingerprint": fingerprint, "faces": len(images)}, open(cache.with_suffix(".json"), "w"))
    np.save(cache, answers)
    return answers.astype("float32")


def load_arrays(args):
    splits = load_ferplus(args.data)
    train, valid = splits["train"], splits["valid"]
    if args.limit:
        train, valid = train.subset(slice(0, args.limit)), valid.subset(slice(0, args.limit))
    mask, y_train = training_targets(train.votes, args.label_mode)
    x_train = train.images[mask].astype("float32")
    if args.teacher and args.teacher_copies:  # consistent distillation: targets per copy, mixed per batch
        k = args.teacher_copies
        copies = draw_copies(x_train, k, args.seed)
        answers = teacher_answers(args.teacher, 1, copies.reshape(-1, *copies.shape[2:]), args.out / "teacher.npy",
                                  fingerprint(copies))
        log.info("consistent distillation: %d copies of %d Train faces", k, len(x_train))
        x_train, y_train = copies, (y_train, answers.reshape(len(x_train), k, -1))
    elif args.teacher:  # distillation: the teachers' answers soften the crowd's votes
        answers = teacher_answers(args.teacher, args.teacher_views, x_train, args.out / "teacher.npy")
        y_train = ((1 - args.teacher_weight) * y_train + args.teacher_weight * answers).astype("float32")
    vmask, vlabels = protocol_labels(valid.votes, "ferplus_majority")
    x_valid = valid.images[vmask].astype("float32")
    y_valid = np.eye(len(EMOTIONS), dtype="float32")[vlabels]
    return x_train, y_train, x_valid, y_valid


def order_seed(args) -> int:
    return args.seed if args.order_seed is None else args.order_seed


def make_batches(args, x_train, y_train) -> ShuffledBatches:
    if args.teacher_copies:  # load_arrays gave the copies, and the crowd's and the teachers' targets apart
        crowd, answers = y_train
        return ConsistentBatches(x_train, crowd, answers, args.teacher_weight, args.batch_size, order_seed(args),
                                 args.data_parallel, args.copy_mix, args.mixup, args.plain_share)
    return ShuffledBatches(x_train, y_train, args.batch_size, order_seed(args), args.data_parallel, args.mixup)


def init_weights(model: keras.Model, path: Path):
    if not path.is_file():
        sys.exit(f"error: --init {path}: no such file")
    source = unwrap(load_model(path))  # a flip-averaging wrapper holds the network inside
    if source.name != model.name or source.count_params() != model.count_params():
        sys.exit(f"error: --init {path} is a {source.name} with {source.count_params():,} parameters; "
                 f"expected a {model.name} with {model.count_params():,}")
    model.set_weights(source.get_weights())
    log.info("initialised %s from %s", model.name, path)


def build(args, steps_per_epoch):
    keras.utils.set_random_seed(args.seed)
    model = create_model(args.model, width=args.width, convs=tuple(args.convs) if args.convs else None,
                         channels=tuple(args.channels) if args.channels else None,
                         squeeze_excite=args.squeeze_excite, separable=args.separable,
                         rep_branches=args.rep_branches)
    layers = [keras.Input(model.input_shape[1:])]
    if args.augment > 0:
        # With --teacher-copies the geometry and cut-out are already in the copies the teachers answered on.
        layers.append(create_augmentation(seed=args.seed, strength=args.augment, photometric=args.photometric,
                                          geometric=not args.teacher_copies))
    if args.sam > 0:
        from training.sam import SharpnessAwareTrainer
        trainer = SharpnessAwareTrainer(layers + [model], rho=args.sam, name="trainer")
    elif args.weight_bits:
        from training.quantise import QuantisedKernelTrainer
        trainer = QuantisedKernelTrainer(layers + [model], bits=args.weight_bits, name="trainer")
    else:
        trainer = keras.Sequential(layers + [model], name="trainer")
    total = max(1, args.epochs * steps_per_epoch)
    warmup = int(args.warmup_epochs * steps_per_epoch)
    if args.schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(
            0.0 if warmup else args.lr, max(1, total - warmup), warmup_target=args.lr if warmup else None,
            warmup_steps=warmup)
    else:
        lr = args.lr
    compile_trainer(trainer, keras.optimizers.AdamW(lr, weight_decay=args.weight_decay, use_ema=args.ema > 0,
                                                    ema_momentum=args.ema or 0.99))
    return trainer, model


def compile_trainer(trainer, optimizer):
    """The loss and metric every run trains with (training.branch recompiles a run's trainer with them)."""
    trainer.compile(optimizer=optimizer, loss=keras.losses.CategoricalCrossentropy(),
                    metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])


def use_all_devices():
    """Data parallelism over every local device, through Keras' own distribution API."""
    if keras.backend.backend() != "jax":
        sys.exit("error: --data-parallel needs KERAS_BACKEND=jax (Keras' distribution API runs on JAX)")
    devices = keras.distribution.list_devices()
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    log.info("data parallel over %d devices: %s", len(devices), ", ".join(devices))
    return len(devices)


# Fixed when a run begins; a resume takes them from its config.json, whatever the command line says.
RUN_SETTINGS = ("label_mode", "sam", "weight_bits", "teacher", "teacher_weight", "teacher_views", "teacher_copies", "copy_mix", "mixup", "plain_share", "limit", "patience", "seed", "order_seed", "batch_size")


def restore_run_settings(args):
    """The targets, batches and stopping rule of the run being resumed (the schedule comes
    with the training state)."""
    config = args.out / "config.json"
    if not config.is_file():
        return
    saved = json.load(open(config))
    for key in RUN_SETTINGS:
        if key in saved:
            setattr(args, key, saved[key])
    args.teacher = [Path(t) for t in args.teacher] if args.teacher else None


def main(argv=None):
    started = time.monotonic()
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.resume:
        restore_run_settings(args)
    if args.sam > 0:
        if keras.backend.backend() != "tensorflow":
            sys.exit("error: --sam needs the TensorFlow backend (its training step uses tf.GradientTape)")
        import training.sam  # noqa: F401  (registers the trainer, so last.keras loads)
    if args.weight_bits:
        if keras.backend.backend() != "tensorflow":
            sys.exit("error: --weight-bits needs the TensorFlow backend (its training step uses tf.GradientTape)")
        import training.quantise  # noqa: F401  (registers the trainer, so last.keras loads)
    try:
        x_train, y_train, x_valid, y_valid = load_arrays(args)
    except DataError as e:
        sys.exit(f"error: {e}")
    if args.data_parallel:
        devices = use_all_devices()
        if args.batch_size % devices:
            sys.exit(f"error: --batch-size {args.batch_size} does not split evenly over {devices} devices")
    out: Path = args.out
    batches = make_batches(args, x_train, y_train)
    steps = len(batches)
    log.info("backend %s, %d train / %d valid images, %d steps an epoch",
             keras.backend.backend(), len(x_train), len(x_valid), steps)

    initial_epoch, best = 0, -np.inf
    if args.resume and (out / "last.keras").is_file():
        trainer = keras.saving.load_model(out / "last.keras")
        # The schedule was fixed when the run began (seed, batches and stopping rule: restore_run_settings).
        saved = json.load(open(out / "config.json")) if (out / "config.json").is_file() else {}
        args.epochs = args.epochs or saved.get("epochs")
        model = trainer.layers[-1]
        history = (out / "history.csv").read_text().strip().splitlines()[1:] if (out / "history.csv").is_file() else []
        initial_epoch = len(history)
        if (out / "model.json").is_file():
            best = json.load(open(out / "model.json"))["val_accuracy"]
        log.info("resuming %s at epoch %d (best Valid accuracy so far %.4f)", out, initial_epoch, best)
    else:
        if args.resume:
            log.warning("--resume given but %s has no last.keras; starting afresh", out)
        args.epochs = args.epochs or 40
        trainer, model = build(args, steps)
        if args.init:
            init_weights(model, args.init)
        (out / "history.csv").unlink(missing_ok=True)
        (out / "command.txt").write_text(
            "python -m training.train " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])) + "\n")
        plain = {k: [str(p) if isinstance(p, Path) else p for p in v] if isinstance(v, list)
                 else str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        json.dump({**plain,
                   "backend": keras.backend.backend(), "params": model.count_params(),
                   "train_images": len(x_train), "valid_images": len(x_valid)},
                  open(out / "config.json", "w"), indent=2)
    log.info("%s: %s parameters", model.name, f"{model.count_params():,}")

    # Order matters: last.keras is saved with the raw weights (the EMA lives in the optimizer's
    # state), then the EMA weights are swapped in for the best-model copy until the next epoch.
    validation = (x_valid, y_valid)
    if args.data_parallel:  # pad to whole batches; the padding weighs nothing in the metrics
        pad = -len(x_valid) % VALID_BATCH
        validation = (np.concatenate([x_valid, np.zeros((pad, *x_valid.shape[1:]), x_valid.dtype)]),
                      np.concatenate([y_valid, np.zeros((pad, *y_valid.shape[1:]), y_valid.dtype)]),
                      np.concatenate([np.ones(len(x_valid)), np.zeros(pad)]).astype("float32"))
    callbacks = [
        SeedEachEpoch(order_seed(args), batches),
        keras.callbacks.ModelCheckpoint(out / "last.keras"),
        keras.callbacks.CSVLogger(out / "history.csv", append=True),
    ]
    if trainer.optimizer.use_ema:
        callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    callbacks.append(SaveBestModel(model, out / "model.keras", best))
    callbacks.append(StopBeforeDeadline(started + 60 * args.time_limit if args.time_limit > 0 else float("inf")))
    if args.patience > 0:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=args.patience))
    start = time.time()
    end = min(args.epochs, args.stop_at) if args.stop_at else args.epochs
    trainer.fit(batches, epochs=end, initial_epoch=initial_epoch, shuffle=False,
                validation_data=validation, validation_batch_size=VALID_BATCH, callbacks=callbacks, verbose=args.verbose if args.verbose == "auto" else int(args.verbose))
    best_info = json.load(open(out / "model.json")) if (out / "model.json").is_file() else {}
    log.info("done in %.0f s; best Valid accuracy %.4f at epoch %s -> %s", time.time() - start,
             best_info.get("val_accuracy", float("nan")), best_info.get("epoch"), out / "model.keras")


if __name__ == "__main__":
    main()
