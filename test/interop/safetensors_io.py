#!/usr/bin/python3
"""Minimal pure-Python safetensors reader/writer (struct + json + torch.frombuffer).

Debian has no python3-safetensors, so the interop tests use this independent implementation to
check the TypeScript one. Library use: load(path) -> dict[str, Tensor] (in data-offset order),
read(path) -> (tensors, metadata), save(path, tensors, metadata=None).

CLI (for the tests):
  safetensors_io.py describe IN        print JSON: metadata and, per tensor, name/dtype/shape,
                                       sum and (small tensors) values, all numbers as strings
  safetensors_io.py roundtrip IN OUT   load IN and save it again as OUT (metadata kept)
  safetensors_io.py example OUT        write a fixed example file (see example_tensors())
"""
import json
import struct
import sys

import torch

DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}
NAMES = {v: k for k, v in DTYPES.items()}

assert sys.byteorder == "little", "safetensors_io assumes a little-endian host"


def read(path):
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 8:
        raise ValueError(f"{path}: too short")
    (n,) = struct.unpack("<Q", buf[:8])
    if 8 + n > len(buf):
        raise ValueError(f"{path}: header length {n} out of range")
    header = json.loads(buf[8:8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", None) or {}
    data = memoryview(buf)[8 + n:]
    tensors = {}
    for name, info in sorted(header.items(), key=lambda kv: tuple(kv[1]["data_offsets"])):
        begin, end = info["data_offsets"]
        dtype = DTYPES[info["dtype"]]
        shape = info["shape"]
        if end > len(data):
            raise ValueError(f"{path}: tensor {name}: offsets out of range")
        raw = bytearray(data[begin:end])  # a private, writable, aligned copy
        if len(raw) == 0:
            t = torch.empty(shape, dtype=dtype)
        else:
            t = torch.frombuffer(raw, dtype=dtype).reshape(shape)
        if t.numel() * t.element_size() != end - begin:
            raise ValueError(f"{path}: tensor {name}: byte length mismatch")
        tensors[name] = t
    return tensors, metadata


def load(path):
    return read(path)[0]


def tensor_bytes(t):
    return t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def save(path, tensors, metadata=None):
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    chunks, offset = [], 0
    for name, t in tensors.items():
        b = tensor_bytes(t)
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(b)]}
        chunks.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-(8 + len(h)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in chunks:
            f.write(b)


def describe(tensors, metadata):
    out = []
    for name, t in tensors.items():
        entry = {"name": name, "dtype": NAMES[t.dtype], "shape": list(t.shape)}
        if t.is_floating_point():
            entry["sum"] = repr(t.double().sum().item())
            vals = [repr(x) for x in t.double().reshape(-1).tolist()]
        else:
            entry["sum"] = str(t.long().sum().item())
            vals = [str(x) for x in t.long().reshape(-1).tolist()]
        if len(vals) <= 64:
            entry["values"] = vals
        out.append(entry)
    return {"metadata": metadata, "tensors": out}


def example_tensors():
    """Fixed values the TypeScript interop test knows. 'odd' (3 float32 = 12 bytes) puts 'big' at
    an offset that is not 8-aligned, exercising the reader's copy path."""
    return {
        "odd": torch.tensor([1.5, -0.0, float("inf")], dtype=torch.float32),
        "big": torch.tensor([2**62 + 3, -(2**63), 2**63 - 1], dtype=torch.int64),
        "grid": (torch.arange(12, dtype=torch.float32) / 8 - 0.5).reshape(3, 4),
        "scalar": torch.tensor(3.25, dtype=torch.float32),
        "empty": torch.zeros(0, 4, dtype=torch.float32),
    }


def main(argv):
    cmd = argv[0] if argv else ""
    if cmd == "describe" and len(argv) == 2:
        print(json.dumps(describe(*read(argv[1]))))
    elif cmd == "roundtrip" and len(argv) == 3:
        tensors, metadata = read(argv[1])
        save(argv[2], tensors, metadata)
    elif cmd == "example" and len(argv) == 2:
        save(argv[1], example_tensors(), {"format": "pt", "writer": "safetensors_io.py"})
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
