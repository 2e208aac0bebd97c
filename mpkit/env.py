"""Where code runs: device choice, seeding, the run profile, mixed precision by GPU, a timer, benchmark records."""
from __future__ import annotations

import json
import math
import os
import platform
import random
import time
from contextlib import AbstractContextManager, nullcontext

import numpy as np
import torch

PROFILE_VAR = "MP_PROFILE"
DEVICE_VAR = "MP_DEVICE"
RECORD_VAR = "MP_RECORD_FILE"
PROFILES = ("quick", "full")


def device() -> torch.device:
    """The fastest device here: CUDA, then Apple MPS, then CPU.

    Set the environment variable ``MP_DEVICE`` (e.g. ``cpu``) to force one.
    """
    forced = os.environ.get(DEVICE_VAR)
    if forced:
        dev = torch.device(forced)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"{DEVICE_VAR}={forced!r} but CUDA is not available here; unset it or use 'cpu'")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed(value: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a CPU ``torch.Generator`` seeded with ``value``."""
    if not isinstance(value, int) or value < 0:
        raise ValueError(f"seed must be a non-negative int, got {value!r}")
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)  # also seeds every CUDA device
    return torch.Generator().manual_seed(value)


def profile() -> str:
    """The run profile: ``'quick'`` on a CPU (and in CI), ``'full'`` on a GPU.

    Override with the environment variable ``MP_PROFILE=quick|full``.
    """
    chosen = os.environ.get(PROFILE_VAR, "").strip().lower()
    if chosen:
        if chosen not in PROFILES:
            raise ValueError(f"{PROFILE_VAR}={chosen!r} is not a profile; use one of {PROFILES}")
        return chosen
    return "full" if device().type in ("cuda", "mps") else "quick"


def is_quick() -> bool:
    """True in the quick profile (small data, few steps, looser but real targets)."""
    return profile() == "quick"


def amp_dtype(dev: torch.device) -> torch.dtype | None:
    """Autocast dtype for ``dev``: bf16 on CUDA capability >= 8.0, fp16 below, None (fp32) elsewhere.

    The capability decides, not ``torch.cuda.is_bf16_supported()``, which also counts emulation (T4).
    """
    if dev.type != "cuda":
        return None
    major, _ = torch.cuda.get_device_capability(dev)
    return torch.bfloat16 if major >= 8 else torch.float16


def autocast(dev: torch.device) -> AbstractContextManager:
    """Mixed precision on a GPU as `amp_dtype` chooses; a no-op context on CPU/MPS."""
    dtype = amp_dtype(dev)
    return torch.autocast(dev.type, dtype=dtype) if dtype is not None else nullcontext()


def describe() -> str:
    """One line of context for a benchmark or a log: torch, device, threads, profile."""
    dev = device()
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or dev.type
    return (f"torch {torch.__version__} | device {dev.type} ({name}) | "
            f"threads {torch.get_num_threads()} | profile {profile()}")


class Timer:
    """Wall-clock timer for a ``with`` block; waits for queued CUDA work so GPU timings are real.

    >>> with Timer() as t: ...
    >>> t.elapsed  # seconds
    """

    def __init__(self) -> None:
        self.elapsed = 0.0
        self._start = 0.0

    def _sync(self) -> None:
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()

    def __enter__(self) -> "Timer":
        self._sync()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sync()
        self.elapsed = time.perf_counter() - self._start

    def __repr__(self) -> str:
        return f"Timer(elapsed={self.elapsed:.3f}s)"


def record(model: str, *, seconds: float, metric: str, value: float, target: float, higher_is_better: bool = True,
           baseline: float | None = None) -> dict:
    """Note one trained model's result for the benchmark (``make bench``); returns the record.

    ``seconds``: its training time; ``metric``/``value``: what the notebook asserts, against ``target``
    (``met`` is ``value >= target``, or ``<=`` when lower is better); ``baseline``: the same metric of the
    chapter's baseline. When ``MP_RECORD_FILE`` names a file, the record is appended to it as one JSON line;
    otherwise nothing is written, so a notebook may always call it.
    """
    numbers = {"seconds": seconds, "value": value, "target": target}
    if baseline is not None:
        numbers["baseline"] = baseline
    for name, number in numbers.items():
        if not isinstance(number, (int, float)) or isinstance(number, bool) or not math.isfinite(number):
            raise ValueError(f"record({model!r}): {name} must be a finite number, got {number!r}; "
                             "pass float(tensor) for a tensor")
    met = value >= target if higher_is_better else value <= target
    entry = {"model": model, "metric": metric, "higher_is_better": higher_is_better, "met": bool(met),
             "profile": profile(), "device": describe(), **{k: float(v) for k, v in numbers.items()}}
    path = os.environ.get(RECORD_VAR)
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
    return entry
