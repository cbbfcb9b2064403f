"""FER+ data: decode the images, cache them, turn crowd votes into labels.

Two on-disk layouts hold the same 35,887 rows of FER2013 with Microsoft's FER+ votes:

* Microsoft's layout (what `generate_training_data.py` in microsoft/FERPlus writes):
  `fer2013new.csv` plus `FER2013Train|Valid|Test/` folders of 48x48 PNGs.
* Kaggle's layout: `fer2013.csv` (pixels as text) plus `fer2013new.csv`, row-aligned.

Votes always come from `fer2013new.csv` (the 2017 release); the older votes in the
per-folder `label.csv` files are ignored. Rows with no image name (non-faces) are
skipped, and rows whose image name occurs twice are dropped: upstream wrote two rows to
one PNG, so we cannot tell which row's votes belong to the pixels on disk.

Evaluation protocols (see ../shared/data/README.md):

* `ferplus_majority`: Barsoum et al. 2016 (`src/ferplus.py`): zero every count of 1,
  keep the image if its top count is more than half of the (cleaned) sum of all ten
  columns and is one of the 8 emotions.
* `all_majority`: keep every image whose top raw count is an emotion (ties go to the
  first column).
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

EMOTIONS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
VOTE_COLUMNS = EMOTIONS + ("unknown", "NF")
SPLITS = {"train": "Training", "valid": "PublicTest", "test": "PrivateTest"}
FOLDERS = {"Training": "FER2013Train", "PublicTest": "FER2013Valid", "PrivateTest": "FER2013Test"}
IMAGE_SIZE = 48
LABEL_MODES = ("majority", "soft")
PROTOCOLS = ("ferplus_majority", "all_majority")
CACHE_VERSION = 1


class DataError(RuntimeError):
    """The data folder is missing or malformed; the message says what to fix."""


@dataclass
class Split:
    """One split of FER+: uint8 images (N, 48, 48, 1), raw votes (N, 10), image names."""

    images: np.ndarray
    votes: np.ndarray
    names: np.ndarray

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, keep: np.ndarray) -> "Split":
        return Split(self.images[keep], self.votes[keep], self.names[keep])


# ---------------------------------------------------------------- votes -> labels


def clean_votes(votes: np.ndarray) -> np.ndarray:
    """Barsoum's outlier removal: a count of 1 is one tagger's noise, so it becomes 0."""
    votes = np.asarray(votes, dtype=np.float32)
    return np.where(votes <= 1, 0, votes)


def protocol_mask(votes: np.ndarray, protocol: str) -> np.ndarray:
    """Which rows an evaluation protocol keeps."""
    votes = np.asarray(votes, dtype=np.float32)
    if protocol == "ferplus_majority":
        clean = clean_votes(votes)
        top = clean.argmax(axis=1)
        return (clean.max(axis=1) > 0.5 * clean.sum(axis=1)) & (top < len(EMOTIONS))
    if protocol == "all_majority":
        return votes.argmax(axis=1) < len(EMOTIONS)
    raise ValueError(f"unknown protocol {protocol!r}; choose one of {PROTOCOLS}")


def protocol_labels(votes: np.ndarray, protocol: str) -> tuple[np.ndarray, np.ndarray]:
    """(mask, class index of each kept row) under an evaluation protocol."""
    mask = protocol_mask(votes, protocol)
    source = clean_votes(votes) if protocol == "ferplus_majority" else np.asarray(votes)
    return mask, source[mask].argmax(axis=1)


def training_targets(votes: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """(mask, targets (n, 8)) for training.

    `majority`: one-hot of the FER+ majority protocol, on the rows it keeps.
    `soft`: the vote distribution over the 8 emotions after outlier removal, on rows whose
    cleaned top vote is an emotion (unknown / not-a-face rows teach nothing about emotion).
    """
    if mode == "majority":
        mask, labels = protocol_labels(votes, "ferplus_majority")
        return mask, np.eye(len(EMOTIONS), dtype=np.float32)[labels]
    if mode == "soft":
        clean = clean_votes(votes)
        emotion = clean[:, : len(EMOTIONS)]
        mask = (clean.argmax(axis=1) < len(EMOTIONS)) & (emotion.sum(axis=1) > 0)
        kept = emotion[mask]
        return mask, kept / kept.sum(axis=1, keepdims=True)
    raise ValueError(f"unknown label mode {mode!r}; choose one of {LABEL_MODES}")


# ---------------------------------------------------------------- reading the files


@dataclass
class _Row:
    usage: str
    name: str
    votes: list[int]
    line: int  # 0-based data row, the row index into fer2013.csv as well


def _read_ferplus_csv(path: Path) -> list[_Row | None]:
    """Rows of fer2013new.csv, one entry per data row; None for rows without an image."""
    if not path.is_file():
        raise DataError(f"{path} not found: FER+ needs Microsoft's fer2013new.csv there")
    rows: list[_Row | None] = []
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[2:12]] != list(VOTE_COLUMNS):
            raise DataError(f"{path}: header should be Usage, Image name, {', '.join(VOTE_COLUMNS)}; got {header}")
        for line, row in enumerate(reader):
            where = f"{path}, data row {line + 1} (file line {line + 2})"
            if len(row) != 12:
                raise DataError(f"{where}: expected 12 columns, got {len(row)}: {row}")
            usage, name = row[0].strip(), row[1].strip()
            if usage not in FOLDERS:
                raise DataError(f"{where}: Usage {usage!r} is not one of {list(FOLDERS)}")
            if not name:
                rows.append(None)
                continue
            try:
                votes = [int(v) for v in row[2:]]
            except ValueError:
                raise DataError(f"{where}: vote counts must be integers: {row[2:]}") from None
            rows.append(_Row(usage, name, votes, line))
    return rows


def _drop_duplicate_names(rows: list[_Row | None]) -> list[_Row]:
    named = [r for r in rows if r is not None]
    counts: dict[str, int] = {}
    for r in named:
        counts[r.name] = counts.get(r.name, 0) + 1
    dupes = sorted(n for n, c in counts.items() if c > 1)
    if dupes:
        log.warning("dropping %d rows that share an image name with another row: %s",
                    sum(counts[n] for n in dupes), ", ".join(dupes))
    return [r for r in named if counts[r.name] == 1]


def _decode_png(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise DataError(f"missing image {path} (listed in fer2013new.csv)")
    try:
        with Image.open(path) as im:
            pixels = np.asarray(im.convert("L"))
    except (UnidentifiedImageError, OSError) as e:
        raise DataError(f"cannot decode {path}: {e}") from None
    if pixels.shape != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(f"{path} is {pixels.shape[1]}x{pixels.shape[0]}, expected 48x48")
    return pixels


def _decode_kaggle_pixels(text: str, where: str) -> np.ndarray:
    try:
        pixels = np.array(text.split(), dtype=np.int32)
    except ValueError:
        raise DataError(f"{where}: pixels must be space-separated integers") from None
    if pixels.size != IMAGE_SIZE * IMAGE_SIZE or pixels.min() < 0 or pixels.max() > 255:
        raise DataError(f"{where}: expected 2304 gray values 0-255, got {pixels.size}")
    return pixels.astype(np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE)


def _read_microsoft(root: Path, rows: list[_Row]) -> dict[str, Split]:
    images = [_decode_png(root / FOLDERS[r.usage] / r.name) for r in rows]
    return _group(rows, images)


def _read_kaggle(root: Path, rows: list[_Row]) -> dict[str, Split]:
    path = root / "fer2013.csv"
    by_line = {r.line: r for r in rows}
    images: dict[int, np.ndarray] = {}
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        if "pixels" not in header or "Usage" not in header:
            raise DataError(f"{path}: header should have emotion, pixels, Usage; got {header}")
        px, us = header.index("pixels"), header.index("Usage")
        for line, row in enumerate(reader):
            if line not in by_line:
                continue
            where = f"{path}, data row {line + 1}"
            if len(row) != len(header):
                raise DataError(f"{where}: expected {len(header)} columns, got {len(row)}")
            if row[us].strip() != by_line[line].usage:
                raise DataError(f"{where}: Usage {row[us]!r} differs from fer2013new.csv "
                                f"({by_line[line].usage!r}); the two files must be row-aligned")
            images[line] = _decode_kaggle_pixels(row[px], where)
    missing = [r.line for r in rows if r.line not in images]
    if missing:
        raise DataError(f"{path} has {len(missing)} fewer rows than fer2013new.csv "
                        f"(first missing data row {missing[0] + 1})")
    return _group(rows, [images[r.line] for r in rows])


def _group(rows: list[_Row], images: list[np.ndarray]) -> dict[str, Split]:
    out = {}
    for split, usage in SPLITS.items():
        idx = [i for i, r in enumerate(rows) if r.usage == usage]
        out[split] = Split(
            images=np.stack([images[i] for i in idx])[..., None] if idx
            else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE, 1), np.uint8),
            votes=np.array([rows[i].votes for i in idx], dtype=np.int16).reshape(-1, 10),
            names=np.array([rows[i].name for i in idx]),
        )
    return out


# ---------------------------------------------------------------- the public entry point


def detect_layout(root: Path) -> str:
    if any((root / folder).is_dir() for folder in FOLDERS.values()):
        for folder in FOLDERS.values():
            if not (root / folder).is_dir():
                raise DataError(f"{root / folder} not found: Microsoft's layout has FER2013Train, "
                                "FER2013Valid and FER2013Test folders beside fer2013new.csv")
        return "microsoft"
    if (root / "fer2013.csv").is_file():
        return "kaggle"
    raise DataError(
        f"no FER+ data in {root}: expected fer2013new.csv with either the FER2013Train/Valid/Test "
        "PNG folders (Microsoft's layout) or Kaggle's fer2013.csv beside it")


def default_cache_dir() -> Path:
    return Path(os.environ.get("FERPLUS_CACHE", Path.home() / ".cache" / "fer-live"))


def _cache_key(root: Path, layout: str) -> str:
    """Changes whenever a source file changes, so a stale cache is never read."""
    files = [root / "fer2013new.csv", root / "fer2013.csv"] if layout == "kaggle" else \
        [root / "fer2013new.csv"] + [root / f for f in FOLDERS.values()]
    h = hashlib.sha1(f"v{CACHE_VERSION} {layout} {root.resolve()}".encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.name} {st.st_size} {st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def load_ferplus(root: str | os.PathLike, cache_dir: str | os.PathLike | None = None,
                 use_cache: bool = True) -> dict[str, Split]:
    """All three splits, {'train', 'valid', 'test'}, from either layout; cached as .npz.
    `root` may also be such a cache file itself: one file that carries the whole dataset to a
    machine without the folder (an accelerator, say)."""
    root = Path(root)
    if root.suffix == ".npz" and root.is_file():
        return _read_cache(root)
    if not root.is_dir():
        raise DataError(f"FER+ data folder {root} does not exist (pass --data or set FERPLUS_DATA)")
    layout = detect_layout(root)
    cache = Path(cache_dir or default_cache_dir()) / f"ferplus-{layout}-{_cache_key(root, layout)}.npz"
    if use_cache and cache.is_file():
        return _read_cache(cache)

    rows = _drop_duplicate_names(_read_ferplus_csv(root / "fer2013new.csv"))
    splits = _read_microsoft(root, rows) if layout == "microsoft" else _read_kaggle(root, rows)
    if use_cache:
        save_cache(splits, cache)
    return splits


def save_cache(splits: dict[str, Split], path: Path, compressed: bool = False):
    """The splits as one .npz that load_ferplus reads back (also given as --data itself)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    (np.savez_compressed if compressed else np.savez)(
        tmp, **{f"{s}_{k}": getattr(v, k) for s, v in splits.items() for k in ("images", "votes", "names")})
    tmp.replace(path)  # atomic: a killed run never leaves half a cache behind


def _read_cache(path: Path) -> dict[str, Split]:
    with np.load(path, allow_pickle=False) as z:
        missing = [f"{s}_{k}" for s in SPLITS for k in ("images", "votes", "names") if f"{s}_{k}" not in z.files]
        if missing:
            raise DataError(f"{path} is not a FER+ cache file (no {', '.join(missing[:3])})")
        return {s: Split(z[f"{s}_images"], z[f"{s}_votes"], z[f"{s}_names"]) for s in SPLITS}


def default_data_dir() -> Path:
    """FERPLUS_DATA, else ../shared/data/ferplus beside the repository."""
    env = os.environ.get("FERPLUS_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data" / "ferplus"
