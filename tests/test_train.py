import pytest
import torch
import torch.nn.functional as F

import mpkit as mp


def _mlp():
    return torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))


def test_fit_learns_digits_and_records_history():
    g = mp.seed(0)
    data = mp.digits(dev="cpu")
    model = _mlp()
    h = mp.fit(model, data, epochs=8, optimizer=torch.optim.Adam(model.parameters(), 3e-3), generator=g,
               progress=False)
    assert len(h) == 8 and h["epoch"] == list(range(1, 9))
    assert h["train_loss"][-1] < h["train_loss"][0] / 3  # it learned, not merely ran
    assert h.last("test_acc") >= 0.93 and h.best("test_loss", "min") <= h["test_loss"][0]
    assert mp.evaluate(model, data.X_test, data.y_test)["acc"] == pytest.approx(h.last("test_acc"))
    with pytest.raises(KeyError, match="available"):
        h["nope"]


def test_fit_rejects_mismatched_devices_and_bad_data():
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), 0.1)
    with pytest.raises(ValueError, match="must be an mpkit Split"):
        mp.fit(model, (torch.zeros(2, 64), torch.zeros(2)), epochs=1, optimizer=opt)
    data = mp.digits(dev="cpu")
    bad = mp.Split(torch.full_like(data.X_train, float("nan")), data.y_train, data.X_test, data.y_test)
    with pytest.raises(ValueError, match="NaN or inf"):
        mp.fit(model, bad, epochs=1, optimizer=opt, progress=False)
    if torch.cuda.is_available():
        with pytest.raises(ValueError, match="is on"):
            mp.fit(model.cuda(), data, epochs=1, optimizer=opt, progress=False)


def test_fit_stops_on_diverging_loss():
    model = _mlp()
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        mp.fit(model, mp.digits(dev="cpu"), epochs=3, optimizer=torch.optim.SGD(model.parameters(), 1e12),
               progress=False)


def test_accuracy_checks_shapes():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    assert mp.accuracy(logits, torch.tensor([0, 1, 1])) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match=r"y: expected shape \(3\)"):
        mp.accuracy(logits, torch.tensor([0, 1]))


def test_evaluate_regression_has_no_accuracy():
    model = torch.nn.Linear(3, 1)
    out = mp.evaluate(model, torch.randn(5, 3), torch.randn(5, 1), loss_fn=F.mse_loss)
    assert set(out) == {"loss"}


def test_fit_with_amp_off_gpu_trains_exactly_as_without():
    """On a CPU autocast is a no-op (mp.env.amp_dtype is None), so the amp step must match the plain one."""
    data, runs = mp.digits(dev="cpu"), []
    for amp in (False, True):
        torch.manual_seed(0)
        model = _mlp()
        h = mp.fit(model, data, epochs=2, optimizer=torch.optim.SGD(model.parameters(), 0.1), amp=amp,
                   generator=torch.Generator().manual_seed(1), progress=False)
        runs.append((h["train_loss"], [p.detach().clone() for p in model.parameters()]))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))
