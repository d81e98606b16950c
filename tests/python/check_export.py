"""Checks a `sparselab export` file from the Python side, with the `safetensors` and `numpy`
packages only (no torch): the tensor names and shapes a PyTorch CIFAR-ResNet of the
metadata's architecture has, the masks, the non-zero count and the metadata.

usage: check_export.py FILE.safetensors
Prints one summary line; exits non-zero with the reason on any mismatch.
"""

import json
import math
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

# (stage widths, blocks per stage, bottleneck) of every architecture sparselab trains.
ARCHS = {
    **{f"resnet{6 * n + 2}": ([16, 32, 64], [n] * 3, False) for n in (1, 2, 3, 5, 7, 9, 18)},
    "resnet18": ([64, 128, 256, 512], [2, 2, 2, 2], False),
    "resnet34": ([64, 128, 256, 512], [3, 4, 6, 3], False),
    "resnet50": ([64, 128, 256, 512], [3, 4, 6, 3], True),
}


def scaled(channels, width):
    # Rust's f64::round: halves away from zero (Python's round() would go to even).
    return max(1, math.floor(channels * width + 0.5))


def expected_shapes(arch, width, classes):
    """The state_dict of the pytorch-cifar ResNet (conv1, bn1, layerN.B.*, linear)."""
    widths, depths, bottleneck = ARCHS[arch]
    shapes = {}

    def conv(name, out_ch, in_ch, k):
        shapes[f"{name}.weight"] = (out_ch, in_ch, k, k)

    def bn(name, ch):
        for p in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{name}.{p}"] = (ch,)
        shapes[f"{name}.num_batches_tracked"] = ()

    stem = scaled(widths[0], width)
    conv("conv1", stem, 3, 3)
    bn("bn1", stem)
    in_ch = stem
    expansion = 4 if bottleneck else 1
    for s, (w, n) in enumerate(zip(widths, depths)):
        mid = scaled(w, width)
        out_ch = mid * expansion
        for b in range(n):
            stride = 2 if s > 0 and b == 0 else 1
            name = f"layer{s + 1}.{b}"
            if bottleneck:
                conv(f"{name}.conv1", mid, in_ch, 1)
                conv(f"{name}.conv2", mid, mid, 3)
                conv(f"{name}.conv3", out_ch, mid, 1)
                bn(f"{name}.bn3", out_ch)
            else:
                conv(f"{name}.conv1", mid, in_ch, 3)
                conv(f"{name}.conv2", mid, mid, 3)
            bn(f"{name}.bn1", mid)
            bn(f"{name}.bn2", mid)
            if stride != 1 or in_ch != out_ch:
                conv(f"{name}.shortcut.0", out_ch, in_ch, 1)
                bn(f"{name}.shortcut.1", out_ch)
            in_ch = out_ch
    shapes["linear.weight"] = (classes, in_ch)
    return shapes


def fail(message):
    sys.exit(f"check_export: {message}")


def main(path):
    with safe_open(path, framework="numpy") as f:
        meta = f.metadata() or {}
    tensors = load_file(path)
    for key in ("format", "arch", "width", "num_classes", "method", "nnz", "numel", "config"):
        if key not in meta:
            fail(f"metadata lacks {key!r}")
    if meta["format"] != "pt":
        fail(f"metadata format is {meta['format']!r}, not 'pt'")
    if meta.get("activation", "relu") != "relu":
        fail("a DyReLU model: this check covers the plain ReLU network")
    arch, width, classes = meta["arch"], float(meta["width"]), int(meta["num_classes"])
    shapes = expected_shapes(arch, width, classes)
    weights = {k: v for k, v in tensors.items() if not k.startswith("masks.")}
    masks = {k[len("masks."):]: v for k, v in tensors.items() if k.startswith("masks.")}
    if set(weights) != set(shapes):
        fail(
            f"names differ from a PyTorch {arch}: missing {sorted(set(shapes) - set(weights))[:5]}, "
            f"extra {sorted(set(weights) - set(shapes))[:5]}"
        )
    for name, shape in shapes.items():
        if tuple(weights[name].shape) != shape:
            fail(f"{name} has shape {weights[name].shape}, a PyTorch {arch} has {shape}")
        want = np.int64 if name.endswith("num_batches_tracked") else np.float32
        if weights[name].dtype != want:
            fail(f"{name} is {weights[name].dtype}, not {np.dtype(want)}")
        if not np.all(np.isfinite(weights[name])):
            fail(f"{name} holds a non-finite value")
    prunable = [n for n, s in shapes.items() if len(s) >= 2]
    if set(masks) != set(prunable):
        fail(f"masks cover {sorted(masks)[:3]}..., not every conv and linear weight")
    alive = 0
    for name in prunable:
        mask = masks[name]
        if mask.dtype != np.bool_ or mask.shape != weights[name].shape:
            fail(f"masks.{name} is {mask.dtype} {mask.shape}")
        if np.any(weights[name][~mask] != 0):
            fail(f"{name} has non-zero weights where its mask is off")
        alive += int(mask.sum())
    numel = sum(int(np.prod(shapes[n])) for n in prunable)
    nonzero = sum(int(np.count_nonzero(weights[n])) for n in prunable)
    if alive != int(meta["nnz"]) or numel != int(meta["numel"]):
        fail(f"masks keep {alive} of {numel}, the metadata says {meta['nnz']} of {meta['numel']}")
    if nonzero > alive:
        fail(f"{nonzero} non-zero weights but only {alive} alive in the masks")
    normalization = json.loads(meta["normalization"])
    print(
        f"{path}: {meta['method']} {arch} x{width:g}, {len(weights)} tensors as a PyTorch "
        f"{arch} names them, {alive} of {numel} weights alive ({100 * alive / numel:.3f}%), "
        f"{nonzero} non-zero, normalization mean {normalization['mean']}"
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
