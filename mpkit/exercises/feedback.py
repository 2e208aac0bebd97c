"""Feedback: compare an answer with the expected value and name the symptom of what is wrong.

`problems` returns ``Problem(symptom, text)`` items; the symptom (`SYMPTOMS`) lets the caller choose
a hint for *this* mistake (a flipped sign, a constant factor such as a missing 1/B, a transpose, NaN
from an overflow) instead of one fixed hint per exercise.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import torch

SYMPTOMS = {  # symptom: the generic hint when the exercise gives none of its own
    "type": "return what the task asks for: torch tensors, Python numbers, or a tuple of them",
    "shape": "compare the shape you return with the one the task states",
    "transpose": "the result is the transpose of the expected one: check the order of a matrix product",
    "dtype": "keep the input's dtype (float64 stays float64: no .float(), no torch.tensor(python_list))",
    "device": "return the result on the device of the inputs",
    "nan": "NaN or inf appear: an exp or a division overflows; subtract the maximum before exp, avoid 0/0",
    "sign": "every value has the wrong sign",
    "factor": "every value is off by the same factor: a missing or extra constant such as 1/B or 2",
    "some": "most values are right: look at the elements named above (an edge case, the first or last step?)",
    "values": "the values differ from the reference",
    "inplace": "an input was modified: compute new tensors (x = x + 1, not x += 1 or x.add_(1))",
    "alias": "an output shares memory with an input: return a new tensor (e.g. .clone())",
    "raised": "your function raised an exception on this input",
}


class Problem(NamedTuple):
    """One thing wrong with an answer: its ``symptom`` (a key of `SYMPTOMS`) and a sentence."""

    symptom: str
    text: str


def _describe(v: Any) -> str:
    if isinstance(v, torch.Tensor):
        return f"tensor{tuple(v.shape)} {str(v.dtype).replace('torch.', '')}"
    return type(v).__name__ if not isinstance(v, (int, float)) else repr(v)


def _pair(a: float, e: float) -> tuple[str, str]:
    """Both numbers with as many digits as it takes to tell them apart (up to 17)."""
    for digits in range(6, 18):
        sa, se = f"{a:.{digits}g}", f"{e:.{digits}g}"
        if sa != se:
            break
    return sa, se


def _factor(a: torch.Tensor, e: torch.Tensor, rtol: float, atol: float) -> float | None:
    """The constant c with a = c·e elementwise (within the tolerance), if there is one and c != 1."""
    nz = e.abs() > max(atol, 1e-300)
    if int(nz.sum()) == 0:
        return None
    c = float((a[nz] / e[nz]).median())
    if c == 0 or abs(c - 1) < 1e-9 or not (a - c * e).abs().le(atol + rtol * (c * e).abs() + 1e-12 * a.abs()).all():
        return None
    return c


def _values(a: torch.Tensor, e: torch.Tensor, rtol: float, atol: float, label: str) -> list[Problem]:
    """``a``, ``e``: float64 CPU tensors of one shape. NaN must sit where NaN is expected, values within tolerance."""
    nan_a, nan_e = torch.isnan(a), torch.isnan(e)
    if (nan_a != nan_e).any():
        extra, missing = int((nan_a & ~nan_e).sum()), int((nan_e & ~nan_a).sum())
        where = [f"{extra} NaN where the expected value is a number"] if extra else []
        where += [f"a number in {missing} places where NaN is expected"] if missing else []
        return [Problem("nan", f"{label}: {' and '.join(where)} (of {a.numel()} values)")]
    both_nan = nan_a & nan_e
    a, e = torch.where(both_nan, 0.0, a), torch.where(both_nan, 0.0, e)
    if not torch.isfinite(a).all() and torch.isfinite(e).all():
        return [Problem("nan", f"{label}: {int((~torch.isfinite(a)).sum())} of {a.numel()} values are NaN/inf")]
    same = (a == e)  # also equal infinities
    err = torch.where(same, 0.0, (a - e).abs())
    excess = err - (atol + rtol * e.abs())
    bad = excess > 0
    if not bad.any():
        return []
    worst = int(torch.where(bad, excess, torch.tensor(-float("inf"), dtype=a.dtype)).flatten().argmax())
    idx = tuple(int(i) for i in torch.unravel_index(torch.tensor(worst), a.shape)) if a.dim() else ()
    av, ev, dv = a.flatten()[worst].item(), e.flatten()[worst].item(), err.flatten()[worst].item()
    sa, se = _pair(av, ev)
    rel = f", relative error {dv / abs(ev):.3g}" if ev != 0 else " (the expected value is 0)"
    at = f" at index {idx}" if idx else ""
    detail = f"got {sa}, expected {se}{at}: |Δ| = {dv:.3g}{rel} > tolerance (atol {atol:g} + rtol {rtol:g}·|expected|)"
    n_bad, n = int(bad.sum()), a.numel()
    if a.dim() == 2 and a.shape[0] == a.shape[1] > 1 and torch.allclose(a, e.T, rtol=rtol, atol=atol):
        return [Problem("transpose", f"{label}: the transpose of the expected matrix; {detail}")]
    if (c := _factor(a, e, rtol, atol)) is not None and (abs(c + 1) < 1e-9 or int((e != 0).sum()) >= 2):
        if abs(c + 1) < 1e-9:
            return [Problem("sign", f"{label}: every value has the opposite sign; {detail}")]
        return [Problem("factor", f"{label}: every value is {c:.6g} × the expected one"
                        f"{f' (= 1/{1 / c:.4g})' if abs(c) < 1 else ''}; {detail}")]
    if n == 1:
        return [Problem("values", f"{label}: {detail}")]
    symptom = "some" if n_bad <= max(1, n // 4) else "values"
    return [Problem(symptom, f"{label}: {n_bad} of {n} values wrong; worst {detail}")]


def problems(actual: Any, expected: Any, *, rtol: float, atol: float, label: str = "output") -> list[Problem]:
    """What is wrong with ``actual`` against ``expected`` (empty: it matches). In order: structure, type,
    shape, dtype, device, NaN placement, then values with ``|a - e| <= atol + rtol·|e|``."""
    if isinstance(expected, (tuple, list)):
        if type(actual) not in (tuple, list) or len(actual) != len(expected):
            return [Problem("type", f"{label}: expected a tuple of {len(expected)} values, got {_describe(actual)}"
                            + (f" of length {len(actual)}" if type(actual) in (tuple, list) else ""))]
        return [p for i, (a, e) in enumerate(zip(actual, expected))
                for p in problems(a, e, rtol=rtol, atol=atol, label=f"{label}[{i}]")]
    if isinstance(expected, torch.Tensor):
        if type(actual) is not torch.Tensor and not isinstance(actual, torch.nn.Parameter):
            return [Problem("type", f"{label}: expected a torch.Tensor, got {type(actual).__name__}")]
        if actual.layout != torch.strided:
            return [Problem("type", f"{label}: a {actual.layout} tensor; return an ordinary (dense) tensor")]
        if actual.shape != expected.shape:
            t = actual.dim() == 2 and tuple(actual.shape) == tuple(expected.shape)[::-1]
            return [Problem("transpose" if t else "shape",
                            f"{label}: shape {tuple(actual.shape)}, expected {tuple(expected.shape)}"
                            + (" (transposed?)" if t else ""))]
        if actual.dtype != expected.dtype:
            return [Problem("dtype", f"{label}: dtype {actual.dtype}, expected {expected.dtype} (keep the input's dtype)")]
        if actual.device.type != expected.device.type:
            return [Problem("device", f"{label}: on {actual.device}, expected on {expected.device}")]
        if expected.dtype == torch.bool or not (expected.is_floating_point() or expected.is_complex()):
            a, e = actual.detach().cpu(), expected.detach().cpu()
            if torch.equal(a, e):
                return []
            n_bad = int((a != e).sum())
            return [Problem("values", f"{label}: {n_bad} of {a.numel()} entries differ (exact comparison)")]
        a, e = actual.detach().to("cpu", torch.float64), expected.detach().to("cpu", torch.float64)
    elif isinstance(expected, (int, float)) and not isinstance(expected, bool):
        if isinstance(actual, torch.Tensor) and type(actual) is torch.Tensor and actual.numel() == 1:
            actual = actual.item()
        if type(actual) not in (int, float, bool):
            return [Problem("type", f"{label}: expected a number, got {type(actual).__name__}")]
        a, e = torch.tensor(float(actual), dtype=torch.float64), torch.tensor(float(expected), dtype=torch.float64)
    else:
        return [] if actual == expected else [Problem("values", f"{label}: got {actual!r}, expected {expected!r}")]
    return _values(a, e, rtol, atol, label) if a.numel() else []


def compare(actual: Any, expected: Any, *, rtol: float, atol: float, label: str = "output") -> list[str]:
    """The sentences of `problems` (an empty list: ``actual`` matches ``expected``)."""
    return [p.text for p in problems(actual, expected, rtol=rtol, atol=atol, label=label)]


def _tensors(v: Any, path: str) -> list[tuple[str, torch.Tensor]]:
    """Every tensor inside ``v`` (nested tuples, lists, dicts) with a name such as ``grads[1]``."""
    if isinstance(v, torch.Tensor):
        return [(path, v)]
    if isinstance(v, (tuple, list)):
        return [t for i, x in enumerate(v) for t in _tensors(x, f"{path}[{i}]")]
    if isinstance(v, Mapping):
        return [t for k, x in v.items() for t in _tensors(x, f"{path}[{k!r}]")]
    return []


def changed_inputs(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Names of the tensors (also inside tuples, lists and dicts) that differ between two copies of the arguments."""
    old = dict(t for k, v in before.items() for t in _tensors(v, k))
    new = dict(t for k, v in after.items() for t in _tensors(v, k))
    return [name for name, t in old.items() if not _identical(new.get(name), t)]


