"""The static checks of a submission, on its source only (nothing of it runs in the grader's process).

Two kinds. `banned_in` reads one function, with the notebook functions it calls and the imports and
aliases of the whole notebook, for the names its exercise bans, and `copies_reference` for the
spec's reference functions. `flags` reads the whole notebook for constructs that can hide what code
does from both checks (``exec``, ``globals()``, a computed ``getattr``, ``importlib``, threads,
``torch._C``, ``torch.ops``, ``_fused_*`` kernels, ...): they are not proof of cheating, so they put
the notebook before a human instead of deciding. Cells are read as IPython runs them (magics and
shell escapes transformed, the bodies of ``%%time``-like magics read too).
"""
from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence

from mpkit.exercises.trace import fingerprint

MAGICS_PY = {"time", "timeit", "capture", "prun"}  # magics whose argument or body is Python: read it too
MAGICS_OK = {"pip", "conda", "matplotlib", "config", "load_ext", "reload_ext", "autoreload", "aimport", "precision",
             "pinfo", "pinfo2", "who", "whos", "env", "pwd", "ls", "html", "markdown", "latex", "svg", "javascript"}
CALLS = {"exec": "exec", "eval": "eval", "compile": "compile", "globals": "globals()", "vars": "vars()",
         "locals": "locals()", "__import__": "__import__", "breakpoint": "breakpoint()"}
MODULES = ("importlib", "ctypes", "cffi", "threading", "_thread", "concurrent.futures", "multiprocessing",
           "subprocess", "builtins", "gc", "pty", "posix", "torch._C", "torch.ops", "torch.library",
           "torch.utils.cpp_extension", "mpkit.exercises.trace", "mpkit.exercises._runner", "mpkit.exercises.wire")
DOTTED = MODULES + ("os.register_at_fork", "sys.modules", "sys.setprofile", "sys.settrace", "sys._getframe", "sys.monitoring",
                    "inspect.currentframe", "inspect.stack", "os.fork", "os.forkpty", "os.system", "os.popen",
                    "os.posix_spawn", "os.posix_spawnp", "os.execv", "os.execve", "os.execl", "os.spawnv")
ATTRS = ("register_at_fork", "_execution_engine", "_engine_run_backward", "run_backward", "__globals__", "__builtins__", "__code__",
         "__closure__", "__subclasses__", "__dict__", "f_globals", "f_locals", "f_back", "gi_frame", "cell_contents",
         "input_transformers_post", "input_transformers_cleanup", "ast_transformers", "user_ns", "user_global_ns")


class Unparseable(Exception):
    """A cell the parser cannot take (nested too deeply, or too large): it cannot be checked."""


def python_of(source: str) -> ast.Module | None:
    """The cell as IPython runs it, parsed; None for a syntax error (that cell cannot run either)."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return ast.parse(TransformerManager().transform_cell(source))
    except SyntaxError:
        return None
    except (Exception, MemoryError, RecursionError) as err:  # noqa: BLE001 - whatever the parser chokes on
        raise Unparseable(type(err).__name__) from None


def _literal_getattr(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
            and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str))


def _dotted(node: ast.AST, aliases: dict[str, str], local: set[str] = frozenset()) -> str | None:
    """``torch.optim.Adam`` for ``o.Adam`` after ``import torch.optim as o``; ``getattr(x, "a")`` counts as ``x.a``."""
    parts = []
    while isinstance(node, ast.Attribute) or _literal_getattr(node):
        parts.append(node.attr if isinstance(node, ast.Attribute) else node.args[1].value)
        node = node.value if isinstance(node, ast.Attribute) else node.args[0]
    if isinstance(node, ast.Name) and node.id in aliases and node.id not in local:
        return ".".join([aliases[node.id], *reversed(parts)])
    return None


def _aliases(trees: Iterable[ast.Module]) -> tuple[dict[str, str], dict[str, ast.FunctionDef]]:
    """Import aliases and simple assignments of the whole notebook, and its top-level functions."""
    aliases, defs = {"torch": "torch"}, {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                aliases |= {a.asname or a.name.split(".")[0]: a.name if a.asname else a.name.split(".")[0]
                            for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                aliases |= {a.asname or a.name: f"{node.module}.{a.name}" for a in node.names}
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                defs[node.name] = node
            elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                if (d := _dotted(node.value, aliases)) is not None:
                    aliases[node.targets[0].id] = d
    return aliases, defs


def _reachable(defs: dict[str, ast.FunctionDef], fn: str) -> list[tuple[ast.FunctionDef, set[str]]]:
    """``fn`` and every notebook function it names, each with its local names."""
    out, todo, seen = [], [fn], set()
    while todo:
        if (name := todo.pop()) in seen or name not in defs:
            continue
        seen.add(name)
        local = {a.arg for a in ast.walk(defs[name].args) if isinstance(a, ast.arg)} | {
            n.id for n in ast.walk(defs[name]) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        out.append((defs[name], local))
        todo += [n.id for n in ast.walk(defs[name]) if isinstance(n, ast.Name) and n.id in defs and n.id not in local]
    return out


def banned_in(trees: Sequence[ast.Module], fn: str, banned: Sequence[str]) -> list[str]:
    """Banned names that ``fn``, or a notebook function it calls, refers to in its source.

    Imports and simple assignments anywhere in the notebook are aliases (``from torch.optim import
    Adam as A``); a banned ``torch.Tensor.X`` is any ``.X`` of an unknown object (``loss.backward()``).
    """
    aliases, defs = _aliases(trees)
    found = set()
    for fdef, local in _reachable(defs, fn):
        for node in ast.walk(fdef):
            d = _dotted(node, aliases, local)
            found |= {b for b in banned if d and (d == b or d.startswith(b + "."))}
            found |= {b for b in banned if b.startswith("torch.Tensor.") and isinstance(node, ast.Attribute)
                      and d is None and node.attr == b.rsplit(".", 1)[1]}
    return sorted(found)


def copies_reference(trees: Sequence[ast.Module], fn: str, prints: set[str], names: Sequence[str]) -> list[str]:
    """Functions reachable from ``fn`` that are a spec's reference: by name, or by the fingerprint of their code."""
    _, defs = _aliases(trees)
    found = []
    for fdef, local in _reachable(defs, fn):
        found += [n.id for n in ast.walk(fdef) if isinstance(n, ast.Name) and n.id in names and n.id not in local
                  and n.id not in defs]
        try:
            module = compile(ast.Module([fdef], []), "<submission>", "exec")
            code = next(c for c in module.co_consts if hasattr(c, "co_code"))
            found += [fdef.name] if fingerprint(code) in prints else []
        except (Exception, MemoryError, RecursionError):  # noqa: BLE001 - then the run-time check decides
            pass
    return sorted(set(found))


