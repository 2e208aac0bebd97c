"""The strict format in which values cross the sandbox boundary: JSON-able nodes and one byte blob.

A value becomes a tree of small nodes (``{"k": "tensor", "dtype": "float64", "shape": [3, 4],
"off": 0, "n": 96}``, ``{"k": "int", "v": 3}``, ``{"k": "tuple", "items": [...]}``) plus the raw
little-endian bytes of its tensors, concatenated. `decode` checks every node (kind, dtype, shape,
byte count against the blob and against a size bound) *before* it reads a byte, and builds only
plain tensors, numbers, strings, tuples, lists and dicts: no pickle, no compression, no code. What
cannot cross (a tensor subclass, an object whose ``==`` lies, a sparse tensor) becomes an
`Unaccepted` value that says what it was, so the feedback can name it.
"""
from __future__ import annotations

import math
import sys
from typing import Any, NamedTuple

import torch

DTYPES = {name: getattr(torch, name) for name in (
    "float16", "bfloat16", "float32", "float64", "complex64", "complex128",
    "uint8", "int8", "int16", "int32", "int64", "bool")}
MAX_DEPTH, MAX_NODES, MAX_ITEMS, MAX_DIMS, MAX_STR = 8, 4096, 1024, 8, 2000
LITTLE = sys.byteorder == "little"
# Bound once, at import: the runner imports this before any student code, so patching torch, math or a
# builtin later changes nothing here (the tensor attributes are read through the C base class's descriptors).
_T, _TB = torch.Tensor, torch._C.TensorBase
_detach, _conj, _neg, _to, _contig, _reshape, _view, _numpy, _numel, _esize = (
    _T.detach, _T.resolve_conj, _T.resolve_neg, _T.to, _T.contiguous, _T.reshape, _T.view, _T.numpy, _T.numel,
    _TB.element_size)
_layout, _dtype, _shape, _device = (_TB.__dict__[n].__get__ for n in ("layout", "dtype", "shape", "device"))
_frombuffer, _empty, _strided, _prod, _isfinite = torch.frombuffer, torch.empty, torch.strided, math.prod, math.isfinite
_bytearray, _memoryview, _list, _len, _str, _repr = bytearray, memoryview, list, len, str, repr
_Parameter = torch.nn.Parameter


def _is(kind: type, *types: type) -> bool:
    """``kind`` is one of ``types``, by identity: comparing with ``==`` could run a metaclass's code."""
    return any(kind is t for t in types)


class WireError(ValueError):
    """A node or blob that does not follow the format (the message says which rule)."""


class Unaccepted(NamedTuple):
    """A value that cannot cross the boundary: ``what`` it was (a type name), ``why`` it was refused."""

    what: str
    why: str


def _tensor_bytes(t: torch.Tensor) -> bytes:
    flat = _reshape(_contig(_to(_neg(_conj(_detach(t))), "cpu")), -1)
    if not _numel(flat):
        return b""
    raw = _view(flat, torch.uint8)
    if not LITTLE and _esize(flat) > 1:  # the format is little-endian everywhere
        raw = _reshape(raw, -1, _esize(flat)).flip(1)
    return _numpy(_reshape(raw, -1)).tobytes()


def _encode_tensor(t: torch.Tensor, blobs: list[bytes], offset: list[int]) -> dict[str, Any]:
    if not _is(type(t), _T, _Parameter):
        name = type.__dict__["__name__"].__get__(type(t))[:80]
        return {"k": "other", "what": name, "why": "a subclass of torch.Tensor"}
    if _layout(t) != _strided:
        return {"k": "other", "what": "Tensor", "why": f"a {_str(_layout(t)).replace('torch.', '')} tensor; "
                "return an ordinary (dense) tensor"}
    dtype = _str(_dtype(t)).replace("torch.", "")
    if dtype not in DTYPES:
        return {"k": "other", "what": "Tensor", "why": f"a tensor of dtype {dtype}"}
    node = {"k": "tensor", "dtype": dtype, "shape": _list(_shape(t)), "device": _device(t).type}
    if node["device"] == "meta":
        return node
    data = _tensor_bytes(t)
    node |= {"off": offset[0], "n": _len(data)}
    blobs.append(data)
    offset[0] += _len(data)
    return node


