"""Keras model -> TensorFlow.js graph model in web/model/, with a parity check.

    python export/convert.py                      # models/pagenet/model.keras -> web/model/, kernels uint8
    python export/convert.py --quantize float16   # twice the bytes, closer to Keras (also uint8, none)
    python export/convert.py --quantize kernels4  # half the bytes, for a network trained with --weight-bits 4

Path: Keras 3 `model.export()` (SavedModel) -> tensorflowjs converter (graph model),
because a Keras 3 model converted as a tfjs *layers* model does not load in tfjs 4.22.
Beside model.json it writes meta.json: what the page needs (classes, input size,
version, Test accuracy, the crop margin).

Parity: the bundle's own graph and (de-quantized) weights are loaded back into
TensorFlow and run on real FER+ Test images next to the Keras model; the top class
must agree on at least 99% of them. The browser runs the same check in
tests/test_browser.py.

Needs the `export` extra: tensorflowjs is installed without its dependencies
(they would pull a second TensorFlow and a broken ydf), and the converter modules it
imports but this path never uses are stubbed below.
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import sys
import tempfile
import types
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ferlive.classifier import model_version  # noqa: E402
from ferlive.crop import DEFAULT_MARGIN  # noqa: E402
from training.data import EMOTIONS, DataError, default_data_dir, load_ferplus  # noqa: E402

# "kernels": the convolution and dense matrices (nearly all the bytes) as uint8, the rest as float16.
# Biases and the prior correction's 8 numbers quantised to 256 levels moved probabilities by up to
# 0.040 for no saving worth having (pagenet: top-1 parity 99.2%, against 99.4% and 0.033 for "kernels").
QUANTIZE = {"float16": {"float16": True}, "uint8": {"uint8": True}, "none": None,
            "kernels": {"uint8": ["*/convolution/merged_input", "*probs*/Cast/ReadVariableOp",
                                  # depthwise-separable convolutions: the 3x3 depthwise and 1x1 pointwise kernels
                                  "*/separable_conv2d/ReadVariableOp", "*/separable_conv2d/merged_input"],
                        "float16": True}}
# "kernels4": the same, with the conv and dense kernels at 4 bits per value instead (export/kernels4.py).
CHOICES = sorted([*QUANTIZE, "kernels4"])


CONVERTER_INSTALL = "pip install --no-deps -r requirements-export.txt"


@functools.cache  # stubbing and importing the converter once is enough
def import_converter():
    import keras  # noqa: F401  (imported first: the stubs below must not shadow a real jax for Keras)
    import tensorflow  # noqa: F401

    stubs = ("tensorflow_decision_forests", "tensorflow_hub", "jax", "jax.experimental", "jax.experimental.jax2tf")
    saved = {n: sys.modules.get(n) for n in stubs}
    for name in stubs:
        sys.modules[name] = types.ModuleType(name)
    try:
        from tensorflowjs.converters import tf_saved_model_conversion_v2 as converter
        from tensorflowjs.read_weights import read_weights
    except ImportError as e:
        sys.exit(f"error: {e}. Install the TensorFlow.js converter (without its own dependencies, "
                 f"which break it): {CONVERTER_INSTALL}")
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    return converter, read_weights


def convert(model_path: Path, out: Path, quantize: str) -> dict:
    from export.kernels4 import pack_bundle
    from training.models import load_model
    from training.reparam import fuse

    converter, _ = import_converter()
    model = fuse(load_model(model_path))  # a network trained with RepVGG branches ships folded: the plain one
    with tempfile.TemporaryDirectory() as tmp:
        saved_model = Path(tmp) / "saved_model"
        model.export(saved_model, format="tf_saved_model", verbose=False)
        staging = Path(tmp) / "tfjs"
        converter.convert_tf_saved_model(
            str(saved_model), str(staging), signature_def="serving_default", saved_model_tags="serve",
            quantization_dtype_map=None if quantize == "kernels4" else QUANTIZE[quantize],
            weight_shard_size_bytes=4 * 1024 * 1024)
        if quantize == "kernels4":
            pack_bundle(staging, QUANTIZE["kernels"])
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(staging, out)
    return {"model": model}


def run_bundle(bundle: Path, images: np.ndarray) -> np.ndarray:
    """Run model.json's graph with its weights in TensorFlow (what tfjs executes)."""
    import tensorflow as tf
    from google.protobuf.json_format import ParseDict
    from tensorflow.core.framework import graph_pb2

    from export.kernels4 import unpack_bundle

    spec = json.loads((bundle / "model.json").read_text())
    graph_def = ParseDict(spec["modelTopology"], graph_pb2.GraphDef(), ignore_unknown_fields=True)
    weights = {w["name"]: w["data"] for w in unpack_bundle(bundle, spec)}  # float16 and 4-bit -> float32, as tfjs does
    for node in graph_def.node:
        if node.op == "Const" and node.name in weights:
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(weights[node.name]))
    (inp,) = spec["signature"]["inputs"].values()
    (outp,) = spec["signature"]["outputs"].values()
    run = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(graph_def, name=""), [])
    fn = run.prune(run.graph.get_tensor_by_name(inp["name"]), run.graph.get_tensor_by_name(outp["name"]))
    return np.concatenate([fn(tf.constant(images[i:i + 512])).numpy() for i in range(0, len(images), 512)])


