"""Offline datasets as tensors that already live on the device, and in-memory batching.

Nothing here downloads: scikit-learn's bundled digits and procedurally generated data only.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from mpkit.check import require_tensor
from mpkit.env import device as default_device

TOY2D = ("moons", "circles", "xor", "blobs", "spiral")


@dataclass(frozen=True)
class Split:
    """A train/test split. ``X_*``: (N, ...) float32, ``y_*``: (N,) int64, all on one device."""

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def n_classes(self) -> int:
        return int(torch.cat([self.y_train, self.y_test]).max()) + 1

    def to(self, dev: torch.device | str) -> "Split":
        """The same split on another device."""
        return Split(*(t.to(dev) for t in (self.X_train, self.y_train, self.X_test, self.y_test)))

    def __repr__(self) -> str:
        return (f"Split(train={tuple(self.X_train.shape)}, test={tuple(self.X_test.shape)}, "
                f"classes={self.n_classes}, device={self.X_train.device})")


@lru_cache(maxsize=None)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # bundled with scikit-learn, no download

    bunch = load_digits()
    return bunch.data.astype(np.float32), bunch.target.astype(np.int64)


def digits(*, test_size: float = 0.25, seed: int = 0, images: bool = False, binarize: bool = False,
           dev: torch.device | str | None = None) -> Split:
    """scikit-learn's 1797 handwritten 8×8 digits with a fixed stratified split.

    Pixels are scaled from 0..16 to [0, 1], or with ``binarize=True`` set to 1 where the raw value is
    at least 8 (of 16) and 0 elsewhere, the binarised digits the density models compare on.
    ``X``: (N, 64), or (N, 1, 8, 8) with ``images=True``; ``y``: (N,) int64 in 0..9. With the
    defaults: 1347 train / 450 test images.
    """
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size}")
    from sklearn.model_selection import train_test_split

    X, y = _digits_arrays()
    X = (X >= 8).astype(np.float32) if binarize else X / 16.0
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=test_size, stratify=y, random_state=seed)
    dev = torch.device(dev) if dev is not None else default_device()
    shape = (-1, 1, 8, 8) if images else (-1, 64)
    as_x = lambda a: torch.as_tensor(a, dtype=torch.float32).reshape(shape).to(dev)  # noqa: E731
    as_y = lambda a: torch.as_tensor(a, dtype=torch.int64).to(dev)  # noqa: E731
    return Split(as_x(X_tr), as_y(y_tr), as_x(X_te), as_y(y_te))


def toy2d(name: str, n: int = 512, *, noise: float = 0.1, seed: int = 0,
          dev: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A 2-D toy classification set: ``X`` (n, 2) float32, ``y`` (n,) int64.

    ``name``: ``moons`` and ``circles`` (scikit-learn), ``xor`` (four Gaussian clusters, labels
    x1·x2 > 0), ``blobs`` (three Gaussian clusters), ``spiral`` (two interleaved arms).
    """
    if name not in TOY2D:
        raise ValueError(f"unknown toy dataset {name!r}; choose one of {TOY2D}")
    if n < 2:
        raise ValueError(f"n must be at least 2, got {n}")
    rng = np.random.default_rng(seed)
    if name in ("moons", "circles"):
        from sklearn import datasets

        maker = datasets.make_moons if name == "moons" else datasets.make_circles
        kwargs = {} if name == "moons" else {"factor": 0.5}
        X, y = maker(n_samples=n, noise=noise, random_state=seed, **kwargs)
    elif name == "xor":
        centres = np.array([[1, 1], [-1, -1], [1, -1], [-1, 1]], dtype=float)
        k = rng.integers(0, 4, n)
        X = centres[k] + noise * rng.standard_normal((n, 2))
        y = (k >= 2).astype(np.int64)
    elif name == "blobs":
        angles = 2 * math.pi * np.arange(3) / 3
        centres = 2 * np.stack([np.cos(angles), np.sin(angles)], 1)
        y = rng.integers(0, 3, n)
        X = centres[y] + noise * 3 * rng.standard_normal((n, 2))
    else:  # spiral
        y = rng.integers(0, 2, n)
        r = rng.uniform(0.1, 1.0, n)
        theta = 3 * math.pi * r + math.pi * y
        X = np.stack([r * np.cos(theta), r * np.sin(theta)], 1) + noise * 0.3 * rng.standard_normal((n, 2))
    dev = torch.device(dev) if dev is not None else default_device()
    return (torch.as_tensor(X, dtype=torch.float32, device=dev),
            torch.as_tensor(y, dtype=torch.int64, device=dev))


