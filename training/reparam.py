"""Fold a pagenet trained with RepVGG branches (`training.train --rep-branches`) into the plain
pagenet: the same outputs from one 3x3 convolution per block, so the page, the export and the API
see the ordinary network (same layer names, parameters, bundle size and time a face).

    python -m training.reparam runs/NAME/model.keras --out /tmp/fused.keras

Each block's three batch-normalised paths (3x3, 1x1, identity) are linear in inference mode, so
their sum is one 3x3 convolution with a bias (Ding et al. 2021, "RepVGG", section 3.3). The bias
goes into the plain block's BatchNormalization, set to add it and nothing else. `training.release`
and `export/convert.py` call `fuse` themselves; a network without the branches passes unchanged.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

BLOCK = re.compile(r"stage([1-4])_([a-h])_conv")


def has_rep_branches(model) -> bool:
    return any(layer.name.endswith("_rep1x1_conv") for layer in model.layers)


def _scaled(kernel, bn):
    """A convolution kernel followed by batch norm (inference), as a kernel and a bias."""
    gamma, beta, mean, var = (np.asarray(w, dtype=np.float64) for w in bn.get_weights())
    scale = gamma / np.sqrt(var + bn.epsilon)
    return kernel * scale, beta - mean * scale


def fused_block(model, name: str):
    """The one 3x3 kernel and bias equal to block `name`'s 3x3 + 1x1 + identity paths."""
    k3 = np.asarray(model.get_layer(f"{name}_conv").get_weights()[0], dtype=np.float64)
    kernel, bias = _scaled(k3, model.get_layer(f"{name}_bn"))
    k1 = np.zeros_like(k3)
    k1[1, 1] = model.get_layer(f"{name}_rep1x1_conv").get_weights()[0][0, 0]
    k, b = _scaled(k1, model.get_layer(f"{name}_rep1x1_bn"))
    kernel, bias = kernel + k, bias + b
    if f"{name}_repid_bn" in {layer.name for layer in model.layers}:
        identity = np.zeros_like(k3)
        identity[1, 1] = np.eye(k3.shape[2])
        k, b = _scaled(identity, model.get_layer(f"{name}_repid_bn"))
        kernel, bias = kernel + k, bias + b
    return kernel, bias


def fuse(model):
    """The plain pagenet computing what `model` computes in inference mode; `model` itself if it has
    no RepVGG branches."""
    if not has_rep_branches(model):
        return model
    from training.models import pagenet

    blocks = sorted((m.group(1), m.group(2)) for m in (BLOCK.fullmatch(layer.name) for layer in model.layers) if m)
    convs = [sum(1 for s, _ in blocks if s == str(stage)) for stage in range(1, 5)]
    channels = [model.get_layer(f"stage{stage}_a_conv").filters for stage in range(1, 5)]
    names = {layer.name for layer in model.layers}
    squeeze = 0
    if "stage1_se_reduce" in names:
        squeeze = channels[0] // model.get_layer("stage1_se_reduce").filters
    plain = pagenet(convs=convs, channels=channels, dropout=model.get_layer("head_drop").rate,
                    squeeze_excite=squeeze)
    folded = {f"stage{s}_{letter}" for s, letter in blocks}
    for layer in plain.layers:
        block = layer.name.rsplit("_", 1)[0]
        if block in folded and layer.name in (f"{block}_conv", f"{block}_bn"):
            continue
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    for block in folded:
        kernel, bias = fused_block(model, block)
        plain.get_layer(f"{block}_conv").set_weights([kernel.astype(np.float32)])
        bn = plain.get_layer(f"{block}_bn")
        # gamma 1, beta = the bias, mean 0, variance 1 - epsilon: the layer adds the bias, nothing else.
        c = bias.shape[0]
        bn.set_weights([np.ones(c, np.float32), bias.astype(np.float32), np.zeros(c, np.float32),
                        np.full(c, 1 - bn.epsilon, np.float32)])
    return plain


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path, help="a saved pagenet trained with --rep-branches")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    if not args.model.is_file():
        sys.exit(f"error: {args.model}: no such file")
    from training.models import load_model

    model = load_model(args.model)
    if not has_rep_branches(model):
        sys.exit(f"error: {args.model} has no RepVGG branches to fold (a plain network already)")
    plain = fuse(model)
    probe = np.random.default_rng(0).uniform(0, 255, (16, *model.input_shape[1:])).astype(np.float32)
    gap = float(np.abs(model.predict(probe, verbose=0) - plain.predict(probe, verbose=0)).max())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    plain.save(args.out)
    print(f"wrote {args.out}: {plain.count_params():,} parameters (was {model.count_params():,}); "
          f"largest probability difference on 16 random faces {gap:.2e}")


if __name__ == "__main__":
    main()
