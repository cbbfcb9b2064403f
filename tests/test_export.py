"""export/convert.py on the committed model: a graph-model bundle that agrees with Keras."""

import json
import math
import subprocess
import sys

from export.convert import main as convert  # in-process where the command line itself is not under test
from tests.conftest import PAGE_MODEL, REPO


def test_convert_reproduces_the_committed_bundle_with_parity(tmp_path, ferplus_dir):
    committed = REPO / "web" / "model"
    quantization = json.loads((committed / "meta.json").read_text())["quantization"]
    out = tmp_path / "model"
    r = subprocess.run([sys.executable, "export/convert.py", "--model", str(PAGE_MODEL), "--out", str(out),
                        "--quantize", quantization, "--parity-images", "300", "--data", str(ferplus_dir)],
                       cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    spec = json.loads((out / "model.json").read_text())
    assert spec["format"] == "graph-model"
    floats = [w for group in spec["weightsManifest"] for w in group["weights"] if w["dtype"] == "float32"]
    dtypes = {w["quantization"]["dtype"] for w in floats}  # int32 shape constants stay as they are
    kernels = [w for w in floats if len(w["shape"]) >= 2 and w["shape"][-1] > 1]
    kernel_dtype = {"kernels": "uint8", "kernels4": "uint4"}[quantization]  # the page ships one of these two
    assert dtypes == {kernel_dtype, "float16"} and all(w["quantization"]["dtype"] == kernel_dtype for w in kernels)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["classes"][0] == "neutral" and meta["input"]["width"] == 48
    assert meta["parity"]["images"] == 300 and meta["parity"]["top1_agreement"] >= 0.99
    assert "parity on 300 Test images" in r.stdout
    assert [f.read_bytes() for f in sorted(out.glob("*.bin"))] == [f.read_bytes() for f in sorted(committed.glob("*.bin"))]


def test_missing_model_is_a_clear_error(tmp_path):
    r = subprocess.run([sys.executable, "export/convert.py", "--model", str(tmp_path / "none.keras")],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "not found" in r.stderr


def test_separable_kernels_are_quantised_like_the_others(tmp_path):
    # The converter names a separable layer's kernels apart from a plain convolution's; left out of
    # the "kernels" rule they would ship as float16, twice the bytes.
    from training.models import create_model

    model = create_model("pagenet", channels=(8, 16, 32, 64), convs=(2, 1, 1, 1), separable=True)
    model.save(tmp_path / "separable.keras")
    convert(["--model", str(tmp_path / "separable.keras"), "--out", str(tmp_path / "bundle"), "--parity-images", "0"])
    spec = json.loads((tmp_path / "bundle" / "model.json").read_text())
    separable = [w for group in spec["weightsManifest"] for w in group["weights"] if "separable_conv2d" in w["name"]]
    assert len(separable) == 2 * 4  # depthwise and pointwise kernels of the four separable convolutions
    assert all(w["quantization"]["dtype"] == "uint8" for w in separable)


def test_rep_branches_export_as_the_plain_network(tmp_path):
    # A network trained with RepVGG branches is exported folded: the plain network's weights, no extra paths.
    from training.models import create_model

    shape = dict(channels=(8, 16, 32, 64), convs=(2, 1, 1, 1))
    create_model("pagenet", rep_branches=True, **shape).save(tmp_path / "rep.keras")
    create_model("pagenet", **shape).save(tmp_path / "plain.keras")
    sizes = {}
    for name in ("rep", "plain"):
        convert(["--model", str(tmp_path / f"{name}.keras"), "--out", str(tmp_path / name), "--parity-images", "0"])
        spec = json.loads((tmp_path / name / "model.json").read_text())
        sizes[name] = sum(math.prod(w["shape"]) for group in spec["weightsManifest"] for w in group["weights"])
        assert not any("rep" in w["name"] for group in spec["weightsManifest"] for w in group["weights"])
    assert sizes["rep"] == sizes["plain"]


def test_kernels4_bundle_runs_the_network_with_kernels_at_4_bits(kernels4_bundle, ferplus_dir):
    """--quantize kernels4 stores each conv and dense kernel as 16 levels per output channel: the
    bundle is the network with its kernels so rounded (training/quantise.py), in fewer bytes."""
    import numpy as np

    from export.convert import run_bundle
    from export.kernels4 import is_packed, packed_size
    from training.data import load_ferplus
    from training.models import load_model
    from training.quantise import kernels, round_kernels
    from training.reparam import fuse

    spec = json.loads((kernels4_bundle / "model.json").read_text())
    packed = [w for group in spec["weightsManifest"] for w in group["weights"] if is_packed(w)]
    model = fuse(load_model(PAGE_MODEL))
    assert len(packed) == len(kernels(model)) == 11  # the page network's 10 convolutions and its dense layer
    assert not any(w.get("quantization", {}).get("dtype") == "uint8" for g in spec["weightsManifest"] for w in g["weights"])
    shard = (kernels4_bundle / "kernels4-shard1of1.bin").stat().st_size
    assert shard == sum(packed_size(w["shape"]) for w in packed)
    assert shard < 0.55 * sum(math.prod(w["shape"]) for w in packed)  # half of uint8's bytes, plus two floats a channel
    assert json.loads((kernels4_bundle / "meta.json").read_text())["quantization"] == "kernels4"

    images = load_ferplus(ferplus_dir)["test"].images[:300].astype("float32")
    float_probs = model.predict(images, verbose=0)
    round_kernels(model, 4)
    rounded_probs = model.predict(images, verbose=0)
    bundle_probs = run_bundle(kernels4_bundle, images)
    print(f"kernels4 bundle against Keras: max |dp| {np.abs(bundle_probs - rounded_probs).max():.1e} with the "
          f"kernels rounded to 4 bits, {np.abs(bundle_probs - float_probs).max():.1e} without")
    assert np.abs(bundle_probs - rounded_probs).max() < 0.01  # float16 biases are all that separate the two
