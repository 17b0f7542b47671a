#!/usr/bin/env python3
"""Convert a PyTorch torch.save file (zip or legacy pickle) holding a state dict to safetensors.

  python3 pt_to_safetensors.py IN.pt OUT.safetensors

Needs only torch (not the safetensors package). IN may hold a state dict, or a dict with the state
dict under 'state_dict' or 'model' (common training-checkpoint layouts), or a whole nn.Module.
Tensors keep their dtype (btm-node reads F32, I64, and F16 / BF16 as float32). The output is what
btm-node's readSafetensors and Model.loadStateDict take; `btm info OUT.safetensors` shows it.
"""
import json
import struct
import sys

import torch

NAMES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}


def load_state_dict(path):
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # older torch without weights_only, or a pickled nn.Module
        obj = torch.load(path, map_location="cpu")
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        sys.exit(f"{path}: does not hold a state dict (a dict of tensors), found {type(obj).__name__}")
    return obj


def save(path, tensors):
    header, chunks, offset = {}, [], 0
    for name, t in tensors.items():
        if t.dtype not in NAMES:
            sys.exit(f"tensor {name}: dtype {t.dtype} has no safetensors name")
        b = t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        chunks.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-(8 + len(h)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in chunks:
            f.write(b)


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__)
    assert sys.byteorder == "little", "this converter assumes a little-endian host"
    tensors = load_state_dict(argv[0])
    save(argv[1], tensors)
    print(f"{argv[0]} -> {argv[1]}: {len(tensors)} tensors")


if __name__ == "__main__":
    main(sys.argv[1:])