def _magic(call: ast.Call) -> tuple[str, str, ast.AST | None]:
    """``(kind, name, body)`` of a transformed magic ``get_ipython().run_line_magic('time', 'x')``."""
    f = call.func
    if not (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Call) and isinstance(f.value.func, ast.Name)
            and f.value.func.id == "get_ipython"):
        return "", "", None
    args = [a.value if isinstance(a, ast.Constant) and isinstance(a.value, str) else None for a in call.args]
    name = args[0] if args and args[0] is not None else "?"
    body = args[-1] if f.attr in ("run_line_magic", "run_cell_magic") and len(args) >= 2 else None
    return f.attr, name, body


def _node_flags(node: ast.AST, aliases: dict[str, str], in_def: bool) -> Iterable[str]:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in CALLS:
        yield CALLS[node.func.id]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in (
            "getattr", "setattr", "delattr", "hasattr") and len(node.args) >= 2 and not (
            isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
        yield f"{node.func.id} with a computed name"
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        yield from (f"import {n}" for n in names if any(n == m or n.startswith(m + ".") for m in MODULES))
        if isinstance(node, ast.ImportFrom):
            yield from (f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in DOTTED)
    if isinstance(node, (ast.Attribute, ast.Name)) or _literal_getattr(node):
        name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) \
            else node.args[1].value
        d = _dotted(node, aliases) or ""
        yield from (m for m in DOTTED if d == m)
        if name.startswith("_fused_") or name in ATTRS:
            yield name
    if isinstance(node, ast.Call):
        kind, name, _ = _magic(node)
        if kind in ("system", "getoutput") and in_def:
            yield "a shell command inside a function"
        elif kind in ("run_line_magic", "run_cell_magic") and name not in MAGICS_PY | MAGICS_OK:
            yield f"the magic %{name}"
        elif kind and kind not in ("system", "getoutput", "run_line_magic", "run_cell_magic"):
            yield f"get_ipython().{kind}"


def flags(tree: ast.Module, aliases: dict[str, str], depth: int = 0) -> list[str]:
    """What in one parsed cell needs a human's eyes (empty: nothing)."""
    found: list[str] = []
    membership = {id(c.comparators[0]) for c in ast.walk(tree) if isinstance(c, ast.Compare)
                  and isinstance(c.ops[0], (ast.In, ast.NotIn))}  # `"google.colab" in sys.modules` is fine
    in_def = {id(n) for d in ast.walk(tree) if isinstance(d, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
              for n in ast.walk(d)}
    for node in ast.walk(tree):
        if id(node) not in membership:
            found += _node_flags(node, aliases, id(node) in in_def)
        if isinstance(node, ast.Call) and (body := _magic(node)[2]) is not None and _magic(node)[1] in MAGICS_PY:
            try:
                inner = python_of(body) if depth < 3 else None
            except Unparseable:
                inner = None
            found += flags(inner, aliases, depth + 1) if inner is not None else []
    return list(dict.fromkeys(found))
