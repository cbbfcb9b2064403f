"""The "kernels4" bundle: convolution and dense kernels stored at 4 bits per value, half uint8's bytes.

TensorFlow.js quantises a weight with one minimum and scale per tensor, at 8 or 16 bits. A network
trained with `--weight-bits 4` (training/quantise.py) has its kernels on 16 evenly spaced levels
per *output channel*, and folding batch norm into them scales each channel, which keeps them there;
so each such kernel is stored here exactly as a level per value plus each channel's minimum and step.
A network trained in float loses accuracy this way: the export's parity check says how much.

Layout. model.json is the converter's graph with one extra weights group, kernels4-shard1of1.bin,
whose entries say `"quantization": {"dtype": "uint4", "axis": -1}`. For each entry in turn the
shard holds ceil(n / 2) bytes of levels in row-major order, two to a byte (the first value in the
low nibble), then the last axis's C minima and C steps as little-endian float32:
value = minimum[c] + level * step[c]. Every other weight is in the converter's usual groups.
tfjs cannot read the uint4 group itself: web/js/kernels4.js expands it to float32 and loads the
graph from memory; `unpack_bundle` does the same for the Python parity check.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

import numpy as np

BITS = 4
SHARD = "kernels4-shard1of1.bin"
# Plain convolution and dense kernels, as the converter names them (export/convert.py's "kernels").
# Depthwise kernels are left out: their output channels are not the last axis.
PACKED = ("*/convolution/merged_input", "*probs*/Cast/ReadVariableOp")


def is_packed(spec: dict) -> bool:
    return spec.get("quantization", {}).get("dtype") == "uint4"


def packs(name: str, value: np.ndarray) -> bool:
    return value.dtype == np.float32 and value.ndim in (2, 4) and any(fnmatch.fnmatch(name, p) for p in PACKED)


def pack(kernel: np.ndarray) -> bytes:
    """Rounds `kernel` to 16 levels per output channel (last axis) and packs it; see the layout above."""
    per_channel = kernel.reshape(-1, kernel.shape[-1]).astype(np.float64)
    lo, hi = per_channel.min(0), per_channel.max(0)
    step = np.where(hi > lo, (hi - lo) / (2 ** BITS - 1), 1.0)
    levels = np.round((per_channel - lo) / step).astype(np.uint8).reshape(-1)
    if levels.size % 2:
        levels = np.append(levels, np.uint8(0))
    nibbles = levels[0::2] | (levels[1::2] << 4)
    return nibbles.tobytes() + lo.astype("<f4").tobytes() + step.astype("<f4").tobytes()


def packed_size(shape) -> int:
    n = int(np.prod(shape))
    return (n + 1) // 2 + 8 * int(shape[-1])


def unpack(buffer: bytes, shape) -> np.ndarray:
    n, channels = int(np.prod(shape)), int(shape[-1])
    nibbles = np.frombuffer(buffer, np.uint8, count=(n + 1) // 2)
    levels = np.stack([nibbles & 15, nibbles >> 4], axis=1).reshape(-1)[:n].astype(np.float32)
    lo = np.frombuffer(buffer, "<f4", count=channels, offset=(n + 1) // 2)
    step = np.frombuffer(buffer, "<f4", count=channels, offset=(n + 1) // 2 + 4 * channels)
    return (lo + levels.reshape(-1, channels) * step).reshape(shape)


def pack_bundle(folder: Path, quantization_dtype_map: dict) -> None:
    """Rewrites a float32 bundle (`--quantize none`) in place: kernels at 4 bits, every other weight
    quantised by `quantization_dtype_map` as the converter would."""
    spec_file = folder / "model.json"
    spec = json.loads(spec_file.read_text())
    weights = unpack_bundle(folder, spec)  # imports the converter, so its writer imports cleanly
    from tensorflowjs.write_weights import write_weights

    kernels = [w for w in weights if packs(w["name"], w["data"])]
    if not kernels:  # checked before anything in the folder is touched
        raise ValueError("no convolution or dense kernel to pack at 4 bits: export with --quantize kernels")
    rest = [w for w in weights if not packs(w["name"], w["data"])]
    for group in spec["weightsManifest"]:
        for path in group["paths"]:
            (folder / path).unlink()
    manifest = write_weights([rest], str(folder), write_manifest=False, quantization_dtype_map=quantization_dtype_map)
    (folder / SHARD).write_bytes(b"".join(pack(w["data"]) for w in kernels))
    manifest.append({"paths": [SHARD], "weights": [
        {"name": w["name"], "shape": list(w["data"].shape), "dtype": "float32",
         "quantization": {"dtype": "uint4", "axis": -1}} for w in kernels]})
    spec["weightsManifest"] = manifest
    spec_file.write_text(json.dumps(spec))


def unpack_bundle(folder: Path, spec: dict | None = None) -> list[dict]:
    """Every weight of a bundle as {"name", "data"} in float32 (int32 where so stored), uint4 groups
    expanded here and the rest read by the converter's own reader."""
    from export.convert import import_converter

    _, read_weights = import_converter()
    spec = spec or json.loads((folder / "model.json").read_text())
    standard = [g for g in spec["weightsManifest"] if not any(is_packed(w) for w in g["weights"])]
    weights = []
    for group in read_weights(standard, str(folder)):
        for w in group:
            data = w["data"]
            weights.append({"name": w["name"], "data": data.astype(np.float32) if data.dtype.kind == "f" else data})
    for group in spec["weightsManifest"]:
        if group in standard:
            continue
        data = b"".join((folder / p).read_bytes() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            size = packed_size(w["shape"])
            weights.append({"name": w["name"], "data": unpack(data[offset:offset + size], w["shape"])})
            offset += size
    return weights
