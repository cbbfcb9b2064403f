"""Fit a training run to the minutes a lent accelerator gives, then run it (scripts/device.sh train).

    python3 scripts/device_fit.py --minutes 9 --data FILE.npz --out runs/NAME [--from campaign/NAME] -- TRAIN_ARGS

A fresh run (no --resume in TRAIN_ARGS) is probed first: two epochs in a scratch folder give
an epoch's time once compiled, and `--epochs` is set so that the whole cosine schedule ends
inside the minutes left (TRAIN_ARGS' own --epochs, if any, is the most it may be). A resumed
run keeps its schedule. Either way training.train gets --time-limit, so it stops on a saved
epoch, which `--resume` continues here or on any other machine. The run's files are then
copied to $OUT/NAME, where the device tool brings them back from.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

STARTED = time.monotonic()
MARGIN_S = 30  # copying the files back and the process' own exit
RUN_FILES = ("last.keras", "model.keras", "model.json", "history.csv", "config.json", "command.txt", "teacher.npy")  # as campaign.sh saves


def train(args: list[str]) -> str:
    """training.train in a child process; its output is echoed and returned."""
    print("+ python3 -m training.train " + " ".join(args), flush=True)
    proc = subprocess.Popen([sys.executable, "-m", "training.train", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        print(line, end="", flush=True)
    if proc.wait():
        sys.exit(f"training.train failed (exit {proc.returncode})")
    return "".join(lines)


def epoch_seconds(log: str) -> dict[int, float]:
    return {int(e): float(s) for e, s in re.findall(r"epoch (\d+) took ([\d.]+) s", log)}


def without(args: list[str], option: str) -> tuple[list[str], str | None]:
    """TRAIN_ARGS less `option VALUE`, and that value."""
    if option not in args:
        return args, None
    i = args.index(option)
    return args[:i] + args[i + 2:], args[i + 1]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, required=True, help="wall-clock minutes this script may take")
    ap.add_argument("--data", required=True, help="the FER+ cache .npz")
    ap.add_argument("--out", type=Path, required=True, help="the run folder")
    ap.add_argument("--from", dest="source", type=Path,
                    help="a saved run folder (campaign/NAME): its state to --resume, or its teacher.npy for a fresh run")
    ap.add_argument("--epoch-seconds", type=float,
                    help="an epoch's time on this machine, if known (an earlier log's 'epoch N took'): skips the probe")
    ap.add_argument("train_args", nargs=argparse.REMAINDER)
    a = ap.parse_args(argv)
    rest = a.train_args[1:] if a.train_args[:1] == ["--"] else a.train_args
    deadline = STARTED + 60 * a.minutes - MARGIN_S
    if a.source:  # a resumed run needs its whole state; a fresh one only the teachers' answers, if any
        a.out.mkdir(parents=True, exist_ok=True)
        for f in a.source.iterdir():
            if f.is_file() and ("--resume" in rest or f.name == "teacher.npy"):
                shutil.copy(f, a.out / f.name)
    common = ["--data", a.data, "--verbose", "2"]

    if "--resume" not in rest:
        rest, most = without(rest, "--epochs")
        probe = Path("/tmp/probe")
        shutil.rmtree(probe, ignore_errors=True)
        probe.mkdir(parents=True)
        if (a.out / "teacher.npy").is_file():  # distillation: the teachers' answers travel with the run
            shutil.copy(a.out / "teacher.npy", probe / "teacher.npy")
        if a.epoch_seconds:
            seconds, start_cost = {2: a.epoch_seconds}, 2 * a.epoch_seconds  # a guess at loading and compiling
        else:
            began = time.monotonic()
            seconds = epoch_seconds(train([*rest, *common, "--out", str(probe), "--epochs", "1000", "--stop-at", "2"]))
            start_cost = time.monotonic() - began - 2 * seconds[2]  # loading, compiling: paid again by the real run
        if (probe / "teacher.npy").is_file() and not (a.out / "teacher.npy").is_file():
            a.out.mkdir(parents=True, exist_ok=True)
            shutil.copy(probe / "teacher.npy", a.out / "teacher.npy")
        epochs = math.floor((deadline - time.monotonic() - start_cost) / seconds[2])
        print(f"an epoch takes {seconds[2]:.1f} s once compiled (start {start_cost:.0f} s): {epochs} epochs fit", flush=True)
        if epochs < 3:
            sys.exit("too little time left for a schedule worth running")
        if most:
            epochs = min(epochs, int(most))
        rest += ["--epochs", str(epochs)]
    limit = (deadline - time.monotonic()) / 60
    train([*rest, *common, "--out", str(a.out), "--time-limit", f"{limit:.2f}"])
    if os.environ.get("OUT"):
        back = Path(os.environ["OUT"]) / a.out.name
        back.mkdir(parents=True, exist_ok=True)
        for name in RUN_FILES:
            if (a.out / name).is_file():
                shutil.copy(a.out / name, back / name)
        print(f"copied the run to {back}", flush=True)
    print(f"done in {time.monotonic() - STARTED:.0f} s", flush=True)


if __name__ == "__main__":
    main()
