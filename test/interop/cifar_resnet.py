#!/usr/bin/python3
"""The CIFAR ResNets of btm-node (resnet8/20/32/56/110) in plain PyTorch, with torchvision-style names.

btm-node's default run trains a CIFAR resnet20, which torchvision does not have. This module is the
PyTorch code that loads its checkpoints (the README shows the same code); the interop test
(test/cifar-resnet-interop.test.ts) checks its logits against btm-node's on a written checkpoint.

  cifar_resnet.py logits CKPT INPUT OUT    build the model from CKPT's metadata, load CKPT strictly,
                                           run tensor 'images' (uint8 NCHW) of INPUT through the
                                           checkpoint's normalisation and the model (eval mode), and
                                           write 'logits' to OUT
  cifar_resnet.py half CKPT OUT DTYPE      CKPT with every float tensor cast to DTYPE (float16 or
                                           bfloat16), metadata kept
"""
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402  (stands in for safetensors.torch, which Debian lacks)


# --- the model (copied verbatim into the README) ------------------------------------------------
class BasicBlock(nn.Module):
    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        # "Option A" shortcut: subsample and zero-pad the channels (no parameters).
        self.pad = (planes - in_planes) // 2 if stride != 1 or in_planes != planes else None
        self.stride = stride

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x
        if self.pad is not None:
            identity = F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, self.pad, self.pad))
        return F.relu(out + identity)


class CifarResNet(nn.Module):
    """resnet{6n+2}: depth 20 -> 3 blocks per stage; stages of 16, 32, 64 channels."""

    def __init__(self, depth=20, num_classes=10, in_channels=3):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        planes, layers = 16, []
        for i, width in enumerate((16, 32, 64)):
            blocks = []
            for b in range(n):
                blocks.append(BasicBlock(planes, width, 2 if i > 0 and b == 0 else 1))
                planes = width
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))
# -------------------------------------------------------------------------------------------------


def load_btm_checkpoint(path):
    tensors, metadata = safetensors_io.read(path)
    meta = json.loads(metadata["model"])
    depth = int(meta["arch"].removeprefix("resnet"))
    model = CifarResNet(depth, meta["numClasses"], meta["inChannels"])
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}, strict=True)
    return model.eval(), meta


def main(argv):
    if len(argv) == 4 and argv[0] == "logits":
        _, ckpt, inp, out = argv
        model, meta = load_btm_checkpoint(ckpt)
        x = safetensors_io.load(inp)["images"].float() / 255
        norm = meta.get("normalize")
        if norm:
            x = (x - torch.tensor(norm["mean"]).view(1, -1, 1, 1)) / torch.tensor(norm["std"]).view(1, -1, 1, 1)
        with torch.no_grad():
            safetensors_io.save(out, {"logits": model(x)})
    elif len(argv) == 4 and argv[0] == "half":
        _, ckpt, out, dtype = argv
        tensors, metadata = safetensors_io.read(ckpt)
        cast = getattr(torch, dtype)
        safetensors_io.save(out, {k: v.to(cast) if v.is_floating_point() else v for k, v in tensors.items()}, metadata)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(sys.argv[1:])
