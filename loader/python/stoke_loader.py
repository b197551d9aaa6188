# SPDX-License-Identifier: Apache-2.0
"""stoke_loader: Python binding of stoke's weight loader (ctypes over
libstokeloader.so, the C API in loader/include/stoke-loader.h).

    import stoke_loader
    tensors = stoke_loader.load_file("model.safetensors")          # {name: numpy array}
    m = stoke_loader.Model(["model.safetensors.index.json"])
    stats = m.load(device="cuda:0")
    t = m["lm_head.weight"]          # GpuTensor: torch.from_dlpack(t) works
    arr = t.numpy()                  # copy back to host

CPU tensors are numpy arrays viewing memory the model owns (each array keeps
the model alive). BF16 comes back as uint16 and FP8/FP4/GGUF quantized types
as raw uint8 bytes (numpy has no such dtypes); the file's dtype name is in
Model.info(name)["dtype"]. GPU tensors implement __dlpack__ and
__dlpack_device__ (DLPack 0.8), and hold a model reference until the DLPack
consumer releases them.

The library is found beside this file or at $STOKE_LOADER_LIB.
Thread-safety: a Model is not locked; use one per thread or serialise.
"""
import ctypes
import os

import numpy as np

_MAX_DIMS = 8


def _find_library():
    here = os.path.dirname(os.path.abspath(__file__))
    for p in (os.environ.get("STOKE_LOADER_LIB"), os.path.join(here, "libstokeloader.so")):
        if p and os.path.exists(p):
            return p
    raise ImportError(f"libstokeloader.so not found beside {here} (set STOKE_LOADER_LIB)")


_lib = ctypes.CDLL(_find_library())


class _TensorInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("dtype", ctypes.c_char_p),
                ("n_dims", ctypes.c_uint32), ("shape", ctypes.POINTER(ctypes.c_uint64)),
                ("size", ctypes.c_uint64), ("file", ctypes.c_char_p),
                ("file_offset", ctypes.c_uint64), ("device", ctypes.c_int),
                ("host", ctypes.c_void_p), ("dptr", ctypes.c_uint64)]


class _Options(ctypes.Structure):
    _fields_ = [("device", ctypes.c_char_p), ("placement", ctypes.c_char_p),
                ("flags", ctypes.c_uint), ("queue_depth", ctypes.c_uint),
                ("request_size", ctypes.c_size_t), ("n_workers", ctypes.c_uint)]


class _Stats(ctypes.Structure):
    _fields_ = [("bytes", ctypes.c_uint64), ("bytes_read", ctypes.c_uint64),
                ("bytes_direct", ctypes.c_uint64), ("bytes_buffered", ctypes.c_uint64),
                ("plan_ns", ctypes.c_uint64), ("read_ns", ctypes.c_uint64),
                ("total_ns", ctypes.c_uint64), ("backend", ctypes.c_char_p),
                ("queue_depth", ctypes.c_uint), ("request_size", ctypes.c_size_t),
                ("n_workers", ctypes.c_uint), ("uring_fallback_error", ctypes.c_int),
                ("fixed_buffers", ctypes.c_int), ("mapped", ctypes.c_int),
                ("huge_pages", ctypes.c_int)]


class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", _DLDevice), ("ndim", ctypes.c_int32),
                ("dtype", _DLDataType), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


class _DLManagedTensor(ctypes.Structure):
    pass


_DELETER = ctypes.CFUNCTYPE(None, ctypes.POINTER(_DLManagedTensor))
_DLManagedTensor._fields_ = [("dl_tensor", _DLTensor), ("manager_ctx", ctypes.c_void_p),
                             ("deleter", _DELETER)]

_lib.ldr_model_open.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_size_t,
                                ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p, ctypes.c_size_t]
