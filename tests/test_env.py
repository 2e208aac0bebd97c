import random

import numpy as np
import pytest
import torch

import mpkit as mp


def test_profile_defaults_to_quick_on_cpu(monkeypatch):
    monkeypatch.delenv("MP_PROFILE", raising=False)
    monkeypatch.setenv("MP_DEVICE", "cpu")
    assert mp.profile() == "quick" and mp.is_quick()


@pytest.mark.parametrize("value", ["quick", "full", " FULL "])
def test_profile_override(monkeypatch, value):
    monkeypatch.setenv("MP_PROFILE", value)
    assert mp.profile() == value.strip().lower()


def test_profile_rejects_unknown(monkeypatch):
    monkeypatch.setenv("MP_PROFILE", "fast")
    with pytest.raises(ValueError, match="quick.*full"):
        mp.profile()


def test_device_override_and_unavailable_cuda(monkeypatch):
    monkeypatch.setenv("MP_DEVICE", "cpu")
    assert mp.device() == torch.device("cpu")
    if not torch.cuda.is_available():
        monkeypatch.setenv("MP_DEVICE", "cuda")
        with pytest.raises(ValueError, match="CUDA is not available"):
            mp.device()


def test_seed_makes_every_generator_reproducible():
    g = mp.seed(123)
    a = (random.random(), np.random.rand(), torch.rand(3), torch.rand(2, generator=g))
    g = mp.seed(123)
    b = (random.random(), np.random.rand(), torch.rand(3), torch.rand(2, generator=g))
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2]) and torch.equal(a[3], b[3])
    with pytest.raises(ValueError, match="non-negative int"):
        mp.seed(-1)


def test_amp_dtype_is_none_off_gpu():
    assert mp.env.amp_dtype(torch.device("cpu")) is None
    with mp.env.autocast(torch.device("cpu")):
        assert torch.ones(2).dtype == torch.float32


def test_timer_measures_elapsed_time():
    import time

    with mp.Timer() as t:
        time.sleep(0.05)
    assert 0.04 < t.elapsed < 2.0
    assert "elapsed" in repr(t)
    assert "torch" in mp.env.describe()


def test_record_writes_one_json_line_only_when_asked(monkeypatch, tmp_path):
    import json
    monkeypatch.delenv("MP_RECORD_FILE", raising=False)
    entry = mp.record("MLP", seconds=1.5, metric="test accuracy", value=0.96, target=0.95, baseline=0.1)
    assert entry["met"] and entry["profile"] == "quick" and entry["baseline"] == 0.1
    assert not list(tmp_path.iterdir())
    path = tmp_path / "records.jsonl"
    monkeypatch.setenv("MP_RECORD_FILE", str(path))
    mp.record("MLP", seconds=1.5, metric="test accuracy", value=0.96, target=0.95)
    mp.record("VAE", seconds=2, metric="-ELBO (nats)", value=19.0, target=18.5, higher_is_better=False)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["model"], r["met"]) for r in rows] == [("MLP", True), ("VAE", False)]


@pytest.mark.parametrize("bad", [float("nan"), torch.tensor(1.0), None, True])
def test_record_rejects_what_is_not_a_finite_number(bad):
    with pytest.raises(ValueError, match="value must be a finite number"):
        mp.record("MLP", seconds=1.0, metric="acc", value=bad, target=0.9)
