import math

import pytest
import torch

import mpkit as mp


def test_digits_split_is_stratified_fixed_and_on_device():
    s = mp.digits(dev="cpu")
    assert s.X_train.shape == (1347, 64) and s.X_test.shape == (450, 64)
    assert s.X_train.dtype == torch.float32 and s.y_train.dtype == torch.int64
    assert 0.0 <= float(s.X_train.min()) and float(s.X_train.max()) <= 1.0
    assert s.n_classes == 10
    # stratified: every class has 25 % ± 1 of its examples in the test set
    for c in range(10):
        n_test, n_all = int((s.y_test == c).sum()), int((s.y_train == c).sum() + (s.y_test == c).sum())
        assert abs(n_test - 0.25 * n_all) <= 1
    again = mp.digits(dev="cpu")
    assert torch.equal(s.X_test, again.X_test)  # fixed split
    assert not torch.equal(mp.digits(seed=1, dev="cpu").y_test, s.y_test)


def test_digits_images_and_split_to():
    s = mp.digits(images=True, dev="cpu")
    assert s.X_train.shape == (1347, 1, 8, 8)
    assert s.to("cpu").X_train.device.type == "cpu"
    assert "train=(1347, 1, 8, 8)" in repr(s)
    with pytest.raises(ValueError, match="test_size"):
        mp.digits(test_size=1.5)


@pytest.mark.parametrize("name", mp.data.TOY2D)
def test_toy2d_shapes_and_labels(name):
    X, y = mp.toy2d(name, 300, seed=3, dev="cpu")
    assert X.shape == (300, 2) and X.dtype == torch.float32 and y.shape == (300,)
    assert set(y.tolist()) <= {0, 1, 2} and len(set(y.tolist())) >= 2
    X2, _ = mp.toy2d(name, 300, seed=3, dev="cpu")
    assert torch.equal(X, X2)


def test_toy2d_rejects_unknown_name():
    with pytest.raises(ValueError, match="unknown toy dataset 'swiss'.*moons"):
        mp.toy2d("swiss")


def test_batches_cover_every_example_once_per_epoch():
    X, y = torch.arange(10.0).unsqueeze(1), torch.arange(10)
    got = list(mp.batches(X, y, 4, generator=torch.Generator().manual_seed(0)))
    assert [len(b[1]) for b in got] == [4, 4, 2]
    ys = torch.cat([b[1] for b in got])
    assert sorted(ys.tolist()) == list(range(10)) and ys.tolist() != list(range(10))
    assert all(torch.equal(xb[:, 0].long(), yb) for xb, yb in got)  # pairs stay aligned
    assert torch.cat([b[1] for b in mp.batches(X, y, 3, shuffle=False)]).tolist() == list(range(10))


def test_batches_errors_name_the_problem():
    with pytest.raises(ValueError, match="same length, got 3 and 2"):
        next(mp.batches(torch.zeros(3, 1), torch.zeros(2), 2))
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        next(mp.batches(torch.zeros(3, 1), torch.zeros(3), 0))
    with pytest.raises(ValueError, match="expected a torch.Tensor, got list"):
        next(mp.batches([1, 2], torch.zeros(2), 1))


def test_shapes_segmentation_data():
    s = mp.data.shapes(64, 16, size=24, seed=1, dev="cpu")
    assert s.X_train.shape == (64, 1, 24, 24) and s.y_train.shape == (64, 24, 24)
    assert s.y_train.dtype == torch.int64 and set(s.y_train.unique().tolist()) == {0, 1, 2, 3}
    assert (s.y_train != 0).flatten(1).any(1).all()  # every image holds at least one shape
    assert torch.equal(mp.data.shapes(64, 16, size=24, seed=1, dev="cpu").X_test, s.X_test)
    # brightness does not give the class away: every class appears both dark and bright
    fg = s.y_train.unsqueeze(1) > 0
    for c in (1, 2, 3):
        vals = s.X_train[(s.y_train == c).unsqueeze(1)]
        assert vals.min() < 0.3 and vals.max() > 0.7
    assert fg.float().mean() < 0.5
    with pytest.raises(ValueError, match="size >= 8"):
        mp.data.shapes(size=4)


def test_adding_problem_targets_and_baseline():
    s = mp.data.adding_problem(2000, 500, T=20, seed=0, dev="cpu")
    assert s.X_train.shape == (2000, 20, 2) and s.y_train.shape == (2000,)
    marks = s.X_train[..., 1]
    assert torch.equal(marks.sum(1), torch.full((2000,), 2.0))
    assert (marks[:, :10].sum(1) == 1).all()  # one marker in each half
    torch.testing.assert_close(s.y_train, (s.X_train[..., 0] * marks).sum(1))
    # predicting 1 has MSE 1/6 (variance of a sum of two uniforms), up to sampling error
    assert abs(float(((s.y_train - 1) ** 2).mean()) - 1 / 6) < 0.02
    with pytest.raises(ValueError, match="T must be at least 2"):
        mp.data.adding_problem(T=1)


def test_gen2d_ring_has_eight_equal_modes_at_radius_two():
    s = mp.data.gen2d("8gaussians", dev="cpu")
    assert s.X_train.shape == (8000, 2) and s.X_test.shape == (2000, 2) and s.X_train.dtype == torch.float32
    radius = s.X_train.double().norm(dim=1)
    assert abs(float(radius.mean()) - 2.0) < 0.002 and float((radius - 2).abs().max()) < 0.12  # 6σ at σ = 0.02
    angle = torch.atan2(s.X_train[:, 1], s.X_train[:, 0])
    mode = torch.round(angle / (2 * math.pi / 8)).long() % 8  # nearest centre from the angle alone
    assert torch.equal(mode, s.y_train)
    counts = torch.bincount(s.y_train, minlength=8).double()
    assert float((counts - 1000).abs().max()) < 4 * 1000**0.5  # multinomial: ±4 sd


def test_gen2d_moons_are_standardised_and_splits_are_fixed():
    s = mp.data.gen2d("moons", dev="cpu")
    assert s.X_train.double().mean(0).abs().max() < 0.05 and (s.X_train.double().std(0) - 1).abs().max() < 0.05
    again = mp.data.gen2d("moons", n_test=17, dev="cpu")
    assert torch.equal(s.X_train, again.X_train) and len(again.X_test) == 17  # train does not depend on n_test
    assert not torch.equal(s.X_train[:2000], s.X_test)  # train and test come from different streams
    with pytest.raises(ValueError, match="unknown 2-D benchmark"):
        mp.data.gen2d("swissroll")


def test_binarised_digits_threshold_at_eight_of_sixteen():
    raw, binary = mp.digits(dev="cpu"), mp.digits(binarize=True, dev="cpu")
    assert set(binary.X_train.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(binary.X_train, (raw.X_train * 16 >= 8).float()) and torch.equal(raw.y_train, binary.y_train)
