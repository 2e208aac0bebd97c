import math

import numpy as np
import pytest
import torch

import mpkit as mp
from mpkit.check import assert_mc, numerical_grad, require_tensor


def test_require_tensor_messages_name_expected_and_received():
    x = torch.zeros(3, 4)
    assert require_tensor(x, "x", shape=(None, 4), dtype=torch.float32, device="cpu") is x
    with pytest.raises(ValueError, match=r"x: expected shape \(\*, 5\), got \(3, 4\)"):
        require_tensor(x, "x", shape=(None, 5))
    with pytest.raises(ValueError, match="expected dtype torch.float64, got torch.float32"):
        require_tensor(x, "x", dtype=torch.float64)
    with pytest.raises(ValueError, match="expected a torch.Tensor, got ndarray"):
        require_tensor(np.zeros(3), "x")
    with pytest.raises(ValueError, match="1 of 12 values are NaN or inf"):
        require_tensor(x.clone().index_fill_(0, torch.tensor([0]), 0).view(-1).index_fill(0, torch.tensor([5]), float("nan")),
                       "x", finite=True)
    with pytest.raises(ValueError, match="expected a tensor on cuda, got one on cpu"):
        require_tensor(x, "x", device="cuda")


def test_assert_close_passes_and_reports(capsys):
    assert mp.assert_close(torch.tensor([1.0, 2.0]), [1.0, 2.0 + 1e-12], rtol=1e-10, name="pair") is None
    assert "✓ pair: max |Δ| = 1.00e-12" in capsys.readouterr().out
    assert mp.check.max_abs_error([1.0, 2.0], [1.0, 2.5], rtol=1.0) == 0.5


def test_assert_close_failure_names_worst_element():
    with pytest.raises(AssertionError, match=r"v: not close at index \(1, 0\): got 5, expected 4"):
        mp.assert_close(torch.tensor([[1.0], [5.0]]), torch.tensor([[1.0], [4.0]]), rtol=1e-3, name="v")
    with pytest.raises(AssertionError, match="shape"):
        mp.assert_close(torch.zeros(2), torch.zeros(3))
    with pytest.raises(AssertionError, match="NaN"):
        mp.assert_close(torch.tensor([float("nan")]), torch.tensor([1.0]))


def test_numerical_grad_matches_analytic():
    x = torch.randn(5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    g = numerical_grad(lambda v: (v.sin() * v).sum(), x)
    mp.assert_close(g, x.sin() + x * x.cos(), rtol=1e-8, atol=1e-9, quiet=True)


def test_grad_check_accepts_right_and_rejects_wrong_gradient():
    W = torch.randn(3, 2, dtype=torch.float64)
    x = torch.randn(2, dtype=torch.float64)
    f = lambda W, x: torch.tanh(W @ x).sum()  # noqa: E731
    s = 1 - torch.tanh(W @ x) ** 2
    mp.grad_check(f, [W, x], [torch.outer(s, x), W.T @ s])
    with pytest.raises(AssertionError, match=r"gradient\[1\]"):
        mp.grad_check(f, [W, x], [torch.outer(s, x), -W.T @ s])
    with pytest.raises(ValueError, match="2 inputs but 1 manual"):
        mp.grad_check(f, [W, x], [W])


def test_mc_mean_standard_error_and_assert_mc():
    g = torch.Generator().manual_seed(0)
    samples = torch.randn(40_000, generator=g) + 3.0
    mean, se = mp.mc_mean(samples)
    assert se == pytest.approx(1 / math.sqrt(40_000), rel=0.05)
    assert abs(mean - 3.0) < 5 * se
    assert_mc(samples, 3.0)
    with pytest.raises(AssertionError, match="standard errors from 3.1"):
        assert_mc(samples, 3.1)
    with pytest.raises(ValueError, match="at least 2 samples"):
        mp.mc_mean(torch.ones(1))


def test_assert_close_compares_imaginary_parts_too():
    mp.check.assert_close(torch.tensor([0.5j]), torch.tensor([0.5j]), quiet=True)
    with pytest.raises(AssertionError, match="not close"):
        mp.check.assert_close(torch.tensor([0.5j]), torch.tensor([-0.5j]), quiet=True)
    with pytest.raises(AssertionError, match="not close"):
        mp.check.assert_close(torch.tensor([1.0 + 0j]), torch.tensor([1.0 + 1e-3j]), quiet=True)
    mp.check.assert_close(torch.tensor([2.0]), torch.tensor([2.0 + 0j]), quiet=True)   # a real against a complex
