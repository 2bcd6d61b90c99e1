"""Input validation of the library: wrong types are TypeErrors and bad values ValueErrors that
name the argument, with one shared validator per rule (microvae._validate); sizes that do not
fit an image and single-phase inputs are refused with the reason. Each case once gave a
traceback or a silently wrong result."""
import json

import numpy as np
import pytest

from microvae.cli import main


def test_r_max_must_be_an_integer():
    from microvae.correlations import s2

    images = (np.random.default_rng(0).random((2, 16, 16)) < 0.3).astype(np.uint8)
    for bad in (2.5, "3", True):
        with pytest.raises(TypeError, match="r_max must be an integer"):
            s2(images, r_max=bad)
    assert s2(images, r_max=np.int64(3)).shape == (2, 4)


def _call(module, name, *args, **kwargs):
    """A call of ``module.name`` made when the test runs (imports stay inside the test)."""
    import importlib

    return lambda: getattr(importlib.import_module(module), name)(*args, **kwargs)


def _fit_mrf(**options):
    def fit():
        from microvae.mrf import MRF

        return MRF(**options).fit(_IMAGES)

    return fit


_IMAGES = (np.random.default_rng(0).random((2, 16, 16)) < 0.4).astype(np.uint8)


_S3_GRID = (np.array([2.0]), np.array([2.0]), np.array([1.0]))


@pytest.mark.parametrize("call, error, match", [
    # Silently truncated or accepted before (int(2.7), float("3")), or a ValueError for a wrong type.
    (_call("microvae.properties", "label", _IMAGES, d=2, batch_size=2.7), TypeError, "batch_size must be an integer"),
    (_call("microvae.properties", "label", _IMAGES, d=2, batch_size=0), ValueError, "batch_size must be an integer >= 1"),
    (_call("microvae.correlations", "s3", _IMAGES, *_S3_GRID, n_samples=2.5), TypeError, "n_samples must be an integer"),
    (_call("microvae.correlations", "s3", _IMAGES, *_S3_GRID, n_samples=1), ValueError, "n_samples must be an integer >= 2"),
    (_call("microvae.correlations", "radial_distances", 2.5), TypeError, "r_max must be an integer"),
    (_call("microvae.correlations", "radial_distances", "3"), TypeError, "r_max must be an integer"),
    (_call("microvae.correlations", "radial_distances", -1), ValueError, "r_max must be an integer >= 0"),
    (_call("microvae.morphology", "lineal_path", _IMAGES, r_max=2.5), TypeError, "r_max must be an integer"),
    (_call("microvae.morphology", "cluster_function", _IMAGES, r_max=True), TypeError, "r_max must be an integer"),
    (_call("microvae.morphology", "lineal_path", _IMAGES, r_max=16), ValueError, r"r_max must be an integer in \[0, 15\]"),
    (_call("microvae.morphology", "chord_lengths", _IMAGES, axis=1.0), TypeError, "axis must be an integer"),
    (_call("microvae.properties.quadrature", "parameters_from_functions", None, None, 0.3, r_max="3"), TypeError,
     "r_max must be a number"),
    (_call("microvae.properties.quadrature", "parameters_from_functions", None, None, 0.3, r_max=-1.0), ValueError,
     "r_max must be positive"),
    (_call("microvae.properties", "three_point_parameters", _IMAGES, d=4), ValueError, "d must be 2 or 3"),
    (_call("microvae.properties.strong_contrast", "elastic_moduli", 0.3, 0.5, 0.5, 3, "4.3"), TypeError,
     "K1 must be a number"),
    (_call("microvae.properties.strong_contrast", "rock_youngs_modulus", 4.3, -1.0), ValueError,
     "G1 must be positive"),
    (_call("microvae.compat.porespy", "two_point_correlation_batch", _IMAGES, "2"), TypeError,
     "voxel_size must be a number"),
    (_call("microvae.mrf.features", "causal_offsets", 2.0), TypeError, "half-width S must be an integer"),
    (_fit_mrf(S=2.5), TypeError, "S must be an integer"),
    (_fit_mrf(min_samples_leaf=0), ValueError, "min_samples_leaf must be an integer >= 1"),
    (_call("microvae.vae", "sample", "no-run", 2.5), TypeError, "n must be an integer"),
    (_call("microvae.vae", "load_config", "quick", steps=2.5), TypeError, "steps must be an integer"),
    (_call("microvae.vae", "load_config", "quick", style_batch=-1), ValueError, "style_batch must be an integer >= 0"),
    (_call("microvae.nn.predictor", "PredictorConfig", batch_size=2.5), TypeError, "batch_size must be an integer"),
    (_call("microvae.study", "make_config", "quick", draws=1.5), TypeError, "draws must be an integer"),
    (_call("microvae.study", "make_config", "quick", max_epochs=2.5), TypeError, "max_epochs must be an integer"),
])
def test_wrong_types_are_type_errors_and_bad_values_value_errors(call, error, match):
    """One shared validator per rule (microvae._validate), so the same rule gives the same error."""
    with pytest.raises(error, match=match):
        call()


