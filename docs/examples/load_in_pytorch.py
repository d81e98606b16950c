"""Loads a `sparselab export` file into a PyTorch CIFAR-ResNet and counts its non-zeros.

usage: python load_in_pytorch.py MODEL.safetensors
Needs torch and safetensors (pip install torch safetensors).
"""

import json
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_ch, mid, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, mid, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_ch != mid:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_ch, mid, 1, stride, bias=False), nn.BatchNorm2d(mid)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_ch, mid, stride):
        super().__init__()
        out_ch = mid * 4
        self.conv1 = nn.Conv2d(in_ch, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


# (stage widths, blocks per stage, block) of sparselab's architectures.
ARCHS = {
    **{f"resnet{6 * n + 2}": ([16, 32, 64], [n] * 3, BasicBlock) for n in (1, 2, 3, 5, 7, 9, 18)},
    "resnet18": ([64, 128, 256, 512], [2, 2, 2, 2], BasicBlock),
    "resnet34": ([64, 128, 256, 512], [3, 4, 6, 3], BasicBlock),
    "resnet50": ([64, 128, 256, 512], [3, 4, 6, 3], Bottleneck),
}


class CifarResNet(nn.Module):
    """A 3x3 stem without max-pool, residual stages, global pooling, a bias-free linear."""

    def __init__(self, arch, width=1.0, num_classes=10):
        super().__init__()
        widths, depths, block = ARCHS[arch]
        scaled = [max(1, int(w * width + 0.5)) for w in widths]
        self.conv1 = nn.Conv2d(3, scaled[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(scaled[0])
        in_ch = scaled[0]
        for s, (mid, n) in enumerate(zip(scaled, depths)):
            blocks = []
            for b in range(n):
                blocks.append(block(in_ch, mid, 2 if s > 0 and b == 0 else 1))
                in_ch = mid * block.expansion
            setattr(self, f"layer{s + 1}", nn.Sequential(*blocks))
        self.stages = len(depths)
        self.linear = nn.Linear(in_ch, num_classes, bias=False)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        for s in range(self.stages):
            out = getattr(self, f"layer{s + 1}")(out)
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


def main(path):
    with safe_open(path, framework="pt") as f:
        meta = f.metadata()
    tensors = load_file(path)
    masks = {k[len("masks."):]: v for k, v in tensors.items() if k.startswith("masks.")}
    weights = {k: v for k, v in tensors.items() if not k.startswith("masks.")}

    model = CifarResNet(meta["arch"], float(meta["width"]), int(meta["num_classes"]))
    model.load_state_dict(weights, strict=True)  # every name and shape must match
    model.eval()

    total = sum(weights[name].numel() for name in masks)
    nonzero = sum(int(torch.count_nonzero(weights[name])) for name in masks)
    print(f"{meta['method']} {meta['arch']} x{meta['width']}, trained {meta['step']} steps")
    print(f"non-zero weights: {nonzero:,} of {total:,} ({100 * nonzero / total:.3f}%)")
    print(f"alive in the masks: {sum(int(m.sum()) for m in masks.values()):,}")
    if "test_accuracy" in meta:
        print(f"sparselab's test accuracy: {100 * float(meta['test_accuracy']):.2f}%")

    # Inputs are normalised as the run normalised them: (pixel / 255 - mean) / std.
    norm = json.loads(meta["normalization"])
    mean = torch.tensor(norm["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(norm["std"]).view(1, 3, 1, 1)
    pixels = torch.rand(4, 3, 32, 32)  # stand-in for four images scaled to [0, 1]
    with torch.no_grad():
        logits = model((pixels - mean) / std)
    classes = json.loads(meta["class_names"])
    print("predictions for 4 random images:", [classes[i] for i in logits.argmax(1)])


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
