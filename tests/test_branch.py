"""Branching a run at a saved epoch (training/branch.py): into SAM, another batch order, other targets."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO
from tests.test_data import make_fixture
from tests.test_train_smoke import tiny_ferplus  # noqa: F401  (fixture)
from training import branch, train

COMMON = ["--model", "pagenet", "--batch-size", "4", "--verbose", "0", "--warmup-epochs", "1",
          "--ema", "0.9", "--photometric", "--patience", "0", "--epochs", "2"]
DISTIL = ["--teacher-copies", "3", "--teacher-weight", "0.5"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One consistently distilled run (as the campaigns are), trained once for the module's tests:
    `whole` ran its 2 epochs uninterrupted, `plain` stopped after the first (the branch point)."""
    root = tmp_path_factory.mktemp("branch")
    make_fixture(root / "ms", np.random.default_rng(1), per_split=16)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FERPLUS_CACHE", str(root / "cache"))
        common = COMMON + ["--data", str(root / "ms")]
        train.main(common + ["--epochs", "1", "--out", str(root / "teacher")])
        distil = DISTIL + ["--teacher", str(root / "teacher" / "model.keras")]
        train.main(common + distil + ["--out", str(root / "whole")])
        train.main(common + distil + ["--out", str(root / "plain"), "--stop-at", "1"])
        yield root


def largest_weight_change(run_a, run_b) -> float:
    """Checks that two runs took the same number of steps; returns how far apart their weights ended."""
    import keras

    a, b = (keras.saving.load_model(r / "last.keras") for r in (run_a, run_b))
    assert int(a.optimizer.iterations.numpy()) == int(b.optimizer.iterations.numpy())
    return max(np.abs(np.asarray(x) - np.asarray(y)).max() for x, y in zip(a.trainable_weights, b.trainable_weights))


