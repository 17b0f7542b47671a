#!/usr/bin/python3
"""Reference Vision Transformer forwards with torchvision, for comparing the native ViT against it.

  vit_forward.py --arch ARCH --num-classes N [--in-channels C] [--image-size S] \
      --weights W.safetensors [--init-seed K] --input X.safetensors --out OUT.safetensors

ARCH is torchvision's vit_b_16 / vit_b_32 / vit_l_16, or one of btm-node's small shapes built as
torchvision.models.VisionTransformer (vit_s_p4, vit_t_p4, vit_mini_p4: the table in
native/models/vit.cc). conv_proj is replaced by Conv2d(C, D, patch, patch) when C != 3.

With --init-seed, first writes torchvision's own random init (torch.manual_seed(K)) to W, with the
parameters torchvision initialises to constants (class token, LayerNorm affine, head, biases) drawn
at random too, so that no part of the comparison is trivial. Then loads W strictly, reads tensor
'input' (float32 NCHW) from X, and writes to OUT:
  logits        eval-mode forward, no_grad
  features      the class token after encoder.ln (what feeds heads.head)
  state.<name>  every state_dict entry, in torchvision's order
"""
import argparse
import os
import sys

import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

# name: (patch, layers, heads, hidden, mlp, default image size); keep in step with native/models/vit.cc.
SMALL = {
    "vit_s_p4": (4, 12, 6, 384, 1536, 32),
    "vit_t_p4": (4, 12, 3, 192, 768, 32),
    "vit_mini_p4": (4, 6, 4, 128, 512, 32),
}


def build(arch, num_classes, in_channels, image_size):
    if arch in SMALL:
        patch, layers, heads, hidden, mlp, default = SMALL[arch]
        m = torchvision.models.VisionTransformer(
            image_size=image_size or default, patch_size=patch, num_layers=layers, num_heads=heads,
            hidden_dim=hidden, mlp_dim=mlp, num_classes=num_classes)
    else:
        kw = {"image_size": image_size} if image_size else {}
        m = getattr(torchvision.models, arch)(weights=None, num_classes=num_classes, **kw)
    if in_channels != 3:
        m.conv_proj = torch.nn.Conv2d(in_channels, m.hidden_dim, m.patch_size, m.patch_size)
    return m


def randomise(m):
    with torch.no_grad():
        m.class_token.normal_(0, 0.5)
        for mod in m.modules():
            if isinstance(mod, torch.nn.LayerNorm):
                mod.weight.uniform_(0.6, 1.4)
                mod.bias.uniform_(-0.2, 0.2)
            elif isinstance(mod, torch.nn.MultiheadAttention):
                mod.in_proj_bias.uniform_(-0.1, 0.1)
                mod.out_proj.bias.uniform_(-0.1, 0.1)
        m.heads.head.weight.normal_(0, m.hidden_dim ** -0.5)
        m.heads.head.bias.uniform_(-0.5, 0.5)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", required=True)
    p.add_argument("--num-classes", type=int, required=True)
    p.add_argument("--in-channels", type=int, default=3)
    p.add_argument("--image-size", type=int, default=0)
    p.add_argument("--weights", required=True)
    p.add_argument("--init-seed", type=int)
    p.add_argument("--input", required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args()

    torch.set_num_threads(2)
    if args.init_seed is not None:
        torch.manual_seed(args.init_seed)
        m = build(args.arch, args.num_classes, args.in_channels, args.image_size)
        randomise(m)
        safetensors_io.save(args.weights, m.state_dict())
    model = build(args.arch, args.num_classes, args.in_channels, args.image_size)
    model.load_state_dict(safetensors_io.load(args.weights), strict=True)
    x = safetensors_io.load(args.input)["input"]
    if x.dtype != torch.float32 or x.dim() != 4:
        sys.exit(f"{args.input}: 'input' must be float32 NCHW, got {x.dtype} {list(x.shape)}")

    features = []
    model.heads.register_forward_hook(lambda mod, inp, out: features.append(inp[0]))
    with torch.no_grad():
        model.eval()
        logits = model(x)

    out = {"logits": logits, "features": features[0]}
    out.update({f"state.{k}": v for k, v in model.state_dict().items()})
    safetensors_io.save(args.out, out)


if __name__ == "__main__":
    main()