GEN2D = ("8gaussians", "moons")
RING = {"modes": 8, "radius": 2.0, "sigma": 0.02}  # the "8 Gaussians" ring of the 2-D benchmark
MOONS = {"noise": 0.05, "mean": (0.5, 0.25), "std": (0.867, 0.497)}  # moons, then standardised by fixed constants


def _gen2d_sample(name: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if name == "8gaussians":
        k = rng.integers(0, RING["modes"], n)
        angle = 2 * math.pi * k / RING["modes"]
        centres = RING["radius"] * np.stack([np.cos(angle), np.sin(angle)], 1)
        return centres + RING["sigma"] * rng.standard_normal((n, 2)), k
    from sklearn.datasets import make_moons

    X, k = make_moons(n_samples=n, noise=MOONS["noise"], random_state=int(rng.integers(2**31)))
    return (X - np.array(MOONS["mean"])) / np.array(MOONS["std"]), k


def gen2d(name: str, *, n_train: int = 8_000, n_test: int = 2_000, seed: int = 0,
          dev: torch.device | str | None = None) -> Split:
    """The 2-D benchmark of the generative chapters, with a fixed train / held-out split.

    ``"8gaussians"``: a ring of 8 Gaussians, centres at radius 2 and angles 2πk/8, each with σ = 0.02
    (`RING`), equally likely. ``"moons"``: scikit-learn's two moons with noise 0.05, then shifted and
    scaled by the fixed constants of `MOONS` to about zero mean and unit variance per axis.
    ``X``: (N, 2) float32; ``y``: (N,) int64, the mode (0..7) or the moon (0, 1) each point came from.
    Train and test come from separate streams: the train set does not change with ``n_test``.
    The moons are stratified (scikit-learn spaces the points evenly along each curve before the noise), so
    two such sets are closer to each other than two i.i.d. samples would be: a two-sample distance between
    them is no floor for a sampler's (draw the floor's points at random from a larger set).
    """
    if name not in GEN2D:
        raise ValueError(f"unknown 2-D benchmark {name!r}; choose one of {GEN2D}")
    if n_train < 1 or n_test < 1:
        raise ValueError(f"n_train and n_test must be positive, got {n_train} and {n_test}")
    (X_tr, y_tr), (X_te, y_te) = _gen2d_sample(name, n_train, 2 * seed), _gen2d_sample(name, n_test, 2 * seed + 1)
    dev = torch.device(dev) if dev is not None else default_device()
    as_x = lambda a: torch.as_tensor(a, dtype=torch.float32, device=dev)  # noqa: E731
    as_y = lambda a: torch.as_tensor(a, dtype=torch.int64, device=dev)  # noqa: E731
    return Split(as_x(X_tr), as_y(y_tr), as_x(X_te), as_y(y_te))


def batches(X: torch.Tensor, y: torch.Tensor, batch_size: int, *, shuffle: bool = True,
            generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Mini-batches ``(X[i:i+B], y[i:i+B])`` of in-memory tensors, without a DataLoader.

    ``X``: (N, ...), ``y``: (N, ...) on the same device. One index permutation per epoch; the last
    batch may be smaller. ``generator`` (CPU) makes the order reproducible.
    """
    require_tensor(X, "X")
    require_tensor(y, "y")
    if len(X) != len(y):
        raise ValueError(f"X and y must have the same length, got {len(X)} and {len(y)}")
    if X.device != y.device:
        raise ValueError(f"X is on {X.device} but y on {y.device}; move both with .to(device)")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if shuffle:
        perm = torch.randperm(len(X), generator=generator).to(X.device)
        X, y = X[perm], y[perm]
    yield from zip(X.split(batch_size), y.split(batch_size))


SHAPE_CLASSES = ("background", "circle", "square", "triangle")


def _shape_masks(kind: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor, r: torch.Tensor, size: int) -> torch.Tensor:
    """Boolean masks (N, size, size) of one shape per image: kind 1 circle, 2 square, 3 triangle (apex up)."""
    coords = torch.arange(size, dtype=torch.float32) + 0.5
    yy, xx = coords.view(1, -1, 1), coords.view(1, 1, -1)
    dy, dx, r = yy - cy.view(-1, 1, 1), xx - cx.view(-1, 1, 1), r.view(-1, 1, 1)
    circle = dy**2 + dx**2 <= r**2
    square = (dy.abs() <= 0.8 * r) & (dx.abs() <= 0.8 * r)
    triangle = (dy.abs() <= r) & (dx.abs() <= (dy + r) / 2)
    k = kind.view(-1, 1, 1)
    return torch.where(k == 1, circle, torch.where(k == 2, square, triangle))


def shapes(n_train: int = 1024, n_test: int = 256, *, size: int = 32, max_shapes: int = 3, noise: float = 0.15,
           seed: int = 0, dev: torch.device | str | None = None) -> Split:
    """Procedural segmentation data: circles, squares and triangles on noisy backgrounds.

    ``X``: (N, 1, size, size) float32 images; ``y``: (N, size, size) int64 masks with classes
    ``SHAPE_CLASSES`` (0 background, 1 circle, 2 square, 3 triangle). Each image holds 1..``max_shapes``
    shapes of random size, dark or bright (later shapes cover earlier ones), on a background with a
    random gradient, plus Gaussian pixel noise of std ``noise``. Brightness alone does not tell the
    class: only the outline does.
    """
    if size < 8 or max_shapes < 1 or n_train < 1 or n_test < 1:
        raise ValueError(f"need size >= 8, max_shapes >= 1 and n_train, n_test >= 1; got size={size}, "
                         f"max_shapes={max_shapes}, n_train={n_train}, n_test={n_test}")
    g = torch.Generator().manual_seed(seed)
    n = n_train + n_test
    u = lambda *s: torch.rand(*s, generator=g)  # noqa: E731
    ramp = torch.linspace(-0.5, 0.5, size)
    slope = 0.3 * (u(n, 2) - 0.5)
    X = 0.45 + slope[:, :1, None] * ramp.view(1, -1, 1) + slope[:, 1:, None] * ramp.view(1, 1, -1)
    y = torch.zeros(n, size, size, dtype=torch.int64)
    count = torch.randint(1, max_shapes + 1, (n,), generator=g)
    for slot in range(max_shapes):
        kind = torch.randint(1, 4, (n,), generator=g)
        r = size * (0.12 + 0.12 * u(n))
        cy, cx = r + (size - 2 * r) * u(n), r + (size - 2 * r) * u(n)
        mask = _shape_masks(kind, cy, cx, r, size) & (slot < count).view(-1, 1, 1)
        brightness = torch.where(u(n, 1, 1) < 0.5, 0.05 + 0.15 * u(n, 1, 1), 0.8 + 0.15 * u(n, 1, 1))  # dark or bright
        X = torch.where(mask, brightness.expand(-1, size, size), X)
        y = torch.where(mask, kind.view(-1, 1, 1), y)
    X = (X + noise * torch.randn(n, size, size, generator=g)).unsqueeze(1)
    dev = torch.device(dev) if dev is not None else default_device()
    return Split(X[:n_train].to(dev), y[:n_train].to(dev), X[n_train:].to(dev), y[n_train:].to(dev))


def adding_problem(n_train: int = 4096, n_test: int = 1024, *, T: int = 50, seed: int = 0,
                   dev: torch.device | str | None = None) -> Split:
    """The adding problem (Hochreiter & Schmidhuber, 1997): remember two marked numbers over ``T`` steps.

    ``X``: (N, T, 2) float32; channel 0 holds values uniform in [0, 1], channel 1 marks exactly two
    steps, one in each half of the sequence. ``y``: (N,) float32, the sum of the two marked values.
    Predicting the constant 1 gives MSE = Var(U1 + U2) = 1/6: the baseline a model must beat.
    """
    if T < 2:
        raise ValueError(f"T must be at least 2 (one marker per half), got {T}")
    g = torch.Generator().manual_seed(seed)
    n = n_train + n_test
    values = torch.rand(n, T, generator=g)
    half = T // 2
    first = torch.randint(0, half, (n,), generator=g)
    second = torch.randint(half, T, (n,), generator=g)
    marks = torch.zeros(n, T)
    marks[torch.arange(n), first] = 1.0
    marks[torch.arange(n), second] = 1.0
    X = torch.stack([values, marks], dim=2)
    y = (values * marks).sum(dim=1)
    dev = torch.device(dev) if dev is not None else default_device()
    return Split(X[:n_train].to(dev), y[:n_train].to(dev), X[n_train:].to(dev), y[n_train:].to(dev))
