#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Write the seed inputs of the fuzz corpora (tests/loader/corpus/*/seed-*).
Inputs found by fuzzing are added beside them under their libFuzzer names."""
import json
import os
import struct

here = os.path.dirname(os.path.abspath(__file__))


def st(header, data_len, pad=True):
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + bytes(i * 7 & 0xff for i in range(data_len))


def gguf(tensors, kvs=(), alignment=None, data_len=64):
    def s(x):
        x = x.encode()
        return struct.pack("<Q", len(x)) + x
    kv = [(b"general.architecture", 8, s("llama"))] + list(kvs)
    if alignment:
        kv.append((b"general.alignment", 4, struct.pack("<I", alignment)))
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv))
    for k, t, v in kv:
        out += struct.pack("<Q", len(k)) + k + struct.pack("<I", t) + v
    for name, dims, typ, off in tensors:
        out += s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", typ, off)
    a = alignment or 32
    out += b"\0" * (-len(out) % a)
    return out + bytes(i & 0xff for i in range(data_len))


seeds = {
    "safetensors": {
        "valid-two": st({"__metadata__": {"format": "pt"},
                         "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
                         "b": {"dtype": "BF16", "shape": [3], "data_offsets": [16, 22]}}, 22),
        "valid-empty": st({}, 0),
        "valid-scalar-f4": st({"s": {"dtype": "I64", "shape": [], "data_offsets": [0, 8]},
                               "f": {"dtype": "F4", "shape": [4], "data_offsets": [8, 10]},
                               "e": {"dtype": "U8", "shape": [0], "data_offsets": [10, 10]}}, 10),
        "escapes": st({"n\u00e9\ud83d\ude00\"\\/\n": {"dtype": "U8", "shape": [1],
                                                        "data_offsets": [0, 1]}}, 1),
        "overlap": st({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                       "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, 8),
        "bad-dtype": st({"a": {"dtype": "Q9", "shape": [1], "data_offsets": [0, 1]}}, 1),
        "nested-meta": st({"__metadata__": {"a": "b", "c": "d"},
                           "x": {"dtype": "I8", "shape": [1, 1, 1, 1, 1, 1, 1, 1],
                                 "data_offsets": [0, 1], "extra": [1, {"k": [True, None, -1.5e3]}]}}, 1),
    },
    "gguf": {
        "valid-two": gguf([("tok_embd.weight", [8, 2], 0, 0), ("q", [256], 12, 64)],
                          data_len=64 + 144),
        "valid-aligned64": gguf([("x", [4], 1, 0)], alignment=64, data_len=8),
        "valid-arrays": gguf([("x", [32], 8, 0)],
                             kvs=[(b"tok.tokens", 9, struct.pack("<IQ", 8, 2) +
                                   struct.pack("<Q", 1) + b"a" + struct.pack("<Q", 2) + b"bc"),
                                  (b"tok.scores", 9, struct.pack("<IQ", 6, 3) + b"\0" * 12),
                                  (b"flag", 7, b"\x01"), (b"nested", 9, struct.pack("<IQ", 9, 1) +
                                                          struct.pack("<IQ", 4, 1) + b"\0" * 4)],
                             data_len=34),
        "valid-none": gguf([], data_len=0),
        "overlap": gguf([("a", [16], 0, 0), ("b", [8], 0, 32)], data_len=96),
        "unknown-type": gguf([("a", [16], 4, 0)], data_len=64),
    },
}

for kind, items in seeds.items():
    d = os.path.join(here, "corpus", kind)
    os.makedirs(d, exist_ok=True)
    for name, data in items.items():
        with open(os.path.join(d, "seed-" + name), "wb") as f:
            f.write(data)
