"""mpkit.metrics against independent oracles: brute-force double loops, scipy, closed forms."""
import math

import numpy as np
import pytest
import scipy.linalg
import scipy.stats
import torch

import mpkit as mp
from mpkit import metrics


def _spd(D, gen, scale=1.0):
    A = torch.randn(D, D, generator=gen, dtype=torch.float64)
    return scale * (A @ A.T / D + 0.1 * torch.eye(D, dtype=torch.float64))


def _loop_mean(A, B, f, skip_diagonal):
    """Brute force: the mean of f(‖a_i - b_j‖) over pairs, as two Python loops over NumPy rows."""
    A, B = A.numpy(), B.numpy()
    vals = [f(float(np.sqrt(((a - b) ** 2).sum()))) for i, a in enumerate(A) for j, b in enumerate(B)
            if not (skip_diagonal and i == j)]
    return sum(vals) / len(vals)


def test_module_is_exported():
    assert mp.metrics is metrics


def test_bits_per_dim_against_log2_of_the_density_and_the_uniform_case():
    x = np.random.default_rng(0).normal(size=(50, 3))
    nll = -scipy.stats.norm.logpdf(x).sum(1)                      # nats per example, D = 3
    bits = -scipy.stats.norm.logpdf(x).sum(1) / math.log(2) / 3    # log2 directly, per dimension
    np.testing.assert_allclose(metrics.bits_per_dim(torch.as_tensor(nll), 3).numpy(), bits, rtol=1e-13)
    assert metrics.bits_per_dim(float(nll.mean()), 3) == pytest.approx(bits.mean(), rel=1e-13)
    # the uniform density on [0, 1]^D has NLL 0; rescaled from 8 bits it is the uniform over 256 values: 8 bits
    assert metrics.bits_per_dim(0.0, 784, levels=256) == 8.0
    assert metrics.bits_per_dim(-784 * math.log(2), 784, levels=256) == pytest.approx(7.0, rel=1e-14)
    for bad, match in [(dict(dim=0), "dim must be a positive int"), (dict(dim=2, levels=1), "levels must be")]:
        with pytest.raises(ValueError, match=match):
            metrics.bits_per_dim(1.0, **bad)
    with pytest.raises(ValueError, match="nll must be a float or a tensor"):
        metrics.bits_per_dim("1.0", 2)


def test_frechet_gaussians_against_scipy_sqrtm_and_closed_forms():
    gen = torch.Generator().manual_seed(0)
    for D in (1, 2, 5, 16):
        S1, S2 = _spd(D, gen), _spd(D, gen, scale=3.0)           # random: S1 S2 is not symmetric
        m1, m2 = torch.randn(D, generator=gen, dtype=torch.float64), torch.randn(D, generator=gen, dtype=torch.float64)
        root = scipy.linalg.sqrtm(S1.numpy() @ S2.numpy())        # general (non-symmetric) matrix square root
        expected = float(((m1 - m2) ** 2).sum()) + np.trace(S1.numpy() + S2.numpy() - 2 * np.real(root))
        assert metrics.frechet_gaussians(m1, S1, m2, S2) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    # 1-D: (μ1 - μ2)² + (σ1 - σ2)²
    one = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
    assert metrics.frechet_gaussians(one(1.0), one(4.0)[None], one(-0.5), one(0.25)[None]) == pytest.approx(
        1.5**2 + (2.0 - 0.5) ** 2, rel=1e-14)
    # commuting (diagonal) covariances: Σ_i (√a_i - √b_i)²
    a, b = torch.tensor([1.0, 4.0, 9.0], dtype=torch.float64), torch.tensor([4.0, 1.0, 0.0], dtype=torch.float64)
    zero = torch.zeros(3, dtype=torch.float64)
    assert metrics.frechet_gaussians(zero, torch.diag(a), zero, torch.diag(b)) == pytest.approx(1 + 1 + 9, rel=1e-12)


def test_frechet_distance_of_samples_uses_mean_and_unbiased_covariance():
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(300, 4)), rng.normal(size=(200, 4)) @ rng.normal(size=(4, 4)) + 1.0
    mx, my, Sx, Sy = X.mean(0), Y.mean(0), np.cov(X, rowvar=False), np.cov(Y, rowvar=False)
    expected = ((mx - my) ** 2).sum() + np.trace(Sx + Sy - 2 * np.real(scipy.linalg.sqrtm(Sx @ Sy)))
    assert metrics.frechet_distance(torch.as_tensor(X), torch.as_tensor(Y)) == pytest.approx(expected, rel=1e-9)
    x1 = torch.as_tensor(rng.normal(size=(100, 1)))               # D = 1 works too
    assert metrics.frechet_distance(x1, x1 + 2.0) == pytest.approx(4.0, rel=1e-12)


