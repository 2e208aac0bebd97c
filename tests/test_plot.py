import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

import mpkit as mp  # noqa: E402


def test_image_grid_accepts_common_layouts():
    for imgs in (torch.rand(5, 8, 8), torch.rand(5, 1, 8, 8), torch.rand(5, 3, 8, 8)):
        fig = mp.plot.image_grid(imgs, labels=list("abcde"), ncols=3, title="t")
        assert len(fig.axes) == 6
    with pytest.raises(ValueError, match="expected 5 labels"):
        mp.plot.image_grid(torch.rand(5, 8, 8), labels=[1])
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        mp.plot.image_grid(torch.rand(8, 8))


def test_curves_and_interactive_curves():
    h = mp.History()
    for e in range(1, 4):
        h.append(epoch=e, train_loss=1 / e, test_loss=1.1 / e, test_acc=0.5 + e / 10)
    assert len(mp.plot.curves(h).axes) == 2
    assert len(mp.plot.curves({"a": h, "b": h}, keys=["test_acc"]).axes) == 1
    fig = mp.plot.interactive_curves({"a": h, "b": h})
    assert len(fig.data) == 2 and list(fig.data[0].y) == h["test_acc"]


def test_decision_boundary_colours_the_plane():
    X, y = mp.toy2d("xor", 64, dev="cpu")
    ax = mp.plot.decision_boundary(lambda p: (p[:, 0] * p[:, 1] > 0).long(), X, y, resolution=20)
    assert ax.collections  # contour and scatter were drawn
    with pytest.raises(ValueError, match=r"X: expected shape \(\*, 2\)"):
        mp.plot.decision_boundary(lambda p: p, torch.zeros(4, 3), y[:4])


def test_style_keeps_the_interactive_setting_a_backend_switched_on():
    import matplotlib as mpl

    before = mpl.is_interactive()
    try:
        mpl.interactive(False)
        with mp.plot.style():
            mpl.interactive(True)  # what the inline backend does when the first figure is drawn
        assert mpl.is_interactive()
        with mp.plot.style():
            assert mpl.rcParams["axes.spines.top"] is False
        assert mpl.rcParams["axes.spines.top"] is True  # the style itself does not leak
    finally:
        mpl.interactive(before)