def encode(value: Any, blobs: list[bytes], offset: list[int] | None = None, depth: int = 0) -> dict[str, Any]:
    """The node of ``value``; the bytes of its tensors are appended to ``blobs`` (offsets from ``offset``)."""
    offset = [sum(map(len, blobs))] if offset is None else offset
    if depth > MAX_DEPTH:
        return {"k": "other", "what": "value", "why": f"nested more than {MAX_DEPTH} levels deep"}
    kind = type(value)
    if value is None or kind is bool:
        return {"k": "none"} if value is None else {"k": "bool", "v": value}
    if kind is int:
        return {"k": "int", "v": value} if abs(value) < 2**63 else {"k": "other", "what": "int", "why": "too large"}
    if kind is float:
        return {"k": "float", "v": value if _isfinite(value) else _repr(value)}
    if kind is str:
        return {"k": "str", "v": value} if len(value) <= MAX_STR else {"k": "other", "what": "str", "why": "too long"}
    if issubclass(kind, _T):  # the real type's MRO: no __class__ or __instancecheck__ of the student's runs
        return _encode_tensor(value, blobs, offset)
    if _is(kind, tuple, list) and _len(value) <= MAX_ITEMS:
        items = [encode(v, blobs, offset, depth + 1) for v in value]
        return {"k": "tuple" if kind is tuple else "list", "items": items}
    if kind is dict and _len(value) <= MAX_ITEMS and all(_is(type(k), str, int) for k in value):
        return {"k": "dict", "items": [[encode(k, blobs, offset, depth + 1), encode(v, blobs, offset, depth + 1)]
                                       for k, v in value.items()]}
    return {"k": "other", "what": type.__dict__["__name__"].__get__(kind)[:80],
            "why": "not a tensor, number, string or container"}


class _Reader:
    """Decoding state: the blob, the bytes still allowed, the nodes seen."""

    def __init__(self, blob: bytes | memoryview, bound: int) -> None:
        self.blob, self.left, self.nodes = _memoryview(blob), bound, 0

    def tensor(self, node: dict[str, Any]) -> torch.Tensor:
        dtype, shape, device = node.get("dtype"), node.get("shape"), node.get("device", "cpu")
        if dtype not in DTYPES or not isinstance(shape, list) or len(shape) > MAX_DIMS or not all(
                type(d) is int and 0 <= d < 2**31 for d in shape):
            raise WireError(f"bad tensor header: dtype {str(dtype)[:20]!r}, shape {str(shape)[:60]}")
        if device == "meta":
            return _empty(shape, dtype=DTYPES[dtype], device="meta")
        numel = _prod(shape)
        want = numel * _esize(_empty((), dtype=DTYPES[dtype]))
        off, n = node.get("off"), node.get("n")
        if device != "cpu" or type(off) is not int or type(n) is not int or n != want:
            raise WireError(f"tensor of {numel} values declares {n!r} bytes on {str(device)[:20]!r}")
        if n > self.left or off < 0 or off + n > len(self.blob):
            raise WireError(f"tensor of {n} bytes exceeds the size bound or the data sent")
        self.left -= n
        if not numel:
            return _empty(shape, dtype=DTYPES[dtype])
        flat = _frombuffer(_bytearray(self.blob[off:off + n]), dtype=torch.uint8)
        if not LITTLE and _numel(flat) != numel:
            flat = _reshape(_reshape(flat, numel, -1).flip(1), -1)
        return _reshape(_view(flat, DTYPES[dtype]), shape)

    def value(self, node: Any, depth: int = 0) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES or depth > MAX_DEPTH + 1 or not isinstance(node, dict):
            raise WireError("too many or too deeply nested values, or a node that is not an object")
        kind, v = node.get("k"), node.get("v")
        if kind == "none":
            return None
        if kind in ("bool", "int", "str") and type(v) is {"bool": bool, "int": int, "str": str}[kind]:
            return v if kind != "str" else v[:MAX_STR]
        if kind == "float" and (type(v) is float or v in ("nan", "inf", "-inf")):
            return float(v)
        if kind == "tensor":
            return self.tensor(node)
        items = node.get("items")
        if kind in ("tuple", "list", "dict") and isinstance(items, list) and len(items) > MAX_ITEMS:
            raise WireError(f"too many items ({len(items)}, at most {MAX_ITEMS})")
        if kind in ("tuple", "list") and isinstance(items, list):
            out = [self.value(x, depth + 1) for x in items]
            return tuple(out) if kind == "tuple" else out
        if kind == "dict" and isinstance(items, list) and all(
                isinstance(p, list) and len(p) == 2 for p in items):
            pairs = [(self.value(k, depth + 1), self.value(x, depth + 1)) for k, x in items]
            if not all(type(k) in (str, int) for k, _ in pairs):
                raise WireError("a dict key that is not a string or an integer")
            return dict(pairs)
        if kind == "other":
            return Unaccepted(str(node.get("what", "?"))[:80], str(node.get("why", ""))[:200])
        raise WireError(f"unknown node kind {str(kind)[:20]!r}")


def decode(node: Any, blob: bytes | memoryview, bound: int) -> Any:
    """The value of ``node`` (tensors read from ``blob``); raises `WireError` if anything is off,
    including tensors that together hold more than ``bound`` bytes."""
    try:
        return _Reader(blob, bound).value(node)
    except (RecursionError, MemoryError, TypeError, OverflowError) as err:
        raise WireError(f"malformed value ({type(err).__name__})") from None


def unaccepted(value: Any) -> list[Unaccepted]:
    """Every `Unaccepted` inside a decoded value (tuples, lists, dict values)."""
    if isinstance(value, Unaccepted):
        return [value]
    if isinstance(value, (tuple, list)):
        return [u for v in value for u in unaccepted(v)]
    if isinstance(value, dict):
        return [u for v in value.values() for u in unaccepted(v)]
    return []
