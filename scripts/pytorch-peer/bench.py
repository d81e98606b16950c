"""PyTorch eager as a peer library trains a sparse network: a dense convolution of the
masked weights (w * mask in every forward, as torch.nn.utils.prune and the sparse-training
libraries built on PyTorch do). The same CIFAR ResNets as sparselab's (3x3 stem, no
max-pool, BasicBlocks, 1x1 projection shortcuts), random masks at the given sparsity (where
the zeros are does not change a dense convolution's cost), SGD with Nesterov momentum and
weight decay, batch 128 of random 32x32 images.

Prints one markdown row per model and memory layout: mean ± std images/s over the timed
steps. --sparsity gives one value per model.
usage: python3 bench.py --models resnet20,resnet34 --sparsity 0.9,0.999 --threads 2
"""

import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SHAPES = {
    "resnet20": ([16, 32, 64], [3, 3, 3]),
    "resnet18": ([64, 128, 256, 512], [2, 2, 2, 2]),
    "resnet34": ([64, 128, 256, 512], [3, 4, 6, 3]),
}


class MaskedConv(nn.Conv2d):
    """A convolution of its weight times a fixed 0/1 mask."""

    def __init__(self, cin, cout, k, stride, sparsity):
        super().__init__(cin, cout, k, stride, k // 2, bias=False)
        keep = torch.rand_like(self.weight) >= sparsity
        self.register_buffer("mask", keep.float())

    def forward(self, x):
        return self._conv_forward(x, self.weight * self.mask, None)


class Block(nn.Module):
    def __init__(self, cin, cout, stride, sparsity):
        super().__init__()
        self.conv1 = MaskedConv(cin, cout, 3, stride, sparsity)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = MaskedConv(cout, cout, 3, 1, sparsity)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                MaskedConv(cin, cout, 1, stride, sparsity), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.shortcut is None else self.shortcut(x)))


class ResNet(nn.Module):
    def __init__(self, name, sparsity, classes=10):
        super().__init__()
        widths, blocks = SHAPES[name]
        self.stem = MaskedConv(3, widths[0], 3, 1, sparsity)
        self.bn = nn.BatchNorm2d(widths[0])
        layers, cin = [], widths[0]
        for i, (w, n) in enumerate(zip(widths, blocks)):
            for j in range(n):
                layers.append(Block(cin, w, 2 if i > 0 and j == 0 else 1, sparsity))
                cin = w
        self.blocks = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.blocks(F.relu(self.bn(self.stem(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def bench(name, sparsity, batch, layout, warmup, steps):
    torch.manual_seed(0)
    model = ResNet(name, sparsity)
    x = torch.randn(batch, 3, 32, 32)
    y = torch.randint(0, 10, (batch,))
    if layout == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                          weight_decay=5e-4)
    rates = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
        if i >= warmup:
            rates.append(batch / (time.perf_counter() - t0))
    return statistics.mean(rates), statistics.stdev(rates) if len(rates) > 1 else 0.0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--models", default="resnet20,resnet34")
    p.add_argument("--sparsity", default="0.9,0.999")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--layouts", default="nchw,channels_last")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    print(f"PyTorch {torch.__version__} eager on the CPU, {a.threads} threads, batch {a.batch}, "
          f"{a.warmup} warm-up + {a.steps} timed steps (mean ± std)\n")
    print("| model | sparsity | layout | images/s | ms/step |")
    print("|---|---:|---|---:|---:|")
    for name, sparsity in zip(a.models.split(","), a.sparsity.split(",")):
        for layout in a.layouts.split(","):
            mean, std = bench(name, float(sparsity), a.batch, layout, a.warmup, a.steps)
            print(f"| {name} | {float(sparsity) * 100:g}% | {layout} | {mean:.1f} ± {std:.1f} "
                  f"| {a.batch / mean * 1000:.0f} |", flush=True)


if __name__ == "__main__":
    main()