def _identical(n: Any, t: torch.Tensor) -> bool:
    if type(n) is not torch.Tensor or n.shape != t.shape or n.dtype != t.dtype or n.device != t.device:
        return False
    if t.is_floating_point() or t.is_complex():  # NaN equals NaN here: it was there before the call
        return torch.equal(torch.isnan(n), torch.isnan(t)) and torch.equal(n.nan_to_num(0.0), t.nan_to_num(0.0))
    return torch.equal(n, t)


def aliased_outputs(output: Any, kwargs: Mapping[str, Any]) -> list[str]:
    """``"output[i] shares memory with 'x'"`` for each output tensor that is (a view of) an input tensor."""
    def ptr(t: torch.Tensor) -> int:
        return t.untyped_storage().data_ptr() if t.layout == torch.strided and t.numel() else 0

    inputs = {ptr(t): name for k, v in kwargs.items() for name, t in _tensors(v, k) if ptr(t)}
    return [f"{name} shares memory with the input {inputs[ptr(t)]!r}"
            for name, t in _tensors(output, "output") if ptr(t) in inputs]


def hint_for(symptoms: list[str], hints: Mapping[str, str], default: str) -> str:
    """The hint for the first symptom the exercise has a hint for; else the exercise's general hint;
    else the generic hint of the first symptom."""
    for s in symptoms:
        if s in hints:
            return hints[s]
    if default:
        return default
    return SYMPTOMS.get(symptoms[0], "") if symptoms else ""
