# SPDX-License-Identifier: Apache-2.0
"""Tests of the Python binding (run by meson with Debian's /usr/bin/python3).
    test-python.py          CPU: numpy arrays equal the file's tensors
    test-python.py --gpu    fakecuda (LD_LIBRARY_PATH): GpuTensor, DLPack
Exit 0 pass, 1 fail, 77 skip."""
import ctypes
import json
import os
import shutil
import struct
import sys
import tempfile

try:
    import numpy as np
    import stoke_loader as sl
except ImportError as e:
    print("skip:", e)
    sys.exit(77)


def write_model(path, seed=1):
    rng = np.random.default_rng(seed)
    tensors = {
        "emb": rng.standard_normal((33, 17)).astype(np.float32),
        "half": rng.standard_normal((5, 3, 7)).astype(np.float16),
        "ids": rng.integers(-9, 9, (1001,)).astype(np.int64),
        "mask": rng.integers(0, 2, (13,)).astype(np.bool_),
        "scalar": np.array(3.5, dtype=np.float64),
        "big": rng.standard_normal((512, 1031)).astype(np.float32),
        "bf": rng.integers(0, 65535, (9, 9)).astype(np.uint16),
    }
    dt = {np.float32: "F32", np.float16: "F16", np.int64: "I64", np.bool_: "BOOL",
          np.float64: "F64", np.uint16: "BF16"}
    header, off, blobs = {"__metadata__": {"format": "pt"}}, 0, []
    for name, a in tensors.items():
        b = a.tobytes()
        header[name] = {"dtype": dt[a.dtype.type], "shape": list(a.shape),
                        "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    return tensors


def check(cond, what):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)


def test_cpu(d):
    p = os.path.join(d, "m.safetensors")
    want = write_model(p)
    for kw in ({}, {"flags": sl.NO_URING}, {"flags": sl.ALWAYS_DIRECT, "request_size": 8192}):
        got = sl.load_file(p, **kw)
        check(set(got) == set(want), f"names {sorted(got)}")
        for n, a in want.items():
            g = got[n]
            check(g.shape == a.shape, f"{n}: shape {g.shape} != {a.shape}")
            check(g.tobytes() == a.tobytes(), f"{n}: bytes differ ({kw})")
        check(got["emb"].dtype == np.float32 and got["bf"].dtype == np.uint16, "dtypes")
    # Arrays outlive the Model object (they hold it).
    m = sl.Model(p)
    st = m.load()
    check(st["bytes"] == sum(a.nbytes for a in want.values()), f"stats bytes {st}")
    arr = m["big"]
    del m
    check(arr.tobytes() == want["big"].tobytes(), "array after Model deleted")
    # numpy consumes CPU tensors through DLPack too.
    check(np.from_dlpack(arr).tobytes() == arr.tobytes(), "np.from_dlpack")
    # Errors name the file.
    bad = os.path.join(d, "bad.safetensors")
    with open(p, "rb") as f:
        data = f.read()
    with open(bad, "wb") as f:
        f.write(data[:-1])
    try:
        sl.load_file(bad)
        check(False, "truncated file accepted")
    except sl.LoaderError as e:
        check("bad.safetensors" in str(e), f"error names the file: {e}")


class DLTensorView(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device_type", ctypes.c_int32),
                ("device_id", ctypes.c_int32), ("ndim", ctypes.c_int32),
                ("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16),
                ("shape", ctypes.POINTER(ctypes.c_int64)), ("strides", ctypes.c_void_p),
                ("byte_offset", ctypes.c_uint64), ("ctx", ctypes.c_void_p),
                ("deleter", ctypes.CFUNCTYPE(None, ctypes.c_void_p))]


def test_gpu(d):
    p = os.path.join(d, "m.safetensors")
    want = write_model(p, seed=7)
    fake = ctypes.CDLL("libcuda.so.1")  # held: its counters survive the loader's dlclose
    m = sl.Model(p)
    m.load(device="cuda:0", placement="mask=cpu")
    check(isinstance(m["mask"], np.ndarray), "placement rule kept mask on the host")
    t = m["emb"]
    check(isinstance(t, sl.GpuTensor) and t.__dlpack_device__() == (2, 0), "GpuTensor")
    check(t.numpy().tobytes() == want["emb"].tobytes(), "device bytes")
    for n, a in want.items():
        g = m[n]
        g = g.numpy() if isinstance(g, sl.GpuTensor) else g
        check(g.tobytes() == a.tobytes(), f"{n}: bytes differ on the device")
    # Consume the capsule as torch.from_dlpack does: read it, rename, delete.
    cap = t.__dlpack__()
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    ptr = get(cap, b"dltensor")
    v = DLTensorView.from_address(ptr)
    check(v.data == t.data_ptr and v.device_type == 2 and v.device_id == 0, "DLPack device")
    check(v.ndim == 2 and v.shape[0] == 33 and v.shape[1] == 17, "DLPack shape")
    check((v.code, v.bits, v.lanes) == (2, 32, 1), "DLPack dtype float32")
    rename = ctypes.pythonapi.PyCapsule_SetName
    rename.argtypes = [ctypes.py_object, ctypes.c_char_p]
    check(rename(cap, b"used_dltensor") == 0, "rename capsule")
    deleter = v.deleter
    del m, t
    deleter(ptr)  # the model is freed here, by the last reference
    # An unconsumed capsule is released by its destructor.
    m2 = sl.Model(p)
    m2.load(device="cuda:0")
    cap2 = m2["half"].__dlpack__()
    del cap2, m2
    import gc
    gc.collect()

    class Counters(ctypes.Structure):
        _fields_ = [("pinned", ctypes.c_uint64), ("unpinned", ctypes.c_uint64),
                    ("host_registered", ctypes.c_uint64), ("dev", ctypes.c_uint64 * 16)]
    c = Counters()
    fake.fakecuda_test_counters(ctypes.byref(c))
    check(c.dev[0] == 0 and c.host_registered == 0, "device memory released by DLPack deleters")
    check(c.pinned > 0 and c.unpinned == 0, f"copies from pinned memory only: {c.pinned} {c.unpinned}")
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None and torch.cuda.is_available():
        m3 = sl.Model(p)
        m3.load(device="cuda:0")
        tt = torch.from_dlpack(m3["emb"])
        check(tt.cpu().numpy().tobytes() == want["emb"].tobytes(), "torch.from_dlpack")


def main():
    d = tempfile.mkdtemp(prefix="stoke-ldr-py-")
    try:
        if "--gpu" in sys.argv:
            if not os.environ.get("LD_LIBRARY_PATH"):
                print("skip: no fake driver")
                sys.exit(77)
            test_gpu(d)
        else:
            test_cpu(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print("ok")


main()