def test_branch_continues_the_same_schedule_with_sam(runs, tmp_path):
    """The branch starts from exactly the source's state (weights, optimizer moments, EMA, step
    count) and resumes to the end of the same schedule, taking SAM's steps from there on."""
    import keras

    from training.sam import SharpnessAwareTrainer

    common = COMMON + ["--data", str(runs / "ms")]
    # in a process of its own, as a campaign does (nothing imported beforehand registers the layers)
    done = subprocess.run([sys.executable, "-m", "training.branch", str(runs / "plain"), str(tmp_path / "sam"),
                           "--sam", "0.5"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "after epoch 1" in done.stdout
    config = json.loads((tmp_path / "sam" / "config.json").read_text())
    assert config["sam"] == 0.5 and config["branched_at_epoch"] == 1
    assert "training.branch" in (tmp_path / "sam" / "command.txt").read_text().splitlines()[-1]
    assert json.loads((runs / "plain" / "config.json").read_text())["sam"] == 0  # the source is untouched

    source = keras.saving.load_model(runs / "plain" / "last.keras")
    start = keras.saving.load_model(tmp_path / "sam" / "last.keras")
    assert isinstance(start, SharpnessAwareTrainer) and start.rho == 0.5
    assert len(start.optimizer.variables) == len(source.optimizer.variables)
    for a, b in zip(source.weights + source.optimizer.variables, start.weights + start.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)

    train.main(common + ["--out", str(tmp_path / "sam"), "--resume"])  # --sam comes from the branch's config
    assert [int(r["epoch"]) for r in csv.DictReader((tmp_path / "sam" / "history.csv").open())] == [0, 1]
    whole = keras.saving.load_model(runs / "whole" / "last.keras")
    sam = keras.saving.load_model(tmp_path / "sam" / "last.keras")
    assert isinstance(sam, SharpnessAwareTrainer)
    assert int(sam.optimizer.iterations.numpy()) == int(whole.optimizer.iterations.numpy()) > int(source.optimizer.iterations.numpy())
    moved = [np.abs(np.asarray(a) - np.asarray(b)).max() for a, b in zip(whole.trainable_weights, sam.trainable_weights)]
    assert max(moved) > 1e-3  # SAM's own steps after the branch, not the plain ones


def test_branch_refuses_what_it_cannot_continue(runs, tmp_path):
    with pytest.raises(SystemExit, match="has no last.keras"):
        branch.main([str(tmp_path / "nothing"), str(tmp_path / "out"), "--sam", "0.05"])
    branch.main([str(runs / "plain"), str(tmp_path / "sam"), "--sam", "0.05"])
    with pytest.raises(SystemExit, match="already holds a run"):
        branch.main([str(runs / "plain"), str(tmp_path / "sam"), "--sam", "0.05"])
    with pytest.raises(SystemExit, match="already trains with SAM"):
        branch.main([str(tmp_path / "sam"), str(tmp_path / "again"), "--sam", "0.05"])
    with pytest.raises(SystemExit):
        branch.main([str(runs / "plain"), str(tmp_path / "zero"), "--sam", "0"])


def test_branch_with_another_order_continues_apart_and_soups(runs, tmp_path, capsys):
    """A branch with its own --order-seed starts from the source's exact training state, takes other
    batches from there (so it ends elsewhere than the unbranched run, after as many steps), and a
    soup of the two is the mean of their weights."""
    import keras

    from training import soup

    common = COMMON + ["--data", str(runs / "ms")]
    branch.main([str(runs / "plain"), str(tmp_path / "other"), "--order-seed", "2"])
    assert "order seed 2" in capsys.readouterr().out
    config = json.loads((tmp_path / "other" / "config.json").read_text())
    assert config["order_seed"] == 2 and config["seed"] == 1 and config["sam"] == 0  # plain steps, as the source's
    assert (tmp_path / "other" / "last.keras").read_bytes() == (runs / "plain" / "last.keras").read_bytes()
    with pytest.raises(SystemExit, match="already draws its batches from seed 2"):
        branch.main([str(tmp_path / "other"), str(tmp_path / "same"), "--order-seed", "2"])

    train.main(common + ["--out", str(tmp_path / "other"), "--resume"])
    whole = keras.saving.load_model(runs / "whole" / "last.keras")
    other = keras.saving.load_model(tmp_path / "other" / "last.keras")
    assert int(other.optimizer.iterations.numpy()) == int(whole.optimizer.iterations.numpy())
    moved = [np.abs(np.asarray(a) - np.asarray(b)).max() for a, b in zip(whole.trainable_weights, other.trainable_weights)]
    assert max(moved) > 1e-4  # other batches after the branch point

    members = [runs / "whole" / "model.keras", tmp_path / "other" / "model.keras"]
    soup.main([*map(str, members), "--out", str(tmp_path / "soup"), "--data", str(runs / "ms")])
    assert "soup of 2" in capsys.readouterr().out
    from training.models import load_model, unwrap
    a, b = (unwrap(load_model(m)) for m in members)
    mixed = unwrap(load_model(tmp_path / "soup" / "model.keras"))
    for wa, wb, wm in zip(a.get_weights(), b.get_weights(), mixed.get_weights()):
        np.testing.assert_allclose(wm, (wa + wb) / 2, rtol=1e-5, atol=1e-6)
    made = (tmp_path / "soup" / "command.txt").read_text().strip().splitlines()
    assert made[0].startswith("python -m training.train") and made[-1].startswith("python -m training.soup")
    assert any(line.startswith("python -m training.branch") for line in made)

    soup.main([*map(str, members), "--select", "greedy", "--out", str(tmp_path / "greedy"), "--data", str(runs / "ms")])
    assert "greedy: +" in capsys.readouterr().out and (tmp_path / "greedy" / "model.keras").is_file()

    # --recompute-bn: the learnt weights stay the mean; the batch-norm statistics are measured anew
    soup.main([*map(str, members), "--recompute-bn", "--out", str(tmp_path / "bn"), "--data", str(runs / "ms")])
    remeasured = unwrap(load_model(tmp_path / "bn" / "model.keras"))
    for wa, wb, wm in zip(a.trainable_weights, b.trainable_weights, remeasured.trainable_weights):
        np.testing.assert_allclose(np.asarray(wm), (np.asarray(wa) + np.asarray(wb)) / 2, rtol=1e-5, atol=1e-6)
    stats = [(np.asarray(x), np.asarray(y), np.asarray(z)) for x, y, z in
             zip(a.non_trainable_weights, b.non_trainable_weights, remeasured.non_trainable_weights) if "moving" in x.path]
    assert stats and max(np.abs(z - (x + y) / 2).max() for x, y, z in stats) > 1e-3


def test_soup_refuses_what_it_cannot_average(tiny_ferplus, tmp_path):  # noqa: F811
    from training import soup
    from training.models import create_model

    with pytest.raises(SystemExit):
        soup.main([str(tmp_path / "a.keras"), "--out", str(tmp_path / "soup")])  # one member is no soup
    with pytest.raises(SystemExit, match="not found"):
        soup.main([str(tmp_path / "a.keras"), str(tmp_path / "b.keras"), "--out", str(tmp_path / "soup")])
    create_model("pagenet").save(tmp_path / "a.keras")
    create_model("pagenet", width=8).save(tmp_path / "b.keras")
    with pytest.raises(SystemExit, match="not the architecture"):
        soup.main([str(tmp_path / "a.keras"), str(tmp_path / "b.keras"), "--out", str(tmp_path / "soup"),
                   "--data", str(tiny_ferplus)])
    assert not (tmp_path / "soup").exists()


def test_branch_with_other_targets_trains_towards_them(runs, tmp_path, capsys):
    """--targets: a consistently distilled run branched onto another teacher's answers on the same
    copies resumes towards those answers (not its own), and refuses answers on other copies."""
    # another teacher's answers on the same copies: here the classes' order reversed
    (tmp_path / "b").mkdir()
    theirs = np.load(runs / "plain" / "teacher.npy")[:, ::-1].copy()
    np.save(tmp_path / "b" / "teacher.npy", theirs)
    (tmp_path / "b" / "teacher.json").write_bytes((runs / "plain" / "teacher.json").read_bytes())

    branch.main([str(runs / "plain"), str(tmp_path / "swap"), "--targets", str(tmp_path / "b" / "teacher.npy")])
    assert "targets" in capsys.readouterr().out
    config = json.loads((tmp_path / "swap" / "config.json").read_text())
    assert config["teacher"] == [str(tmp_path / "b" / "teacher.npy")] and config["targets_from_epoch"] == 1
    assert (tmp_path / "swap" / "last.keras").read_bytes() == (runs / "plain" / "last.keras").read_bytes()

    train.main(COMMON + ["--data", str(runs / "ms"), "--out", str(tmp_path / "swap"), "--resume"])
    # the same batches as the uninterrupted run, other targets: other weights
    assert largest_weight_change(runs / "whole", tmp_path / "swap") > 1e-5
    assert np.load(tmp_path / "swap" / "teacher.npy").tobytes() == theirs.tobytes()  # the resume kept the swapped answers

    with pytest.raises(SystemExit, match="own targets"):
        branch.main([str(runs / "plain"), str(tmp_path / "same"), "--targets", str(runs / "plain" / "teacher.npy")])
    (tmp_path / "b" / "teacher.json").write_text(json.dumps({"fingerprint": "other"}))
    with pytest.raises(SystemExit, match="not a teacher.npy answering on"):
        branch.main([str(runs / "plain"), str(tmp_path / "other"), "--targets", str(tmp_path / "b" / "teacher.npy")])
    with pytest.raises(SystemExit, match="not distilled on augmented copies"):
        branch.main([str(runs / "teacher"), str(tmp_path / "plain"), "--targets", str(runs / "plain" / "teacher.npy")])


def test_rounding_per_channel_is_the_benchs():
    """training/quantise.py rounds a kernel exactly as bench/weight_bits.py measures it, to at most
    2**bits levels in each output channel."""
    import importlib.util

    from training.quantise import rounded_per_channel

    spec = importlib.util.spec_from_file_location("weight_bits", REPO / "bench" / "weight_bits.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    kernel = np.random.default_rng(0).normal(size=(3, 3, 8, 5)).astype("float32")
    kernel[..., 4] = 0.25  # a constant channel stays itself
    ours = np.asarray(rounded_per_channel(kernel, 3))
    np.testing.assert_allclose(ours, bench.rounded(kernel, 3, per_channel=True), rtol=1e-6, atol=1e-6)
    assert max(len(np.unique(ours[..., c])) for c in range(5)) == 8 and np.all(ours[..., 4] == 0.25)


def test_branch_with_rounded_kernels_trains_and_validates_rounded(runs, tmp_path, capsys):
    """--weight-bits: the branch resumes with steps taken at rounded kernels onto float ones, and its
    evaluation is the network's with the kernels rounded (what a bundle at that many bits scores)."""
    import keras

    from training.quantise import QuantisedKernelTrainer, kernels, rounded_per_channel

    branch.main([str(runs / "plain"), str(tmp_path / "q3"), "--weight-bits", "3"])
    assert "kernels at 3 bits" in capsys.readouterr().out
    assert json.loads((tmp_path / "q3" / "config.json").read_text())["weight_bits"] == 3
    with pytest.raises(SystemExit, match="already trains with its kernels at 3 bits"):
        branch.main([str(tmp_path / "q3"), str(tmp_path / "again"), "--weight-bits", "3"])
    with pytest.raises(SystemExit, match="choose one"):
        branch.main([str(runs / "plain"), str(tmp_path / "both"), "--weight-bits", "3", "--sam", "0.05"])

    train.main(COMMON + ["--data", str(runs / "ms"), "--out", str(tmp_path / "q3"), "--resume"])
    whole = keras.saving.load_model(runs / "whole" / "last.keras")
    q3 = keras.saving.load_model(tmp_path / "q3" / "last.keras")
    assert isinstance(q3, QuantisedKernelTrainer) and q3.bits == 3
    assert int(q3.optimizer.iterations.numpy()) == int(whole.optimizer.iterations.numpy())
    network = q3.layers[-1]
    floats = [np.asarray(w) for w in kernels(network)]
    assert max(len(np.unique(k[..., 0])) for k in floats) > 8  # the float kernels were kept, not the levels
    moved = [np.abs(np.asarray(a) - np.asarray(b)).max() for a, b in zip(whole.trainable_weights, q3.trainable_weights)]
    assert max(moved) > 1e-5  # steps taken at the rounded kernels land elsewhere

    x = np.random.default_rng(2).uniform(0, 255, size=(6, 48, 48, 1)).astype("float32")
    y = np.eye(8, dtype="float32")[np.arange(6)]
    loss = q3.evaluate(x, y, verbose=0, return_dict=True)["loss"]
    for w, k in zip(kernels(network), floats):
        np.testing.assert_array_equal(np.asarray(w), k)  # evaluation put the float kernels back
        w.assign(np.asarray(rounded_per_channel(k, 3)))
    expected = float(keras.losses.CategoricalCrossentropy()(y, network.predict(x, verbose=0)))
    assert loss == pytest.approx(expected, rel=1e-4)

    # released as validated: the kernels rounded for good
    from training import release
    from training.models import load_model
    release.main([str(tmp_path / "q3"), "--out", str(tmp_path / "rel"), "--data", str(runs / "ms")])
    assert "rounded the kernels to 3 bits" in capsys.readouterr().out
    released = [np.asarray(w) for w in kernels(load_model(tmp_path / "rel" / "model.keras"))]
    assert max(len(np.unique(k[..., c])) for k in released for c in range(k.shape[-1])) <= 8


def test_branch_with_mixup_trains_mixed_from_the_branch_on(runs, tmp_path, capsys):
    """A --mixup branch starts from the source's exact state and its resumed epochs mix faces: same
    batches and step count as the unbranched run, other weights at the end."""
    common = COMMON + ["--data", str(runs / "ms")]
    branch.main([str(runs / "plain"), str(tmp_path / "mixed"), "--mixup", "0.4"])
    assert "mixup alpha 0.4" in capsys.readouterr().out
    config = json.loads((tmp_path / "mixed" / "config.json").read_text())
    assert config["mixup"] == 0.4 and config.get("order_seed") is None and config["sam"] == 0
    assert (tmp_path / "mixed" / "last.keras").read_bytes() == (runs / "plain" / "last.keras").read_bytes()
    with pytest.raises(SystemExit, match="already trains with mixup"):
        branch.main([str(tmp_path / "mixed"), str(tmp_path / "again"), "--mixup", "0.2"])

    train.main(common + ["--out", str(tmp_path / "mixed"), "--resume"])
    assert json.loads((tmp_path / "mixed" / "config.json").read_text())["mixup"] == 0.4  # kept by the resume
    assert largest_weight_change(runs / "whole", tmp_path / "mixed") > 1e-4  # the same batches, mixed


def test_plain_share_shows_that_share_of_faces_plain_and_mirrored():
    """--plain-share P: that share of each epoch's faces is copy 0 (the plain face) or its mirror
    image, with the teachers' answer on copy 0; at 0 the batches are the copies as before."""
    rng = np.random.default_rng(3)
    faces, copies = 400, 4
    x = rng.integers(0, 256, (faces, copies, 48, 48, 1)).astype(np.uint8)
    crowd = rng.dirichlet(np.ones(8), faces).astype("float32")
    teacher = rng.dirichlet(np.ones(8), (faces, copies)).astype("float32")
    make = lambda share: train.ConsistentBatches(x, crowd, teacher, 0.5, faces, seed=5, plain_share=share)

    before = make(0.0)
    rows, picked = before.order, before.choice[before.order]
    face0, target0 = before[0]
    assert np.array_equal(face0, x[rows, picked].astype("float32"))
    assert np.allclose(target0, 0.5 * crowd[rows] + 0.5 * teacher[rows, picked])

    for share in (1.0, 0.5):
        batches = make(share)
        rows = batches.order
        got, target = batches[0]
        plain = np.all(got == x[rows, 0].astype("float32"), axis=(1, 2, 3))
        mirrored = np.all(got == x[rows, 0, :, ::-1].astype("float32"), axis=(1, 2, 3))
        shown_plain = batches.choice[rows] == 0
        assert np.array_equal(plain | mirrored, shown_plain) and np.array_equal(mirrored, batches.mirror[rows])
        assert np.allclose(target[shown_plain], 0.5 * crowd[rows][shown_plain] + 0.5 * teacher[rows, 0][shown_plain])
        share_plain = shown_plain.mean()
        assert abs(share_plain - (share + (1 - share) / copies)) < 0.08  # the drawn share, plus copy-0 draws
        assert abs(mirrored.mean() - share / 2) < 0.08  # half of the drawn ones mirrored
    batches.set_epoch(1)
    assert not np.array_equal(batches.mirror, make(0.5).mirror)  # drawn anew each epoch


def test_branch_with_plain_faces_eases_the_augmentation_off(runs, tmp_path, capsys):
    """A --plain-share branch starts from the source's exact state, keeps the share through a
    resume and trains on the plain faces (other weights than the unbranched run's, same steps)."""
    branch.main([str(runs / "plain"), str(tmp_path / "eased"), "--plain-share", "1"])
    assert "of the faces plain" in capsys.readouterr().out
    config = json.loads((tmp_path / "eased" / "config.json").read_text())
    assert config["plain_share"] == 1.0 and config["branched_at_epoch"] == 1
    assert (tmp_path / "eased" / "last.keras").read_bytes() == (runs / "plain" / "last.keras").read_bytes()
    with pytest.raises(SystemExit, match="already shows"):
        branch.main([str(tmp_path / "eased"), str(tmp_path / "again"), "--plain-share", "0.5"])
    with pytest.raises(SystemExit, match="not on copies"):
        branch.main([str(runs / "teacher"), str(tmp_path / "nocopies"), "--plain-share", "1"])
    with pytest.raises(SystemExit):
        branch.main([str(runs / "plain"), str(tmp_path / "toomuch"), "--plain-share", "1.5"])

    train.main(COMMON + ["--data", str(runs / "ms"), "--out", str(tmp_path / "eased"), "--resume"])
    assert json.loads((tmp_path / "eased" / "config.json").read_text())["plain_share"] == 1.0
    assert largest_weight_change(runs / "whole", tmp_path / "eased") > 1e-5
