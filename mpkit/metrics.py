"""Metrics for generative models: bits per dimension, the Fréchet distance, kernel MMD² and the energy distance.

The distances are computed in float64 and returned as Python floats. The sample-based ones take two
sets of points ``X`` (N, D) and ``Y`` (M, D) and cost O(N·M) time; memory stays O(block·M) because the
pairwise terms are summed in row blocks.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from mpkit.check import require_tensor

_BLOCK = 2048  # rows of the pairwise-distance matrix held in memory at once


def bits_per_dim(nll: float | torch.Tensor, dim: int, *, levels: int | None = None) -> float | torch.Tensor:
    """Negative log-likelihood in nats per example -> bits per dimension.

    ``nll``: a float or a tensor of any shape (converted elementwise), in nats per example; ``dim``: the
    number of dimensions D of one example. Returns ``nll / (D ln 2)``. With ``levels`` (256 for 8-bit
    data) the density was fitted to discrete values k in {0, …, levels-1} rescaled to [0, 1] as
    x = (k + u) / levels with u ~ U[0, 1) (uniform dequantisation); the rescaling's Jacobian adds
    log2(levels) bits per dimension. For the NLL of dequantised data the result bounds the bits/dim of
    the discrete model the density implies from above (Jensen's inequality).
    """
    if not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be a positive int (the number of dimensions per example), got {dim!r}")
    if levels is not None and (not isinstance(levels, int) or levels < 2):
        raise ValueError(f"levels must be an int >= 2 (256 for 8-bit data) or None, got {levels!r}")
    if isinstance(nll, torch.Tensor):
        nll = nll.to(torch.float64)
    elif not isinstance(nll, (int, float)):
        raise ValueError(f"nll must be a float or a tensor of NLLs in nats, got {type(nll).__name__}")
    return nll / (dim * math.log(2)) + (math.log2(levels) if levels is not None else 0.0)


def _psd_sqrt(S: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of a symmetric PSD matrix (D, D) by its eigendecomposition."""
    lam, V = torch.linalg.eigh(S)
    return (V * lam.clamp_min(0).sqrt()) @ V.T


def _check_gaussian(mu: object, cov: object, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    mu = require_tensor(mu, f"mu{name}", finite=True).to("cpu", torch.float64)
    if mu.dim() != 1:
        raise ValueError(f"mu{name}: expected a mean vector of shape (D,), got {tuple(mu.shape)}")
    cov = require_tensor(cov, f"cov{name}", shape=(len(mu), len(mu)), finite=True).to("cpu", torch.float64)
    scale = max(float(cov.abs().max()), 1e-300)
    if float((cov - cov.T).abs().max()) > 1e-8 * scale:
        raise ValueError(f"cov{name}: not symmetric (max |Σ - Σᵀ| = {float((cov - cov.T).abs().max()):.2e}); "
                         "pass a covariance matrix, e.g. torch.cov(X.T)")
    if float(torch.linalg.eigvalsh(cov).min()) < -1e-8 * scale:
        raise ValueError(f"cov{name}: not positive semi-definite (smallest eigenvalue "
                         f"{float(torch.linalg.eigvalsh(cov).min()):.2e})")
    return mu, (cov + cov.T) / 2


def frechet_gaussians(mu1: torch.Tensor, cov1: torch.Tensor, mu2: torch.Tensor, cov2: torch.Tensor) -> float:
    """Squared Fréchet (2-Wasserstein) distance between N(mu1, cov1) and N(mu2, cov2).

    ``mu*``: (D,), ``cov*``: (D, D) symmetric positive semi-definite. Returns
    ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁^½ Σ₂ Σ₁^½)^½, which equals the usual
    tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^½): Σ₁Σ₂ and Σ₁^½ Σ₂ Σ₁^½ have the same eigenvalues, and the symmetric form
    needs no general matrix square root. In the units of the data, squared.
    """
    mu1, cov1 = _check_gaussian(mu1, cov1, "1")
    mu2, cov2 = _check_gaussian(mu2, cov2, "2")
    if len(mu1) != len(mu2):
        raise ValueError(f"the two Gaussians have different dimensions: {len(mu1)} and {len(mu2)}")
    root1 = _psd_sqrt(cov1)
    middle = root1 @ cov2 @ root1
    cross = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0).sqrt().sum()
    return float((mu1 - mu2).square().sum() + cov1.trace() + cov2.trace() - 2 * cross)


def _check_samples(X: object, Y: object, min_n: int) -> tuple[torch.Tensor, torch.Tensor]:
    X = require_tensor(X, "X", finite=True)
    Y = require_tensor(Y, "Y", finite=True)
    for t, name in ((X, "X"), (Y, "Y")):
        if t.dim() != 2:
            raise ValueError(f"{name}: expected samples of shape (N, D), got {tuple(t.shape)}; "
                             f"flatten each sample, e.g. {name}.flatten(1)")
        if len(t) < min_n:
            raise ValueError(f"{name}: need at least {min_n} samples, got {len(t)}")
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"X and Y must have the same dimension D, got {X.shape[1]} and {Y.shape[1]}")
    if X.device != Y.device:
        raise ValueError(f"X is on {X.device} but Y on {Y.device}; move both with .to(device)")
    return X.to(torch.float64), Y.to(torch.float64)


