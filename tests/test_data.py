"""FER+ loading from both layouts, the upstream quirks, bad folders, the cache."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from training import data as fer
from training.data import DataError, load_ferplus

HEADER = ["Usage", "Image name", *fer.VOTE_COLUMNS]


def make_fixture(root, rng=None, per_split=3):
    """A miniature FER+ in Microsoft's layout: 2 x per_split training rows, per_split each
    for Valid and Test; row 2 has no image, rows 4 and 5 share one name (upstream quirks)."""
    rng = rng or np.random.default_rng(0)
    usages = ["Training"] * 2 * per_split + ["PublicTest"] * per_split + ["PrivateTest"] * per_split
    pixels = rng.integers(0, 256, (len(usages), 48, 48), dtype=np.uint8)
    votes = rng.multinomial(3, [0.1] * 8 + [0.1, 0.1], size=len(usages))
    votes[np.arange(len(usages)), rng.integers(0, 8, len(usages))] += 7  # mostly clear majorities
    names = [f"fer{i:07d}.png" for i in range(len(usages))]
    names[2] = ""                 # upstream: a non-face row without an image
    names[5] = names[4]           # upstream: two rows written to one PNG
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "fer2013new.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        for u, n, v in zip(usages, names, votes):
            w.writerow([u, n, *v])
    for u, n, p in zip(usages, names, pixels):
        if n:
            folder = root / fer.FOLDERS[u]
            folder.mkdir(exist_ok=True)
            Image.fromarray(p).save(folder / n)
    for folder in fer.FOLDERS.values():
        (root / folder).mkdir(exist_ok=True)
    return usages, names, pixels, votes


def write_kaggle(root, usages, pixels):
    with open(root / "fer2013.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["emotion", "pixels", "Usage"])
        for u, p in zip(usages, pixels):
            w.writerow([0, " ".join(map(str, p.ravel())), u])


@pytest.fixture
def fixture_dirs(tmp_path):
    ms, kg = tmp_path / "microsoft", tmp_path / "kaggle"
    usages, names, pixels, votes = make_fixture(ms)
    kg.mkdir()
    (kg / "fer2013new.csv").write_bytes((ms / "fer2013new.csv").read_bytes())
    # Kaggle rows keep their own pixels: the PNG of the duplicated name holds the later row,
    # so both loaders can only agree if duplicated rows are dropped.
    write_kaggle(kg, usages, pixels)
    return ms, kg, (usages, names, pixels, votes)


def test_both_layouts_give_the_same_arrays(fixture_dirs, tmp_path):
    ms, kg, (usages, names, pixels, votes) = fixture_dirs
    a = load_ferplus(ms, cache_dir=tmp_path / "cache")
    b = load_ferplus(kg, cache_dir=tmp_path / "cache")
    for split in fer.SPLITS:
        np.testing.assert_array_equal(a[split].images, b[split].images)
        np.testing.assert_array_equal(a[split].votes, b[split].votes)
        np.testing.assert_array_equal(a[split].names, b[split].names)
    # 6 training rows - 1 without a name - 2 sharing one name
    assert len(a["train"]) == 3 and len(a["valid"]) == 3 and len(a["test"]) == 3
    assert names[4] not in a["train"].names
    np.testing.assert_array_equal(a["valid"].images[0, ..., 0], pixels[6])
    np.testing.assert_array_equal(a["train"].images[2, ..., 0], pixels[3])
    np.testing.assert_array_equal(a["test"].votes[-1], votes[-1])
    assert a["train"].images.dtype == np.uint8 and a["train"].images.shape[1:] == (48, 48, 1)


def test_second_load_comes_from_the_cache(fixture_dirs, tmp_path, monkeypatch):
    ms, _, _ = fixture_dirs
    first = load_ferplus(ms, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    monkeypatch.setattr(fer, "_read_microsoft", lambda *a: pytest.fail("decoded again despite the cache"))
    second = load_ferplus(ms, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(first["train"].images, second["train"].images)


def test_the_cache_file_alone_is_the_dataset(fixture_dirs, tmp_path):
    """A machine without the folder (an accelerator) trains from the one .npz file."""
    ms, _, _ = fixture_dirs
    first = load_ferplus(ms, cache_dir=tmp_path / "cache")
    [cache] = (tmp_path / "cache").glob("*.npz")
    moved = cache.rename(tmp_path / "ferplus.npz")
    again = load_ferplus(moved)
    for split in ("train", "valid", "test"):
        np.testing.assert_array_equal(first[split].images, again[split].images)
        np.testing.assert_array_equal(first[split].votes, again[split].votes)
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(DataError, match="not a FER\\+ cache file"):
        load_ferplus(tmp_path / "other.npz")


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_ferplus(tmp_path / "nowhere", cache_dir=tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no FER\\+ data"):
        load_ferplus(tmp_path / "empty", cache_dir=tmp_path)


def test_missing_png_is_a_clear_error(fixture_dirs, tmp_path):
    ms, _, (_, names, _, _) = fixture_dirs
    (ms / "FER2013Valid" / names[7]).unlink()
    with pytest.raises(DataError, match=f"missing image .*{names[7]}"):
        load_ferplus(ms, cache_dir=tmp_path / "c2")


def test_missing_split_folder_is_a_clear_error(fixture_dirs, tmp_path):
    ms, _, _ = fixture_dirs
    for f in (ms / "FER2013Test").iterdir():
        f.unlink()
    (ms / "FER2013Test").rmdir()
    with pytest.raises(DataError, match="FER2013Test not found"):
        load_ferplus(ms, cache_dir=tmp_path / "c3")


@pytest.mark.parametrize("bad_row, message", [
    (["Training", "fer0000001.png", "1", "2"], "expected 12 columns"),
    (["Training", "fer0000001.png", *["x"] * 10], "must be integers"),
    (["Somewhere", "fer0000001.png", *["1"] * 10], "Usage 'Somewhere'"),
])
def test_malformed_csv_row_names_the_line(fixture_dirs, tmp_path, bad_row, message):
    ms, _, _ = fixture_dirs
    lines = (ms / "fer2013new.csv").read_text().splitlines()
    lines[3] = ",".join(bad_row)
    (ms / "fer2013new.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=f"file line 4.*{message}|{message}"):
        load_ferplus(ms, cache_dir=tmp_path / "c4")


def test_kaggle_file_with_bad_pixels_is_a_clear_error(fixture_dirs, tmp_path):
    _, kg, _ = fixture_dirs
    lines = (kg / "fer2013.csv").read_text().splitlines()
    lines[1] = "0,1 2 3,Training"
    (kg / "fer2013.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="2304 gray values"):
        load_ferplus(kg, cache_dir=tmp_path / "c5")


def test_real_ferplus_split_sizes(ferplus_dir, tmp_path):
    splits = load_ferplus(ferplus_dir)
    assert (len(splits["train"]), len(splits["valid"]), len(splits["test"])) == (28555, 3579, 3572)
    # The published protocol's Test size with the fer2013new.csv votes (../shared/data/README.md)
    assert fer.protocol_mask(splits["test"].votes, "ferplus_majority").sum() == 3152
    assert fer.protocol_mask(splits["test"].votes, "all_majority").sum() == 3545
