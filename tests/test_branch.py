"""Branching a plain run into a SAM run at a saved epoch (training/branch.py)."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO
from tests.test_train_smoke import tiny_ferplus  # noqa: F401  (fixture)
from training import branch, train

COMMON = ["--model", "pagenet", "--batch-size", "4", "--verbose", "0", "--warmup-epochs", "1",
          "--ema", "0.9", "--photometric", "--patience", "0", "--epochs", "2"]


def test_branch_continues_the_same_schedule_with_sam(tiny_ferplus, tmp_path):  # noqa: F811
    """The branch starts from exactly the source's state (weights, optimizer moments, EMA, step
    count) and resumes to the end of the same schedule, taking SAM's steps from there on."""
    import keras

    from training.sam import SharpnessAwareTrainer

    common = COMMON + ["--data", str(tiny_ferplus)]
    train.main(common + ["--out", str(tmp_path / "whole")])
    train.main(common + ["--out", str(tmp_path / "plain"), "--stop-at", "1"])
    # in a process of its own, as a campaign does (nothing imported beforehand registers the layers)
    done = subprocess.run([sys.executable, "-m", "training.branch", str(tmp_path / "plain"), str(tmp_path / "sam"),
                           "--sam", "0.5"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "after epoch 1" in done.stdout
    config = json.loads((tmp_path / "sam" / "config.json").read_text())
    assert config["sam"] == 0.5 and config["branched_at_epoch"] == 1
    assert "training.branch" in (tmp_path / "sam" / "command.txt").read_text().splitlines()[-1]
    assert json.loads((tmp_path / "plain" / "config.json").read_text())["sam"] == 0  # the source is untouched

    source = keras.saving.load_model(tmp_path / "plain" / "last.keras")
    start = keras.saving.load_model(tmp_path / "sam" / "last.keras")
    assert isinstance(start, SharpnessAwareTrainer) and start.rho == 0.5
    assert len(start.optimizer.variables) == len(source.optimizer.variables)
    for a, b in zip(source.weights + source.optimizer.variables, start.weights + start.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)

    train.main(common + ["--out", str(tmp_path / "sam"), "--resume"])  # --sam comes from the branch's config
    assert [int(r["epoch"]) for r in csv.DictReader((tmp_path / "sam" / "history.csv").open())] == [0, 1]
    whole = keras.saving.load_model(tmp_path / "whole" / "last.keras")
    sam = keras.saving.load_model(tmp_path / "sam" / "last.keras")
    assert isinstance(sam, SharpnessAwareTrainer)
    assert int(sam.optimizer.iterations.numpy()) == int(whole.optimizer.iterations.numpy()) > int(source.optimizer.iterations.numpy())
    moved = [np.abs(np.asarray(a) - np.asarray(b)).max() for a, b in zip(whole.trainable_weights, sam.trainable_weights)]
    assert max(moved) > 1e-3  # SAM's own steps after the branch, not the plain ones


def test_branch_refuses_what_it_cannot_continue(tiny_ferplus, tmp_path):  # noqa: F811
    with pytest.raises(SystemExit, match="has no last.keras"):
        branch.main([str(tmp_path / "nothing"), str(tmp_path / "out"), "--sam", "0.05"])
    train.main(COMMON + ["--data", str(tiny_ferplus), "--out", str(tmp_path / "plain"), "--stop-at", "1"])
    branch.main([str(tmp_path / "plain"), str(tmp_path / "sam"), "--sam", "0.05"])
    with pytest.raises(SystemExit, match="already holds a run"):
        branch.main([str(tmp_path / "plain"), str(tmp_path / "sam"), "--sam", "0.05"])
    with pytest.raises(SystemExit, match="already trains with SAM"):
        branch.main([str(tmp_path / "sam"), str(tmp_path / "again"), "--sam", "0.05"])
    with pytest.raises(SystemExit):
        branch.main([str(tmp_path / "plain"), str(tmp_path / "zero"), "--sam", "0"])
