"""Run-time tracing of the student's calls, inside the sandbox: banned functions, the spec's references,
switching the tracer off, starting threads or processes.

`markers` resolves banned dotted names to what a profile hook can recognise: the code objects of
Python functions, the ids of C functions, ``(type, name)`` of C methods (``Variable._execution_engine
.run_backward``). `watch` installs the hook; the first marked call raises `Banned` into the student's
function, after the verdict is recorded. A reference is recognised by the `fingerprint` of its code
(bytecode and names, not its name, docstring or line numbers), so a renamed copy is caught too.
`aliases` names the outputs that share memory with an input (the ``fresh`` check).
"""
from __future__ import annotations

import hashlib
import importlib
import inspect
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

import torch

TAMPER, THREAD, PROCESS, REFERENCE, FORK_HOOK = "<tamper>", "<thread>", "<process>", "<reference>", "<fork hook>"
SPECIAL = {
    TAMPER: ["sys.setprofile", "sys.settrace", "threading.setprofile", "threading.settrace"],
    THREAD: ["_thread.start_new_thread", "_thread.start_joinable_thread"],
    PROCESS: ["os.fork", "os.forkpty", "os.system", "os.posix_spawn", "os.posix_spawnp", "os.execv", "os.execve",
              "_posixsubprocess.fork_exec"],
}
_setprofile, _getprofile, _tsetprofile = sys.setprofile, sys.getprofile, threading.setprofile
_storage, _ptr, _numel = torch.Tensor.untyped_storage, torch.UntypedStorage.data_ptr, torch.Tensor.numel
_layout, _strided, _sha256 = torch._C.TensorBase.layout.__get__, torch.strided, hashlib.sha256
_Tensor, _Parameter = torch.Tensor, torch.nn.Parameter


def fingerprint(code: Any) -> str:
    """A hash of a code object's bytecode, names and constants other than strings and None (nested code
    included): a renamed copy of a function, with other variable names or another docstring, has the same."""
    def parts(c: Any) -> Iterable[bytes]:
        yield c.co_code
        yield repr((c.co_argcount, c.co_kwonlyargcount, c.co_names)).encode()
        for k in c.co_consts:
            if hasattr(k, "co_code"):
                yield from parts(k)
            elif k is not None and not isinstance(k, (str, bytes)):  # not the docstring (or its absence)
                yield (repr(sorted(map(repr, k))) if isinstance(k, frozenset) else repr(k)).encode()
    return _sha256(b"\0".join(parts(code))).hexdigest()[:32]


class Marks:
    """What the hook recognises: ``codes`` {code: labels}, ``cfuncs`` {id: labels},
    ``methods`` {(type id, name): labels}."""

    def __init__(self) -> None:
        self.codes: dict[Any, list[str]] = {}
        self.cfuncs: dict[int, list[str]] = {}
        self.methods: dict[tuple[int, str], list[str]] = {}
        self.keep: list[Any] = []  # the marked objects stay alive, so their ids stay theirs

    def mark(self, obj: Any, label: str, depth: int = 0) -> None:
        fn = inspect.unwrap(obj) if callable(obj) else obj
        if inspect.ismodule(obj) or isinstance(obj, type):  # a module or class: everything defined in it
            module = obj.__name__ if inspect.ismodule(obj) else obj.__module__
            for v in list(vars(obj).values()):
                v = getattr(v, "__func__", v)
                if depth < 2 and callable(v) and getattr(v, "__module__", None) == module:
                    self.mark(v, label, depth + 1)
        elif hasattr(fn, "__code__"):  # not a code that a factory shares with siblings (F.max_pool1d/2d)
            home = vars(sys.modules.get(fn.__module__, sys))
            if not any(getattr(v, "__code__", None) is fn.__code__ and v is not fn for v in list(home.values())):
                self.codes.setdefault(fn.__code__, []).append(label)
        elif type(obj).__name__ in ("method_descriptor", "wrapper_descriptor"):
            self.methods.setdefault((id(obj.__objclass__), obj.__name__), []).append(label)
            self.keep.append(obj.__objclass__)
        elif callable(obj):  # a builtin such as torch.conv2d: the module keeps it alive, so its id is its own
            self.cfuncs.setdefault(id(obj), []).append(label)
            self.keep.append(obj)