_lib.ldr_model_unref.argtypes = [ctypes.c_void_p]
_lib.ldr_model_unref.restype = ctypes.c_void_p
_lib.ldr_model_n_tensors.argtypes = [ctypes.c_void_p]
_lib.ldr_model_n_tensors.restype = ctypes.c_size_t
_lib.ldr_model_tensor.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(_TensorInfo)]
_lib.ldr_model_find.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
_lib.ldr_model_find.restype = ctypes.c_long
_lib.ldr_model_load.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Options),
                                ctypes.POINTER(_Stats), ctypes.c_char_p, ctypes.c_size_t]
_lib.ldr_model_copy_to_host.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint64,
                                        ctypes.c_void_p, ctypes.c_size_t]
_lib.ldr_model_dlpack.argtypes = [ctypes.c_void_p, ctypes.c_size_t,
                                  ctypes.POINTER(ctypes.c_void_p)]

_capsule_new = ctypes.pythonapi.PyCapsule_New
_capsule_new.restype = ctypes.py_object
_capsule_new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
# In the destructor the capsule is being deallocated: it must not be turned
# back into a Python object, so these take it as a raw pointer.
_capsule_is_valid = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p)(
    ("PyCapsule_IsValid", ctypes.pythonapi))
_capsule_get = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p)(
    ("PyCapsule_GetPointer", ctypes.pythonapi))


@ctypes.CFUNCTYPE(None, ctypes.c_void_p)
def _capsule_destructor(capsule):
    # A capsule still named "dltensor" was never consumed: free it here.
    # (A consumer renames it "used_dltensor" and calls the deleter itself.)
    if _capsule_is_valid(capsule, b"dltensor"):
        mt = ctypes.cast(_capsule_get(capsule, b"dltensor"), ctypes.POINTER(_DLManagedTensor))
        mt.contents.deleter(mt)


# Flags (enum ldr_load_flags).
NO_URING = 1
NO_DIRECT = 2
ALWAYS_DIRECT = 4
MAP = 8  # host tensors as copy-on-write mappings of the file (see stoke-loader.h)
COPY = 16  # host tensors always in private memory, even when the file is cached

_NP_DTYPES = {
    "BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "I16": np.int16, "U16": np.uint16,
    "F16": np.float16, "BF16": np.uint16, "I32": np.int32, "U32": np.uint32,
    "F32": np.float32, "F64": np.float64, "I64": np.int64, "U64": np.uint64,
    "C64": np.complex64,
}  # GGUF's F32/F16/BF16/F64/I8..I64 use the same names; other types are raw bytes


class LoaderError(OSError):
    pass


def _err(r, msg):
    return LoaderError(-r, msg.value.decode(errors="replace") or os.strerror(-r))


class GpuTensor:
    """A tensor in GPU memory; a DLPack producer (torch.from_dlpack(t))."""

    def __init__(self, model, index, info):
        self._model = model
        self._index = index
        self.name = info["name"]
        self.dtype = info["dtype"]
        self.shape = info["shape"]
        self.nbytes = info["size"]
        self.device = info["device"]
        self.data_ptr = info["dptr"]

    def __dlpack_device__(self):
        return (2, self.device)  # kDLCUDA

    def __dlpack__(self, stream=None, max_version=None, dl_device=None, copy=None):
        # The loader synchronised its copies before returning: no stream wait
        # is needed. An unversioned "dltensor" capsule is what every DLPack
        # consumer accepts (max_version only allows a newer one).
        if copy or (dl_device is not None and tuple(dl_device) != self.__dlpack_device__()):
            raise BufferError("stoke_loader exports in place, on its own device")
        ptr = ctypes.c_void_p()
        r = _lib.ldr_model_dlpack(self._model._m, self._index, ctypes.byref(ptr))
        if r < 0:
            raise LoaderError(-r, f"DLPack export of {self.name} failed")
        return _capsule_new(ptr, b"dltensor", ctypes.cast(_capsule_destructor, ctypes.c_void_p))

    def numpy(self):
        """Copy to host: a numpy array (see the module notes on dtypes)."""
        buf = np.empty(self.nbytes, dtype=np.uint8)
        r = _lib.ldr_model_copy_to_host(self._model._m, self._index, 0,
                                        buf.ctypes.data_as(ctypes.c_void_p), self.nbytes)
        if r < 0:
            raise LoaderError(-r, f"copy of {self.name} to host failed")
        return self._model._view(buf, self.dtype, self.shape)


