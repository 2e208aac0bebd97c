"""One generic supervised training loop: data stays on the device, a progress bar, a history."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from mpkit.check import require_tensor
from mpkit.data import Split, batches
from mpkit.env import autocast

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class History:
    """Per-epoch records, e.g. ``{"epoch": 3, "train_loss": 0.1, "test_loss": 0.2, "test_acc": 0.97}``."""

    records: list[dict[str, float]] = field(default_factory=list)

    def append(self, **values: float) -> None:
        self.records.append(dict(values))

    def __getitem__(self, key: str) -> list[float]:
        if self.records and key not in self.records[-1]:
            raise KeyError(f"no metric {key!r} in history; available: {sorted(self.records[-1])}")
        return [r[key] for r in self.records if key in r]

    def __len__(self) -> int:
        return len(self.records)

    def last(self, key: str) -> float:
        """The latest value of ``key``."""
        values = self[key]
        if not values:
            raise KeyError(f"history is empty, no {key!r} yet")
        return values[-1]

    def best(self, key: str, mode: str = "max") -> float:
        """The best value of ``key`` over epochs (``mode`` 'max' or 'min')."""
        return (max if mode == "max" else min)(self[key])


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows whose arg-max matches the label. ``logits``: (N, C), ``y``: (N,) int64."""
    require_tensor(logits, "logits", shape=(None, None))
    require_tensor(y, "y", shape=(len(logits),))
    return float((logits.argmax(dim=1) == y).float().mean())


@torch.no_grad()
def evaluate(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, *, loss_fn: LossFn = F.cross_entropy,
             batch_size: int = 4096) -> dict[str, float]:
    """Mean loss and (for class logits) accuracy of ``model`` on ``X`` (N, ...), ``y`` (N,), in eval mode."""
    was_training = model.training
    model.eval()
    outs = torch.cat([model(xb) for xb in X.split(batch_size)])
    model.train(was_training)
    result = {"loss": float(loss_fn(outs.float(), y))}
    if outs.dim() == 2 and y.dtype == torch.int64 and y.dim() == 1:
        result["acc"] = accuracy(outs, y)
    return result


def _check_inputs(model: torch.nn.Module, data: Split) -> None:
    if not isinstance(data, Split):
        raise ValueError(f"data must be an mpkit Split (see mp.digits), got {type(data).__name__}")
    params = list(model.parameters())
    if not params:
        raise ValueError("model has no parameters to train")
    dev = params[0].device
    for name in ("X_train", "y_train", "X_test", "y_test"):
        t = getattr(data, name)
        if t.device.type != dev.type:
            raise ValueError(f"data.{name} is on {t.device} but the model is on {dev}; "
                             f"call model.to(device) and data.to(device) with the same device")
    require_tensor(data.X_train, "data.X_train", finite=True)


Step = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _plain_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, loss_fn: LossFn) -> Step:
    """One fp32 optimisation step on a batch; returns the detached loss. Nothing else runs per step."""
    def step(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        loss = loss_fn(model(xb), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()
    return step


def _amp_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, loss_fn: LossFn, dev: torch.device,
              use_scaler: bool) -> Step:
    """One mixed-precision step (`mpkit.env.autocast`); a gradient scaler only for fp16 (GPUs before sm_80)."""
    scaler = torch.amp.GradScaler("cuda") if use_scaler else None

    def step(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        with autocast(dev):
            loss = loss_fn(model(xb), yb)
        optimizer.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        return loss.detach()
    return step


def fit(model: torch.nn.Module, data: Split, *, epochs: int, optimizer: torch.optim.Optimizer,
        loss_fn: LossFn = F.cross_entropy, batch_size: int = 64, scheduler: object | None = None,
        generator: torch.Generator | None = None, amp: bool = False, progress: bool = True,
        desc: str = "train") -> History:
    """Train ``model`` on ``data.X_train`` (N, ...) / ``data.y_train`` (N,) with mini-batches; evaluate each epoch.

    Records ``train_loss`` (mean over the epoch), ``test_loss``, ``test_acc`` (for class logits) and
    ``time`` (seconds so far). ``scheduler.step()`` is called once per batch if given. ``amp`` enables
    mixed precision on a GPU (see ``mpkit.env.amp_dtype``). Raises ``FloatingPointError`` if the loss
    becomes NaN/inf.
    """
    _check_inputs(model, data)
    dev = next(model.parameters()).device
    use_scaler = amp and dev.type == "cuda" and torch.cuda.get_device_capability(dev)[0] < 8
    step = _amp_step(model, optimizer, loss_fn, dev, use_scaler) if amp else _plain_step(model, optimizer, loss_fn)
    history, start = History(), time.perf_counter()
    bar = tqdm(range(1, epochs + 1), desc=desc, disable=not progress, leave=True)
    for epoch in bar:
        model.train()
        losses, sizes = [], []  # kept on the device: no host sync per step, one reduction per epoch
        for xb, yb in batches(data.X_train, data.y_train, batch_size, generator=generator):
            losses.append(step(xb, yb))
            sizes.append(len(xb))
            if scheduler is not None:
                scheduler.step()
        total = torch.stack(losses).float() @ torch.tensor(sizes, dtype=torch.float32, device=dev)
        train_loss = float(total) / len(data.X_train)
        if not torch.isfinite(torch.tensor(train_loss)):
            raise FloatingPointError(f"training loss became {train_loss} in epoch {epoch}; "
                                     "lower the learning rate or check the inputs for NaN")
        test = evaluate(model, data.X_test, data.y_test, loss_fn=loss_fn)
        record = {"epoch": epoch, "train_loss": train_loss, **{f"test_{k}": v for k, v in test.items()},
                  "time": time.perf_counter() - start}
        history.append(**record)
        bar.set_postfix({k: f"{v:.4f}" for k, v in record.items() if k.startswith(("train", "test"))})
    return history
