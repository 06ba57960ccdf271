#!/usr/bin/python3
"""Writes python.safetensors and python_expected.json for the Go tests.

Standard library only (struct + json), following the Hugging Face
safetensors format: 8-byte little-endian header length N, N bytes of JSON
header (padded with spaces so the data starts at a multiple of 8), then the
little-endian tensor data, laid out like the reference writer does (largest
element size first, then by name). Run from anywhere:

    /usr/bin/python3 make_fixture.py
"""

import json
import math
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

SIZES = {"F64": 8, "I64": 8, "F32": 4, "F16": 2}
FMT = {"F64": "d", "I64": "q", "F32": "f", "F16": "e"}

# name -> (dtype, shape, flat values)
TENSORS = {
    "weight": ("F32", [2, 3], [0.1, -2.5, 3.0, 1e-30, 65504.0, -0.0]),
    "bias": ("F32", [3], [1.0, 2.0, 3.0]),
    "scale": ("F32", [], [math.pi]),
    "empty": ("F32", [0, 4], []),
    # F16 edge cases: 2^-24 (smallest subnormal), 65504 (max), -0, 1/3 rounded.
    "half": ("F16", [2, 3], [1.0, -0.5, 2.0 ** -24, 65504.0, -0.0, 1.0 / 3.0]),
    "half_special": ("F16", [3], [math.inf, -math.inf, math.nan]),
    "ids": ("I64", [4], [0, -1, 2 ** 62 + 1, -(2 ** 63)]),
    "count": ("I64", [], [7]),
}

METADATA = {"format": "pt", "source": "make_fixture.py", "note": "héllo ✓"}


def main():
    order = sorted(TENSORS, key=lambda n: (-SIZES[TENSORS[n][0]], n))
    header = {"__metadata__": METADATA}
    blobs = []
    offset = 0
    for name in order:
        dtype, shape, values = TENSORS[name]
        count = 1
        for d in shape:
            count *= d
        assert count == len(values), name
        blob = struct.pack("<%d%s" % (len(values), FMT[dtype]), *values)
        assert len(blob) == count * SIZES[dtype]
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)

    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((8 - len(hjson) % 8) % 8)
    with open(os.path.join(HERE, "python.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for blob in blobs:
            f.write(blob)

    # Expected values after the round trip through each dtype, stored as raw
    # bit patterns (exact, and JSON has no Inf/NaN) plus readable floats.
    expected = {"metadata": METADATA, "tensors": {}}
    for name, (dtype, shape, values) in TENSORS.items():
        fmt = FMT[dtype]
        ent = {"dtype": dtype, "shape": shape}
        if dtype == "I64":
            ent["ints"] = values
        else:
            # Value as float32 bits after decoding (F16 widens exactly).
            f32 = [struct.unpack("<f", struct.pack("<f", struct.unpack("<" + fmt, struct.pack("<" + fmt, v))[0]))[0]
                   for v in values]
            ent["float32_bits"] = [struct.unpack("<I", struct.pack("<f", v))[0] for v in f32]
            ent["floats"] = [v if math.isfinite(v) else repr(v) for v in f32]
        expected["tensors"][name] = ent
    with open(os.path.join(HERE, "python_expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, indent=1, sort_keys=True, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
