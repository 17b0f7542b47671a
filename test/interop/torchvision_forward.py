#!/usr/bin/python3
"""Reference forward passes with torchvision, for comparing the native model against it.

  torchvision_forward.py --arch resnet18 --num-classes N --in-channels C \
      --weights W.safetensors --input X.safetensors --out OUT.safetensors

Builds torchvision.models.<arch>(num_classes=N) (conv1 replaced by Conv2d(C, 64, 7, 2, 3,
bias=False) when C != 3), loads W strictly, reads tensor 'input' (float32 NCHW) from X, and
writes to OUT:
  logits_eval    eval-mode forward, no_grad
  logits_train   then one train-mode forward, no_grad (BatchNorm running stats update)
  state.<name>   every state_dict entry after the train-mode forward
"""
import argparse
import os
import sys

import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", required=True)
    p.add_argument("--num-classes", type=int, required=True)
    p.add_argument("--in-channels", type=int, default=3)
    p.add_argument("--weights", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args()

    torch.set_num_threads(2)
    model = getattr(torchvision.models, args.arch)(weights=None, num_classes=args.num_classes)
    if args.in_channels != 3:
        model.conv1 = torch.nn.Conv2d(args.in_channels, 64, 7, 2, 3, bias=False)
    model.load_state_dict(safetensors_io.load(args.weights), strict=True)
    x = safetensors_io.load(args.input)["input"]
    if x.dtype != torch.float32 or x.dim() != 4:
        sys.exit(f"{args.input}: 'input' must be float32 NCHW, got {x.dtype} {list(x.shape)}")

    with torch.no_grad():
        model.eval()
        logits_eval = model(x)
        model.train()
        logits_train = model(x)

    out = {"logits_eval": logits_eval, "logits_train": logits_train}
    out.update({f"state.{k}": v for k, v in model.state_dict().items()})
    safetensors_io.save(args.out, out)


if __name__ == "__main__":
    main()
