"""Numeric oracles for derivations, and input validation with errors that say what to fix."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

Shape = Sequence[int | None]


def _shape_str(shape: Shape) -> str:
    return "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"


def require_tensor(x: object, name: str, *, shape: Shape | None = None, dtype: torch.dtype | None = None,
                   device: torch.device | str | None = None, finite: bool = False) -> torch.Tensor:
    """Return ``x`` unchanged if it is a tensor with the expected properties, else raise ``ValueError``.

    ``shape`` may contain ``None`` for "any size" in that dimension, e.g. ``(None, 64)`` for (N, 64).
    The message names the argument, what was expected, what came, and how to fix it.
    """
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got {type(x).__name__}; "
                         f"convert with torch.as_tensor({name})")
    if shape is not None:
        ok = x.dim() == len(shape) and all(s is None or s == d for s, d in zip(shape, x.shape))
        if not ok:
            raise ValueError(f"{name}: expected shape {_shape_str(shape)}, got {tuple(x.shape)}")
    if dtype is not None and x.dtype != dtype:
        raise ValueError(f"{name}: expected dtype {dtype}, got {x.dtype}; convert with {name}.to({dtype})")
    if device is not None and x.device.type != torch.device(device).type:
        raise ValueError(f"{name}: expected a tensor on {torch.device(device).type}, got one on "
                         f"{x.device.type}; move it with {name}.to(device)")
    if finite and x.is_floating_point() and not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name}: {bad} of {x.numel()} values are NaN or inf; "
                         "check the computation that produced it (log of 0? division by 0? learning rate too high?)")
    return x


def _as_tensor(v: object) -> torch.Tensor:
    if isinstance(v, torch.Tensor):
        return v.detach()
    return torch.as_tensor(np.asarray(v))  # via NumPy: Python floats stay float64, not torch's float32


def max_abs_error(actual: object, expected: object, *, rtol: float = 1e-7, atol: float = 0.0,
                  name: str = "value") -> float:
    """Like `assert_close` (which it backs), but silent and returning the max abs error."""
    return _close(actual, expected, rtol=rtol, atol=atol, name=name)


def assert_close(actual: object, expected: object, *, rtol: float = 1e-7, atol: float = 0.0,
                 name: str = "value", quiet: bool = False) -> None:
    """Assert ``|actual - expected| <= atol + rtol * |expected|`` elementwise.

    Works on tensors, arrays and scalars of any (equal) shape; compares in float64 on the CPU (complex
    values by their real and imaginary parts, an extra last index 0 / 1 in the message).
    On failure the message gives the worst element, its index and both values. On success one line
    ``✓ name: max |Δ| = ...`` is printed unless ``quiet``. Returns nothing, so that a check ending a
    notebook cell prints only its line; `max_abs_error` returns the error instead.
    """
    max_err = _close(actual, expected, rtol=rtol, atol=atol, name=name)
    if not quiet:
        print(f"✓ {name}: max |Δ| = {max_err:.2e} (rtol {rtol:g}, atol {atol:g})")


def _close(actual: object, expected: object, *, rtol: float, atol: float, name: str) -> float:
    a, e = _as_tensor(actual), _as_tensor(expected)
    if a.shape != e.shape:
        raise AssertionError(f"{name}: shape {tuple(a.shape)} != expected {tuple(e.shape)}")
    if a.is_complex() or e.is_complex():  # real and imaginary parts both compared (a last index 0 / 1)
        a, e = (torch.view_as_real(t.to("cpu", torch.complex128).resolve_conj()) for t in (a, e))
    a, e = a.to("cpu", torch.float64), e.to("cpu", torch.float64)
    if a.numel() == 0:
        return 0.0
    both_nan = torch.isnan(a) & torch.isnan(e)
    if (torch.isnan(a) ^ torch.isnan(e)).any():
        raise AssertionError(f"{name}: NaN where expected is not (or vice versa): "
                             f"{int(torch.isnan(a).sum())} NaN in actual, {int(torch.isnan(e).sum())} in expected")
    diff = torch.where(both_nan | (a == e), torch.zeros_like(a), (a - e).abs())
    excess = diff - (atol + rtol * e.abs())
    worst = int(excess.flatten().argmax())
    max_err = float(diff.max())
    if excess.flatten()[worst] > 0:
        idx = tuple(int(i) for i in torch.unravel_index(torch.tensor(worst), a.shape)) if a.dim() else ()
        raise AssertionError(
            f"{name}: not close at index {idx}: got {a.flatten()[worst].item():.10g}, expected "
            f"{e.flatten()[worst].item():.10g} (|Δ| = {diff.flatten()[worst].item():.3g} > "
            f"atol {atol:g} + rtol {rtol:g}·|expected|); max |Δ| over all = {max_err:.3g}")
    return max_err


def numerical_grad(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Central-difference gradient of a scalar function ``f`` at ``x`` (any shape), in float64.

    Error is O(eps^2) in exact arithmetic; with eps = 1e-6 expect about 1e-9 relative error.
    """
    x = require_tensor(x, "x").detach().to(torch.float64)
    grad = torch.zeros_like(x)
    flat, gflat = x.view(-1), grad.view(-1)
    for i in range(flat.numel()):
        orig = flat[i].item()
        flat[i] = orig + eps
        up = float(f(x))
        flat[i] = orig - eps
        down = float(f(x))
        flat[i] = orig
        gflat[i] = (up - down) / (2 * eps)
    return grad