def resolve(dotted: str) -> Any:
    """The object named ``dotted`` (``torch.optim.Adam``), importing the longest module prefix; None if none."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for p in parts[i:]:
            obj = getattr(obj, p, None)
        return obj
    return None


def markers(banned: Iterable[str]) -> tuple[Marks, list[str]]:
    """The `Marks` of ``banned`` and of the `SPECIAL` names, and the banned names that did not resolve."""
    marks, missing = Marks(), []
    for dotted in sorted(set(banned), key=lambda b: -b.count(".")):  # the most precise name first
        obj = resolve(dotted)
        if obj is None:
            missing.append(dotted)
        else:
            marks.mark(obj, dotted)
    for label, names in SPECIAL.items():
        for obj in filter(None, map(resolve, names)):
            marks.mark(obj, label)
    return marks, missing


class Banned(BaseException):
    """Raised into the student's function at its first marked call."""


def watch(marks: Marks, banned: set[str], prints: set[str], hits: list[str]) -> Callable[[], bool]:
    """Trace every call (this thread and threads it starts) until the returned ``stop()``; ``stop()`` is
    True when the hook was removed or replaced meanwhile. Labels found go to ``hits``."""
    stopped: list[Any] = []
    seen: dict[Any, tuple[str, ...]] = {}
    wanted = banned | {TAMPER, THREAD, PROCESS, REFERENCE, FORK_HOOK}

    def labels_of(frame: Any, event: str, arg: Any) -> Iterable[str]:
        if event == "call":
            code = frame.f_code
            if code not in seen:
                seen[code] = tuple(marks.codes.get(code, ())) + ((REFERENCE,) if fingerprint(code) in prints else ())
            return seen[code]
        if event == "c_call":
            found = marks.cfuncs.get(id(arg), [])
            owner = getattr(arg, "__self__", None)
            return found + marks.methods.get((id(type(owner)), getattr(arg, "__name__", "")), []) if owner is not None \
                else found
        return ()

    def hook(frame: Any, event: str, arg: Any) -> None:
        if stopped:
            return
        label = next((lab for lab in labels_of(frame, event, arg) if lab in wanted), None)
        if label:  # the verdict is known: stop the function now
            hits.append(label)
            stopped.append(label)
            raise Banned(label)  # Python unsets a profile hook that raises

    def stop() -> bool:
        intact = _getprofile() is hook or bool(stopped)
        stopped.append(None)
        _setprofile(None)
        _tsetprofile(None)
        return not intact

    _tsetprofile(hook)  # threads the function starts, then this one (in this order: no self-report)
    _setprofile(hook)
    return stop


def aliases(out: Any, kwargs: dict[str, Any]) -> list[str]:
    """Output tensors that share memory with an input tensor (the ``fresh`` check), named."""
    def tensors(v: Any, path: str) -> list[tuple[str, Any]]:  # by identity of types (see `wire._is`)
        kind = type(v)
        if kind is _Tensor or kind is _Parameter:
            return [(path, v)]
        if kind is tuple or kind is list:
            return [t for i, x in enumerate(v) for t in tensors(x, f"{path}[{i}]")]
        if kind is dict:
            return [t for k, x in v.items() for t in tensors(x, f"{path}[{k!r}]")]
        return []
    try:
        ptr = lambda t: _ptr(_storage(t)) if _layout(t) == _strided and _numel(t) else 0  # noqa: E731
        inputs = {ptr(t): n for k, v in kwargs.items() for n, t in tensors(v, k) if ptr(t)}
        return [f"{n} shares memory with the input {inputs[ptr(t)]!r}"[:160] for n, t in tensors(out, "output")
                if ptr(t) in inputs][:8]
    except Exception:  # noqa: BLE001
        return []
