"""The classifier two-sample test: known answers, reproducibility, the noise floor, input checks."""
import numpy as np
import pytest

from microvae.c2st import C2STNet, c2st, c2st_halves
from microvae.synthetic import gaussian_random_field

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Small and quick: 32 px images, a few epochs; the defaults' power is measured in docs/vae.md.
FAST = dict(seeds=2, max_per_class=80, max_epochs=8, patience=3, channels=(4, 8, 16))


@pytest.fixture(scope="module")
def fields():
    like_a = gaussian_random_field((32, 32), 3.0, 0.3, n=120, seed=0)
    like_b = gaussian_random_field((32, 32), 3.0, 0.3, n=120, seed=1)
    unlike = gaussian_random_field((32, 32), 1.5, 0.3, n=120, seed=2)
    return like_a, like_b, unlike


def test_same_distribution_is_chance_within_the_interval(fields):
    a, b, _ = fields
    r = c2st(b, a, **FAST)
    assert r["ci"][0] <= 0.5 <= r["ci"][1]
    assert abs(r["accuracy"] - 0.5) < 0.15
    assert r["n_per_class"] == 80 and r["n_train"] + r["n_val"] + r["n_test"] == 160
    assert len(r["accuracies"]) == 2 and r["ci"][0] <= r["accuracy"] <= r["ci"][1]


def test_an_obviously_different_set_is_told_apart(fields):
    a, _, unlike = fields
    r = c2st(unlike, a, **FAST)
    assert r["accuracy"] >= 0.95


def test_a_texture_seen_only_in_one_orientation_does_not_give_the_set_away():
    # Stripes along the rows against the same stripes along the columns: one set is the other
    # rotated a quarter turn, and the dihedral augmentation makes the classifier blind to that.
    stripes = gaussian_random_field((32, 32), 3.0, 0.3, n=240, seed=4)
    stripes = np.repeat(stripes[:, :, :1], 32, axis=2)
    rows, cols = stripes[:120], np.rot90(stripes[120:], axes=(1, 2))
    r = c2st(cols, rows, **FAST)
    assert r["ci"][0] <= 0.5 <= r["ci"][1]


def test_same_seed_same_result_and_seeds_differ(fields):
    a, _, unlike = fields
    r1, r2 = c2st(unlike[:60], a[:60], **{**FAST, "seeds": [3]}), c2st(unlike[:60], a[:60], **{**FAST, "seeds": [3]})
    assert r1["accuracies"] == r2["accuracies"] and r1["epochs"] == r2["epochs"]
    r3 = c2st(unlike[:60], a[:60], **{**FAST, "seeds": [4]})
    assert r3["settings"]["seeds"] == [4]


def test_noise_floor_splits_the_authentic_set(fields):
    a, _, _ = fields
    r = c2st_halves(a, split_seed=1, **FAST)
    assert r["n_per_class"] == 60 and r["split_seed"] == 1
    assert r["ci"][0] <= 0.5 <= r["ci"][1]


def test_interval_is_at_least_the_binomial_one():
    # One seed: the normal interval of the binomial test accuracy.
    like = gaussian_random_field((32, 32), 3.0, 0.3, n=80, seed=5)
    other = gaussian_random_field((32, 32), 3.0, 0.3, n=80, seed=6)
    r = c2st(other, like, **{**FAST, "seeds": 1})
    p, m = r["accuracy"], r["n_test"]
    assert r["ci"][1] - r["ci"][0] == pytest.approx(2 * 1.959964 * np.sqrt(p * (1 - p) / m))


def test_network_takes_any_size_divisible_by_its_halvings():
    import torch

    net = C2STNet((4, 8))
    assert net(torch.zeros(3, 1, 12, 20)).shape == (3,)


def test_bad_input_is_named(fields):
    a, b, _ = fields
    with pytest.raises(ValueError, match="differ in size"):
        c2st(a[:, :16, :16], b)
    with pytest.raises(ValueError, match="square"):
        c2st(a[:, :16], b[:, :16])
    with pytest.raises(ValueError, match="binary"):
        c2st(a * 2, b, name="samples")
    with pytest.raises(ValueError, match="fewer than 2 per class"):
        c2st(a[:5], b)
    with pytest.raises(ValueError, match="fractions"):
        c2st(a, b, fractions=(0.5, 0.5, 0.2))
    with pytest.raises(ValueError, match="multiples of 16"):
        c2st(a[:, :24, :24], b[:, :24, :24], channels=(4, 8, 16, 32))
    with pytest.raises(ValueError, match="seeds"):
        c2st(a, b, seeds=[])
    with pytest.raises(TypeError, match="max_per_class"):
        c2st(a, b, max_per_class=10.5)
