"""export/convert.py on the committed model: a graph-model bundle that agrees with Keras."""

import json
import math
import subprocess
import sys

from tests.conftest import PAGE_MODEL, REPO


def test_convert_reproduces_the_committed_bundle_with_parity(tmp_path, ferplus_dir):
    out = tmp_path / "model"
    r = subprocess.run([sys.executable, "export/convert.py", "--model", str(PAGE_MODEL), "--out", str(out),
                        "--parity-images", "300", "--data", str(ferplus_dir)],
                       cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    spec = json.loads((out / "model.json").read_text())
    assert spec["format"] == "graph-model"
    floats = [w for group in spec["weightsManifest"] for w in group["weights"] if w["dtype"] == "float32"]
    dtypes = {w["quantization"]["dtype"] for w in floats}  # int32 shape constants stay as they are
    kernels = [w for w in floats if len(w["shape"]) >= 2 and w["shape"][-1] > 1]
    assert dtypes == {"uint8", "float16"} and all(w["quantization"]["dtype"] == "uint8" for w in kernels)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["classes"][0] == "neutral" and meta["input"]["width"] == 48
    assert meta["parity"]["images"] == 300 and meta["parity"]["top1_agreement"] >= 0.99
    assert "parity on 300 Test images" in r.stdout
    committed = REPO / "web" / "model"
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
    r = subprocess.run([sys.executable, "export/convert.py", "--model", str(tmp_path / "separable.keras"),
                        "--out", str(tmp_path / "bundle"), "--parity-images", "0"],
                       cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
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
        r = subprocess.run([sys.executable, "export/convert.py", "--model", str(tmp_path / f"{name}.keras"),
                            "--out", str(tmp_path / name), "--parity-images", "0"],
                           cwd=REPO, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
        spec = json.loads((tmp_path / name / "model.json").read_text())
        sizes[name] = sum(math.prod(w["shape"]) for group in spec["weightsManifest"] for w in group["weights"])
        assert not any("rep" in w["name"] for group in spec["weightsManifest"] for w in group["weights"])
    assert sizes["rep"] == sizes["plain"]
