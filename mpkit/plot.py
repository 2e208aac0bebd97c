"""Figures: one matplotlib style, image grids, training curves, decision boundaries; plotly for interaction."""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import matplotlib as mpl
import matplotlib.pyplot as plt
import torch

from mpkit.check import require_tensor
from mpkit.train import History

STYLE = {
    "figure.dpi": 100, "figure.figsize": (6.0, 3.6), "axes.grid": True, "grid.alpha": 0.3,
    "axes.spines.top": False, "axes.spines.right": False, "font.size": 10, "image.cmap": "gray_r",
}


@contextmanager
def style() -> Iterator[None]:
    """The book's matplotlib style as a context: ``with mp.plot.style(): ...`` (nothing global changes).

    The ``interactive`` setting is kept as it is on exit: Jupyter's inline backend switches it on
    when the first figure of a kernel is drawn, and restoring the old value would hide every later
    figure of the notebook.
    """
    with mpl.rc_context(STYLE):
        try:
            yield
        finally:
            interactive = mpl.is_interactive()
    mpl.interactive(interactive)


def image_grid(images: torch.Tensor, labels: Sequence[object] | None = None, *, ncols: int = 10,
               title: str | None = None, size: float = 0.9) -> plt.Figure:
    """Show images (N, H, W), (N, 1, H, W) or (N, 3, H, W) in a grid, with optional per-image labels."""
    require_tensor(images, "images")
    imgs = images.detach().float().cpu()
    if imgs.dim() == 4 and imgs.shape[1] in (1, 3):
        imgs = imgs.permute(0, 2, 3, 1)
        imgs = imgs[..., 0] if imgs.shape[-1] == 1 else imgs
    if imgs.dim() not in (3, 4):
        raise ValueError(f"images: expected (N, H, W) or (N, C, H, W) with C in (1, 3), got {tuple(images.shape)}")
    if labels is not None and len(labels) != len(imgs):
        raise ValueError(f"labels: expected {len(imgs)} labels, got {len(labels)}")
    n = len(imgs)
    ncols = max(1, min(ncols, n))
    nrows = (n + ncols - 1) // ncols
    with style():
        fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.3 if title else 0)),
                                 squeeze=False)
        for i, ax in enumerate(axes.flat):
            ax.axis("off")
            if i < n:
                ax.imshow((imgs[i].clamp(0, 1) if imgs.dim() == 4 else imgs[i]).numpy())
                if labels is not None:
                    ax.set_title(str(labels[i]), fontsize=8)
        if title:
            fig.suptitle(title)
        fig.tight_layout()
    return fig


def curves(histories: History | Mapping[str, History], keys: Sequence[str] = ("train_loss", "test_loss"), *,
           logy: bool = False, title: str | None = None) -> plt.Figure:
    """Training curves: one panel per key, one line per history (``{"Adam": h1, "SGD": h2}`` or one ``History``)."""
    runs = {"": histories} if isinstance(histories, History) else dict(histories)
    with style():
        fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.2), squeeze=False)
        for ax, key in zip(axes.flat, keys):
            for name, h in runs.items():
                ax.plot(h["epoch"], h[key], label=name or key)
            ax.set_xlabel("epoch")
            ax.set_ylabel(key)
            if logy:
                ax.set_yscale("log")
            if len(runs) > 1:
                ax.legend(fontsize=8)
        if title:
            fig.suptitle(title)
        fig.tight_layout()
    return fig


def decision_boundary(predict: Callable[[torch.Tensor], torch.Tensor], X: torch.Tensor, y: torch.Tensor, *,
                      resolution: int = 200, ax: plt.Axes | None = None, title: str | None = None) -> plt.Axes:
    """Colour the plane by ``predict`` (maps (M, 2) points to (M,) labels or (M, C) scores) and scatter ``X`` (N, 2)."""
    require_tensor(X, "X", shape=(None, 2))
    require_tensor(y, "y", shape=(len(X),))
    Xc, yc = X.detach().cpu(), y.detach().cpu()
    lo, hi = Xc.min(0).values - 0.5, Xc.max(0).values + 0.5
    gx, gy = torch.meshgrid(torch.linspace(lo[0], hi[0], resolution), torch.linspace(lo[1], hi[1], resolution),
                            indexing="xy")
    grid = torch.stack([gx.flatten(), gy.flatten()], 1).to(X.device, X.dtype)
    with torch.no_grad():
        out = predict(grid)
    labels = (out.argmax(1) if out.dim() == 2 else out).reshape(resolution, resolution).cpu().numpy()
    gx, gy, Xc, yc = gx.numpy(), gy.numpy(), Xc.numpy(), yc.numpy()
    with style():
        if ax is None:
            _, ax = plt.subplots(figsize=(4, 4))
        ax.contourf(gx, gy, labels, alpha=0.3, cmap="coolwarm")
        ax.scatter(Xc[:, 0], Xc[:, 1], c=yc, cmap="coolwarm", s=8, edgecolors="k", linewidths=0.2)
        ax.set_aspect("equal")
        if title:
            ax.set_title(title)
    return ax


def interactive_curves(histories: Mapping[str, History], key: str = "test_acc", *, title: str | None = None):
    """A plotly figure of ``key`` per epoch, one line per run: hover to read values, click legend to hide."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, h in histories.items():
        fig.add_trace(go.Scatter(x=h["epoch"], y=h[key], mode="lines+markers", name=name))
    fig.update_layout(title=title or key, xaxis_title="epoch", yaxis_title=key, height=380,
                      margin=dict(l=50, r=20, t=50, b=40), template="plotly_white")
    return fig