def test_s3_triangles_larger_than_the_image_are_refused():
    from microvae.correlations import s3

    image = (np.random.default_rng(0).random((1, 16, 16)) < 0.3).astype(np.uint8)
    with pytest.raises(ValueError, match="do not fit"):
        s3(image, [9.0], [1.0], [0.0], n_samples=10)  # wraps: 9 px is -7 px on a 16 px torus
    with pytest.raises(ValueError, match="sides up to 16"):
        s3(image, [8.0], [8.0], [np.pi], n_samples=10)  # the third side is 16 px
    with pytest.raises(ValueError, match="side - 1"):
        s3(image, [16.0], [1.0], [0.0], n_samples=10, periodic=False)
    assert s3(image, [8.0], [1.0], [0.0], n_samples=10, seed=0).estimate.shape == (1, 1, 1, 1)


def test_negative_voxel_size_is_refused():
    from microvae.correlations import radial_distances

    with pytest.raises(ValueError, match="voxel_size"):
        radial_distances(4, -1.0)
    np.testing.assert_array_equal(radial_distances(2, 0.5), [0.0, 0.5, 1.0])


def test_counts_are_checked_once_with_the_same_rule():
    """check_int: the counts of io.slices, synthetic and the MRF sampler (three copies before)."""
    from microvae import io, synthetic

    vol = (np.random.default_rng(0).random((16, 16, 16)) < 0.4).astype(np.uint8)
    with pytest.raises(TypeError, match="n must be an integer, got 2.5"):
        io.slices(vol, 8, 2.5)
    with pytest.raises(ValueError, match="n must be an integer >= 1, got 0"):
        io.slices(vol, 8, 0, stride=8)  # gave an empty stack
    with pytest.raises(ValueError, match="stride must be an integer >= 1"):
        io.slices(vol, 8, stride=0)
    with pytest.raises(TypeError, match="n must be an integer"):
        synthetic.grains((16, 16), 3, 0.3, n=2.7)  # silently truncated to 2 before
    assert len(io.slices(vol, 8, np.int64(3), seed=0)) == 3


def test_single_phase_inputs(tmp_path, capsys):
    from microvae import study
    from microvae.properties import label

    solid = np.zeros((4, 16, 16), dtype=np.uint8)
    np.save(tmp_path / "solid.npy", solid)
    assert main(["train", str(tmp_path / "solid.npy"), "-o", str(tmp_path / "run"), "--image-size", "16",
                 "--device", "cpu"]) == 2
    assert "all solid" in capsys.readouterr().err and not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="all solid"):
        study.run_study(np.zeros((40, 16, 16), np.uint8), labeller=None, generators={},
                        config=study.make_config("quick", image_size=16, generators=()), out_dir=tmp_path / "s")
    assert not (tmp_path / "s").exists()
    assert label(solid, d=2)["invalid"].tolist() == [1] * 4  # a single phase, and only that


def test_reproduce_generators_by_name(tmp_path):
    """--generators mrf reached reproduce() as the generator objects and failed; names choose
    among the real generators."""
    from microvae import study

    images = (np.random.default_rng(0).random((40, 16, 16)) < 0.4).astype(np.uint8)
    labeller = lambda x: {"porosity": x.reshape(len(x), -1).mean(1), "E": x.reshape(len(x), -1).mean(1),  # noqa: E731
                          "D": x.reshape(len(x), -1).std(1), "k": x[:, 0].mean(1)}
    paths = study.reproduce(images, generators=(), labeller=labeller, out_dir=tmp_path / "r", log=lambda m: None,
                            image_size=16, n_train=8, n_val=8, n_test=8, draws=1,
                            predictor=dict(channels=(2, 2, 2, 2), hidden=4, max_epochs=1))
    res = json.loads(paths["results"].read_text())
    assert res["config"]["generators"] == [] and res["augmented"] == []