def frechet_distance(X: torch.Tensor, Y: torch.Tensor) -> float:
    """`frechet_gaussians` between Gaussians fitted to samples ``X`` (N, D) and ``Y`` (M, D).

    Mean and unbiased covariance of each set; on classifier features this is the FID. The plug-in
    estimate is biased upwards: two samples of one distribution give a positive value of order D²/N.
    """
    X, Y = _check_samples(X, Y, min_n=2)
    return frechet_gaussians(X.mean(0), torch.cov(X.T).reshape(X.shape[1], -1),
                             Y.mean(0), torch.cov(Y.T).reshape(Y.shape[1], -1))


def _pair_mean(A: torch.Tensor, B: torch.Tensor, f: Callable[[torch.Tensor], torch.Tensor], same: bool) -> torch.Tensor:
    """Mean of f(‖a_i − b_j‖) over all pairs (i, j), or over i ≠ j when ``same`` (A is B)."""
    total = A.new_zeros(())
    for start in range(0, len(A), _BLOCK):
        # direct differences, not ‖a‖² + ‖b‖² − 2a·b: exact zeros on the diagonal, no cancellation
        dist = torch.cdist(A[start:start + _BLOCK], B, compute_mode="donot_use_mm_for_euclid_dist")
        total = total + f(dist).sum()
    if same:  # remove the diagonal i = j, where the distance is exactly 0
        return (total - len(A) * f(A.new_zeros(()))) / (len(A) * (len(A) - 1))
    return total / (len(A) * len(B))


def mmd2(X: torch.Tensor, Y: torch.Tensor, *, bandwidth: float | Sequence[float], unbiased: bool = True) -> float:
    """Squared maximum mean discrepancy with the Gaussian kernel k(x, y) = exp(−‖x − y‖² / (2ℓ²)).

    ``X``: (N, D), ``Y``: (M, D) samples; ``bandwidth``: ℓ, or several (the kernel is then the sum of
    one Gaussian kernel per ℓ). ``unbiased=True``: the U-statistic of Gretton et al. (2012), which leaves
    out the pairs i = j within each set; its mean over repeated samples is exactly MMD², so it can be
    negative when the two distributions are equal. ``unbiased=False``: the V-statistic (all pairs), ≥ 0
    but biased upwards by (k(x, x) − E k(x, x'))/N + (k(y, y) − E k(y, y'))/M.
    """
    X, Y = _check_samples(X, Y, min_n=2 if unbiased else 1)
    widths = [bandwidth] if isinstance(bandwidth, (int, float)) else list(bandwidth)
    if not widths or not all(isinstance(w, (int, float)) and w > 0 for w in widths):
        raise ValueError(f"bandwidth must be a positive number or a non-empty list of them, got {bandwidth!r}")

    def kernel(d: torch.Tensor) -> torch.Tensor:
        return sum(torch.exp(-d.square() / (2 * w * w)) for w in widths)

    return float(_pair_mean(X, X, kernel, unbiased) + _pair_mean(Y, Y, kernel, unbiased)
                 - 2 * _pair_mean(X, Y, kernel, False))


def energy_distance(X: torch.Tensor, Y: torch.Tensor, *, unbiased: bool = True) -> float:
    """Energy distance 2 E‖X − Y‖ − E‖X − X′‖ − E‖Y − Y′‖ (Székely & Rizzo) between samples.

    ``X``: (N, D), ``Y``: (M, D); in the units of the data (not squared). It is 0 exactly when the
    distributions are equal; its square root is a metric. ``unbiased=True`` averages the within-set
    distances over the N(N − 1) pairs i ≠ j (mean 0 for equal distributions, so it can be negative);
    ``unbiased=False`` divides by N², and then in 1-D it is the square of
    ``scipy.stats.energy_distance(x, y)``.
    """
    X, Y = _check_samples(X, Y, min_n=2 if unbiased else 1)
    ident = lambda d: d  # noqa: E731
    return float(2 * _pair_mean(X, Y, ident, False) - _pair_mean(X, X, ident, unbiased)
                 - _pair_mean(Y, Y, ident, unbiased))