def test_frechet_errors_name_the_problem():
    m, S = torch.zeros(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64)
    with pytest.raises(ValueError, match="cov1: not symmetric"):
        metrics.frechet_gaussians(m, torch.tensor([[1.0, 0.5], [0.0, 1.0]]), m, S)
    with pytest.raises(ValueError, match="cov2: not positive semi-definite"):
        metrics.frechet_gaussians(m, S, m, torch.tensor([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match=r"cov1: expected shape \(2, 2\), got \(3, 3\)"):
        metrics.frechet_gaussians(m, torch.eye(3), m, S)
    with pytest.raises(ValueError, match="different dimensions"):
        metrics.frechet_gaussians(m, S, torch.zeros(3), torch.eye(3))
    with pytest.raises(ValueError, match="mu1: expected a mean vector"):
        metrics.frechet_gaussians(S, S, m, S)


@pytest.mark.parametrize("unbiased", [True, False])
def test_mmd2_against_a_double_loop(unbiased):
    gen = torch.Generator().manual_seed(2)
    X, Y = torch.randn(7, 3, generator=gen, dtype=torch.float64), 0.5 + torch.randn(5, 3, generator=gen, dtype=torch.float64)
    for widths in (0.7, [0.3, 1.0, 3.0]):
        ws = [widths] if isinstance(widths, float) else widths
        k = lambda d: sum(math.exp(-d * d / (2 * w * w)) for w in ws)  # noqa: E731
        expected = _loop_mean(X, X, k, unbiased) + _loop_mean(Y, Y, k, unbiased) - 2 * _loop_mean(X, Y, k, False)
        assert metrics.mmd2(X, Y, bandwidth=widths, unbiased=unbiased) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("unbiased", [True, False])
def test_energy_distance_against_a_double_loop(unbiased):
    gen = torch.Generator().manual_seed(3)
    X, Y = torch.randn(6, 2, generator=gen, dtype=torch.float64), torch.randn(9, 2, generator=gen, dtype=torch.float64) * 2
    expected = 2 * _loop_mean(X, Y, abs, False) - _loop_mean(X, X, abs, unbiased) - _loop_mean(Y, Y, abs, unbiased)
    assert metrics.energy_distance(X, Y, unbiased=unbiased) == pytest.approx(expected, rel=1e-12)


def test_biased_energy_distance_is_the_square_of_scipys_in_1d():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=400), rng.normal(0.3, 1.5, size=250)
    ours = metrics.energy_distance(torch.as_tensor(x)[:, None], torch.as_tensor(y)[:, None], unbiased=False)
    assert ours == pytest.approx(scipy.stats.energy_distance(x, y) ** 2, rel=1e-10)


def test_blockwise_sums_equal_one_block(monkeypatch):
    gen = torch.Generator().manual_seed(5)
    X, Y = torch.randn(23, 2, generator=gen), torch.randn(17, 2, generator=gen)   # float32 input is accepted
    whole = (metrics.mmd2(X, Y, bandwidth=[0.5, 2.0]), metrics.energy_distance(X, Y))
    monkeypatch.setattr(metrics, "_BLOCK", 4)
    blocks = (metrics.mmd2(X, Y, bandwidth=[0.5, 2.0]), metrics.energy_distance(X, Y))
    assert blocks == pytest.approx(whole, rel=1e-12)


def test_sample_metric_errors_name_the_problem():
    X = torch.zeros(5, 2)
    with pytest.raises(ValueError, match=r"X: expected samples of shape \(N, D\), got \(5,\)"):
        metrics.energy_distance(torch.zeros(5), X)
    with pytest.raises(ValueError, match="same dimension D, got 2 and 3"):
        metrics.mmd2(X, torch.zeros(4, 3), bandwidth=1.0)
    with pytest.raises(ValueError, match="Y: need at least 2 samples, got 1"):
        metrics.energy_distance(X, torch.zeros(1, 2))
    with pytest.raises(ValueError, match="bandwidth must be a positive number"):
        metrics.mmd2(X, X, bandwidth=[1.0, -1.0])
    bad = X.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="X: 1 of 10 values are NaN"):
        metrics.mmd2(bad, X, bandwidth=1.0)
    with pytest.raises(ValueError, match="expected a torch.Tensor, got ndarray"):
        metrics.frechet_distance(np.zeros((3, 2)), X)