def grad_check(f: Callable[..., torch.Tensor], inputs: Sequence[torch.Tensor], manual: Sequence[torch.Tensor], *,
               rtol: float = 1e-8, atol: float = 1e-10, name: str = "gradient") -> None:
    """Assert hand-derived gradients ``manual[i] = d f(*inputs) / d inputs[i]`` equal autograd in float64.

    ``f`` maps the inputs to a scalar. Prints one line with the largest abs error over all inputs.
    """
    if len(inputs) != len(manual):
        raise ValueError(f"{name}: {len(inputs)} inputs but {len(manual)} manual gradients")
    leaves = [require_tensor(x, f"inputs[{i}]").detach().to(torch.float64).requires_grad_(True)
              for i, x in enumerate(inputs)]
    out = f(*leaves)
    if out.numel() != 1:
        raise ValueError(f"{name}: f must return a scalar, got shape {tuple(out.shape)}")
    auto = torch.autograd.grad(out, leaves, allow_unused=True)
    worst = 0.0
    for i, (g_auto, g_man) in enumerate(zip(auto, manual)):
        g_auto = torch.zeros_like(leaves[i]) if g_auto is None else g_auto
        worst = max(worst, _close(g_man, g_auto, rtol=rtol, atol=atol, name=f"{name}[{i}]"))
    print(f"✓ {name}: hand-derived = autograd (float64), max |Δ| = {worst:.2e}")


def mc_mean(samples: torch.Tensor) -> tuple[float, float]:
    """Monte Carlo estimate of a mean from samples (N,) or (N, ...): returns (mean, standard error)."""
    s = require_tensor(samples, "samples").detach().to(torch.float64).reshape(len(samples), -1)
    if len(s) < 2:
        raise ValueError(f"samples: need at least 2 samples for a standard error, got {len(s)}")
    per = s.mean(dim=1)
    return float(per.mean()), float(per.std(unbiased=True) / len(per) ** 0.5)


def assert_mc(samples: torch.Tensor, expected: float, *, n_sigma: float = 4.0, name: str = "MC mean") -> None:
    """Assert the Monte Carlo mean of ``samples`` lies within ``n_sigma`` standard errors of ``expected``.

    A correct estimator fails this with probability about 6e-5 at 4σ (normal approximation).
    Prints one line with the estimate and its z-score.
    """
    mean, se = mc_mean(samples)
    z = (mean - expected) / se if se > 0 else (0.0 if mean == expected else float("inf"))
    if abs(z) > n_sigma:
        raise AssertionError(f"{name}: {mean:.6g} ± {se:.2g} is {abs(z):.1f} standard errors from {expected:.6g}")
    print(f"✓ {name}: {mean:.6g} ± {se:.2g} (expected {expected:.6g}, z = {z:+.2f})")