class Model:
    """Weight files opened and validated (headers only until load())."""

    def __init__(self, paths):
        if isinstance(paths, (str, bytes, os.PathLike)):
            paths = [paths]
        enc = [os.fsencode(p) for p in paths]
        arr = (ctypes.c_char_p * len(enc))(*enc)
        m = ctypes.c_void_p()
        err = ctypes.create_string_buffer(1024)
        r = _lib.ldr_model_open(arr, len(enc), ctypes.byref(m), err, len(err))
        if r < 0:
            raise _err(r, err)
        self._m = m
        self._gguf = {}
        self.stats = None

    def close(self):
        if getattr(self, "_m", None):
            _lib.ldr_model_unref(self._m)
            self._m = None

    def __del__(self):
        self.close()

    def __len__(self):
        return _lib.ldr_model_n_tensors(self._m)

    def _info(self, i):
        ti = _TensorInfo()
        if _lib.ldr_model_tensor(self._m, i, ctypes.byref(ti)) < 0:
            raise IndexError(i)
        return {"name": ti.name.decode(), "dtype": ti.dtype.decode(),
                "shape": tuple(ti.shape[k] for k in range(ti.n_dims)), "size": ti.size,
                "file": os.fsdecode(ti.file), "file_offset": ti.file_offset,
                "device": ti.device, "host": ti.host, "dptr": ti.dptr}

    def names(self):
        return [self._info(i)["name"] for i in range(len(self))]

    def info(self, name):
        return self._info(self._index(name))

    def _index(self, name):
        i = _lib.ldr_model_find(self._m, name.encode())
        if i < 0:
            raise KeyError(name)
        return i

    def load(self, device="cpu", placement=None, flags=0, queue_depth=0, request_size=0,
             workers=0):
        """Read every tensor to `device` ("cpu", "cuda:N"); returns the stats as a dict."""
        o = _Options(device.encode(), placement.encode() if placement else None, flags,
                     queue_depth, request_size, workers)
        st = _Stats()
        err = ctypes.create_string_buffer(1024)
        r = _lib.ldr_model_load(self._m, ctypes.byref(o), ctypes.byref(st), err, len(err))
        if r < 0:
            raise _err(r, err)
        self.stats = {f: getattr(st, f) for f, _ in _Stats._fields_}
        self.stats["backend"] = st.backend.decode()
        return self.stats

    @staticmethod
    def _view(buf, dtype, shape):
        """uint8 bytes -> the tensor's numpy dtype and shape (raw bytes without one)."""
        npdt = _NP_DTYPES.get(dtype)
        if npdt is None:
            return buf
        arr = buf.view(npdt)
        return arr.reshape(shape) if arr.size == int(np.prod(shape, dtype=np.uint64)) else arr

    def __getitem__(self, name):
        i = self._index(name)
        info = self._info(i)
        if info["device"] >= 0:
            return GpuTensor(self, i, info)
        if info["host"] is None and info["size"]:
            raise LoaderError(61, f"{name}: not loaded (call load() first)")
        # The array's base holds the model, so its memory outlives every view.
        buf = np.asarray(_Keeper(self, info["host"], info["size"]))
        return self._view(buf, info["dtype"], info["shape"])

    def items(self):
        for n in self.names():
            yield n, self[n]


class _Keeper:
    """Host bytes the model owns, as an array interface that keeps the model alive."""

    def __init__(self, model, addr, size):
        self._model = model
        self.__array_interface__ = {"shape": (size,), "typestr": "|u1",
                                    "data": (addr or 0, False), "version": 3}


def load_file(path, device="cpu", **kw):
    """Load a safetensors / GGUF / index file; returns {name: numpy array or GpuTensor}."""
    m = Model(path)
    m.load(device=device, **kw)
    return dict(m.items())