def parity(model, bundle: Path, images: np.ndarray) -> dict:
    keras_probs = np.asarray(model.predict(images, batch_size=256, verbose=0))
    tfjs_probs = run_bundle(bundle, images)
    return {
        "images": int(len(images)),
        "top1_agreement": float((keras_probs.argmax(1) == tfjs_probs.argmax(1)).mean()),
        "max_abs_prob_diff": float(np.abs(keras_probs - tfjs_probs).max()),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=REPO / "models" / "pagenet" / "model.keras")
    ap.add_argument("--out", type=Path, default=REPO / "web" / "model")
    ap.add_argument("--quantize", choices=CHOICES, default="kernels")
    ap.add_argument("--data", type=Path, default=default_data_dir(), help="FER+ folder, for the parity check")
    ap.add_argument("--parity-images", type=int, default=1000, help="Test images for the parity check (0: skip)")
    ap.add_argument("--margin", type=float, default=DEFAULT_MARGIN, help="face-crop margin the page uses")
    args = ap.parse_args(argv)
    if not args.model.is_file():
        sys.exit(f"error: model file {args.model} not found")

    model = convert(args.model, args.out, args.quantize)["model"]
    metrics_file = args.model.parent / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    size = sum(f.stat().st_size for f in args.out.iterdir())
    meta = {
        "name": model.name,
        "version": model_version(args.model),
        "classes": list(EMOTIONS),
        "input": {"width": 48, "height": 48, "channels": 1, "values": "gray 0-255, normalised inside the model"},
        "crop_margin": args.margin,
        "quantization": args.quantize,
        "params": int(model.count_params()),
        "bundle_bytes": size,
        "test_accuracy": {p: metrics.get("test", {}).get(p, {}).get("accuracy") for p in ("ferplus_majority", "all_majority")},
    }
    if args.parity_images:
        try:
            test = load_ferplus(args.data)["test"]
        except DataError as e:
            sys.exit(f"error: parity check needs FER+ Test images: {e} (or pass --parity-images 0)")
        meta["parity"] = parity(model, args.out, test.images[: args.parity_images].astype(np.float32))
        print(f"parity on {meta['parity']['images']} Test images: top-1 agreement "
              f"{meta['parity']['top1_agreement']:.4f}, max |p_keras - p_tfjs| {meta['parity']['max_abs_prob_diff']:.2e}")
        if meta["parity"]["top1_agreement"] < 0.99:
            (args.out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
            sys.exit("error: the bundle disagrees with Keras on more than 1% of Test images")
    (args.out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {args.out} ({size / 1e6:.2f} MB, {args.quantize})")


if __name__ == "__main__":
    main()
