"""Accuracy of a `sparselab export` in PyTorch on an image-folder archive
(`<split>/<class>/<name>.jpg|png`, e.g. the shared CIFAR-10 JPEGs): every image in it.

usage: python evaluate_in_pytorch.py MODEL.safetensors IMAGES.tar.gz
Needs torch, safetensors, numpy and pillow; uses load_in_pytorch.py beside it.
"""

import io
import json
import os
import sys
import tarfile

import numpy as np
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load_in_pytorch import CifarResNet  # noqa: E402


def main(model_path, archive):
    with safe_open(model_path, framework="pt") as f:
        meta = f.metadata()
    weights = {k: v for k, v in load_file(model_path).items() if not k.startswith("masks.")}
    model = CifarResNet(meta["arch"], float(meta["width"]), int(meta["num_classes"]))
    model.load_state_dict(weights, strict=True)
    model.eval()
    classes = json.loads(meta["class_names"])
    norm = json.loads(meta["normalization"])
    mean = torch.tensor(norm["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(norm["std"]).view(1, 3, 1, 1)

    images, labels = [], []
    with tarfile.open(archive) as tar:
        for m in tar:
            if m.isfile() and m.name.lower().endswith((".jpg", ".jpeg", ".png")):
                img = Image.open(io.BytesIO(tar.extractfile(m).read())).convert("RGB")
                images.append(np.asarray(img, dtype=np.uint8))
                labels.append(classes.index(m.name.split("/")[-2]))
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0
    y = torch.tensor(labels)
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), 1000):
            logits = model((x[i : i + 1000] - mean) / std)
            correct += int((logits.argmax(1) == y[i : i + 1000]).sum())
    print(f"{correct} of {len(y)} images right ({100 * correct / len(y):.2f}%) in PyTorch {torch.__version__}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
