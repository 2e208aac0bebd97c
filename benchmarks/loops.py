"""The same training written three ways, timed side by side: `mp.fit`, a plain DataLoader loop, a minimal loop.

Every variant trains the same model from the same initial weights on the same resident data for the same
number of epochs with the same optimiser and evaluates on the test set after each epoch, as `mp.fit` does;
only the plumbing differs. Rounds are interleaved (the order rotates every round) so that a slow spell of a
shared machine falls on all variants alike; each ratio is the median over rounds of the per-round ratio,
reported with its minimum and maximum. On a CPU the times are the process's CPU time (see `interleaved`).
"""
from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import mpkit as mp

Variant = Callable[[torch.nn.Module, mp.Split, int, int], None]


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _adam(model: torch.nn.Module) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=1e-3)


def with_fit(model, data, epochs, batch_size, amp=False):
    mp.fit(model, data, epochs=epochs, optimizer=_adam(model), batch_size=batch_size, progress=False, amp=amp,
           generator=torch.Generator().manual_seed(0))


def with_dataloader(model, data, epochs, batch_size):
    """The textbook loop: a TensorDataset in a shuffling DataLoader (no workers: the data are resident)."""
    opt = _adam(model)
    loader = DataLoader(TensorDataset(data.X_train, data.y_train), batch_size=batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    for _ in range(epochs):
        model.train()
        total = 0.0
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(xb)
        mp.evaluate(model, data.X_test, data.y_test)


def with_minimal_loop(model, data, epochs, batch_size):
    """The least a loop can do: one permutation per epoch, slices of resident tensors, no bookkeeping."""
    opt = _adam(model)
    gen = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(data.X_train), generator=gen).to(data.X_train.device)
        X, y = data.X_train[perm], data.y_train[perm]
        for xb, yb in zip(X.split(batch_size), y.split(batch_size)):
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        mp.evaluate(model, data.X_test, data.y_test)


def compiled(variant: Variant) -> Variant:
    """``variant`` on ``torch.compile(model)``; the compilation is inside the timed call."""
    def run(model, data, epochs, batch_size):
        variant(torch.compile(model), data, epochs, batch_size)
    return run


def interleaved(variants: dict[str, Variant], make_model: Callable[[], torch.nn.Module], data: mp.Split, *,
                epochs: int, batch_size: int, rounds: int) -> dict[str, list[float]]:
    """Seconds per round of every variant; round r starts at variant r mod len(variants)."""
    dev = data.X_train.device
    # On a CPU the process's CPU time (one thread: OMP_NUM_THREADS=1 in make), which other jobs on a shared
    # machine do not inflate; on a GPU wall-clock time after synchronising.
    clock = time.process_time if dev.type == "cpu" else time.perf_counter
    base = make_model().to(dev)
    names, seconds = list(variants), {name: [] for name in variants}
    for r in range(rounds + 1):                        # round 0 warms up caches and allocators, not counted
        for name in names[r % len(names):] + names[:r % len(names)]:
            model = copy.deepcopy(base)
            _sync(dev)
            start = clock()
            variants[name](model, data, epochs, batch_size)
            _sync(dev)
            if r:
                seconds[name].append(clock() - start)
    return seconds


def ratio(slow: list[float], fast: list[float]) -> dict[str, float]:
    """Median, min and max over rounds of slow/fast (above 1: the second is faster)."""
    per_round = [s / f for s, f in zip(slow, fast)]
    return {"median": statistics.median(per_round), "min": min(per_round), "max": max(per_round),
            "rounds": len(per_round)}


def mlp() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.Tanh(), torch.nn.Linear(128, 10))


def cnn() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                               torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                               torch.nn.Flatten(), torch.nn.Linear(32 * 2 * 2, 10))


def measure(dev: torch.device, rounds: int) -> list[dict]:
    """The comparisons this device allows: fit vs DataLoader vs minimal loop; on CUDA also amp and compile."""
    out = []
    for name, make, images, epochs in [("MLP on digits (chapter 1)", mlp, False, 30),
                                       ("CNN on digit images (chapter 2)", cnn, True, 6)]:
        data = mp.digits(images=images, dev=dev) if images else mp.digits(dev=dev)
        variants = {"fit": with_fit, "dataloader": with_dataloader, "minimal": with_minimal_loop}
        if dev.type == "cuda":
            variants["fit_amp"] = lambda m, d, e, b: with_fit(m, d, e, b, amp=True)
            variants["fit_compiled"] = compiled(with_fit)
        secs = interleaved(variants, make, data, epochs=epochs, batch_size=64, rounds=rounds)
        row = {"model": name, "device": dev.type, "epochs": epochs, "batch_size": 64,
               "seconds_median": {k: statistics.median(v) for k, v in secs.items()},
               "fit_vs_dataloader": ratio(secs["dataloader"], secs["fit"]),
               "fit_vs_minimal": ratio(secs["minimal"], secs["fit"])}
        if dev.type == "cuda":
            row["amp_vs_fp32"] = ratio(secs["fit"], secs["fit_amp"])
            row["compiled_vs_eager"] = ratio(secs["fit"], secs["fit_compiled"])
        out.append(row)
    return out
