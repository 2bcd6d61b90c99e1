"""The property CNN: learns a known function of the image, is seeded, persists, rejects bad input."""
import numpy as np
import pytest
import torch

from microvae.nn.predictor import PredictorConfig, PropertyCNN, PropertyPredictor, r2_score, rmse

pytestmark = pytest.mark.usefixtures("one_torch_thread")


SMALL = dict(channels=(8, 8, 8, 8), hidden=16, batch_size=16, max_epochs=20, patience=3)


@pytest.fixture(scope="module")
def porosity_data():
    """Bernoulli images with porosities spread over 0.1..0.6; the target is the exact porosity."""
    rng = np.random.default_rng(7)
    n = 330
    p = rng.uniform(0.1, 0.6, n)
    images = (rng.random((n, 32, 32)) < p[:, None, None]).astype(np.uint8)
    phi = images.reshape(n, -1).mean(axis=1)
    # A second, nonlinear target, on another scale, to exercise the per-column standardization.
    y = np.stack([phi, 50.0 * phi ** 2], axis=1)
    return images, y


@pytest.fixture(scope="module")
def trained(porosity_data):
    images, y = porosity_data
    model = PropertyPredictor(PredictorConfig(**SMALL), names=("phi", "phi2"), seed=3)
    return model.fit(images[:150], y[:150], images[150:230], y[150:230])


def test_learns_porosity(trained, porosity_data):
    images, y = porosity_data
    scores = trained.score(images[230:], y[230:])
    # Porosity is the image mean: a 4-layer CNN fits it almost exactly; 0.9 leaves room for
    # the few epochs allowed here.
    assert scores["r2"]["phi"] > 0.9
    assert scores["r2"]["phi2"] > 0.9
    assert scores["rmse"]["phi"] < 0.05
    pred = trained.predict(images[230:])
    assert pred.shape == (100, 2)
    # Outputs come back in the targets' units, not standardized ones.
    assert abs(pred[:, 1].mean() - y[230:, 1].mean()) < 0.2 * y[230:, 1].std()


def test_early_stopping_keeps_best_epoch(trained):
    h = trained.history[0]
    assert 1 <= h["best_epoch"] <= h["epochs"] <= SMALL["max_epochs"]
    assert h["best_val_loss"] == pytest.approx(min(h["val_loss"]))
    assert len(h["train_loss"]) == len(h["val_loss"]) == h["epochs"]


def test_stops_when_validation_stalls():
    rng = np.random.default_rng(0)
    images = (rng.random((40, 16, 16)) < 0.3).astype(np.uint8)
    noise = rng.normal(size=40)  # unrelated to the images: validation loss cannot keep improving
    model = PropertyPredictor(dict(channels=(2, 2, 2, 2), hidden=4, max_epochs=200, patience=2), seed=0)
    model.fit(images[:20], noise[:20], images[20:], noise[20:])
    h = model.history[0]
    assert h["epochs"] < 200
    assert h["epochs"] - h["best_epoch"] == 2


def test_deterministic_and_seeded(porosity_data):
    images, y = porosity_data
    cfg = dict(channels=(2, 4, 4, 4), hidden=8, max_epochs=2, patience=2)
    a = PropertyPredictor(cfg, seed=11).fit(images[:60], y[:60], images[60:90], y[60:90]).predict(images[90:120])
    b = PropertyPredictor(cfg, seed=11).fit(images[:60], y[:60], images[60:90], y[60:90]).predict(images[90:120])
    c = PropertyPredictor(cfg, seed=12).fit(images[:60], y[:60], images[60:90], y[60:90]).predict(images[90:120])
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_leaves_global_random_state_alone(porosity_data):
    images, y = porosity_data
    torch_state = torch.random.get_rng_state()
    np_state = np.random.get_state()[1].copy()
    PropertyPredictor(dict(channels=(2, 2, 2, 2), hidden=4, max_epochs=1), seed=0).fit(
        images[:20], y[:20], images[20:30], y[20:30])
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)


def test_one_network_per_property(porosity_data):
    images, y = porosity_data
    model = PropertyPredictor(dict(channels=(2, 2, 2, 2), hidden=4, max_epochs=2, joint=False), seed=0)
    model.fit(images[:40], y[:40], images[40:60], y[40:60])
    assert [cols for cols, _ in model.models] == [[0], [1]]
    assert len(model.history) == 2
    assert model.predict(images[60:65]).shape == (5, 2)
    assert model.names == ("y0", "y1")


def test_save_load_roundtrip(trained, porosity_data, tmp_path):
    images, _ = porosity_data
    path = trained.save(tmp_path / "cnn.pt")
    loaded = PropertyPredictor.load(path)
    np.testing.assert_array_equal(loaded.predict(images[:20]), trained.predict(images[:20]))
    assert loaded.names == trained.names and loaded.config == trained.config
    with pytest.raises(FileExistsError):
        trained.save(path)


def test_architecture_matches_paper():
    net = PropertyCNN(64, 3)
    convs = [m for m in net.features if isinstance(m, torch.nn.Conv2d)]
    pools = [m for m in net.features if isinstance(m, torch.nn.MaxPool2d)]
    assert len(convs) == 4 and all(c.kernel_size == (3, 3) for c in convs)
    assert len(pools) == 4 and all(p.stride == 2 for p in pools)
    assert net(torch.zeros(5, 1, 64, 64)).shape == (5, 3)
    with pytest.raises(ValueError, match="multiple of 16"):
        PropertyCNN(40)


def test_metrics_match_sklearn():
    from sklearn.metrics import mean_squared_error
    from sklearn.metrics import r2_score as sk_r2

    rng = np.random.default_rng(1)
    y, p = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    np.testing.assert_allclose(r2_score(y, p), sk_r2(y, p, multioutput="raw_values"), rtol=1e-12)
    np.testing.assert_allclose(rmse(y, p) ** 2, mean_squared_error(y, p, multioutput="raw_values"), rtol=1e-12)
    assert r2_score(y[:, 0], y[:, 0]) == 1.0


def test_bad_input_is_explained(porosity_data):
    images, y = porosity_data
    model = PropertyPredictor(dict(channels=(2, 2, 2, 2), hidden=4, max_epochs=1), seed=0)
    with pytest.raises(ValueError, match="NaN or inf"):
        model.fit(images[:10], np.r_[np.nan, y[1:10, 0]], images[10:20], y[10:20, 0])
    with pytest.raises(ValueError, match="constant"):
        model.fit(images[:10], np.ones(10), images[10:20], y[10:20, 0])
    with pytest.raises(ValueError, match="binary"):
        model.fit(images[:10] * 255, y[:10], images[10:20], y[10:20])
    with pytest.raises(ValueError, match="shape"):
        model.fit(images[:10], y[:9], images[10:20], y[10:20])
    with pytest.raises(RuntimeError, match="not trained"):
        model.predict(images[:2])
    model.fit(images[:10], y[:10, 0], images[10:20], y[10:20, 0])
    with pytest.raises(ValueError, match="32 px"):
        model.predict(np.zeros((2, 16, 16), dtype=np.uint8))
    with pytest.raises(ValueError, match="lr"):
        PredictorConfig(lr=0)
