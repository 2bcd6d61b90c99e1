"""``label()`` and ``microvae label``: the labels are the documented compositions of the
kernels, stores are read lazily, the CLI writes CSV + sidecar, resumes, and labels Berea;
images the labels cannot describe (unresolved or non-positive k) are flagged with the reason."""
import json

import numpy as np
import pytest

from microvae import synthetic
from microvae.cli import main
from microvae.correlations import s2
from microvae.properties import (
    LABEL_KEYS,
    diffusivity,
    elastic_moduli,
    label,
    permeability,
    three_point_parameters,
    youngs_modulus,
)
from tests.conftest import shared_file


@pytest.fixture(scope="module")
def grains():
    return synthetic.grains((64, 64), 5, 0.25, n=24, seed=3)


def _read_csv(path):
    return np.genfromtxt(path, delimiter=",", names=True)


def test_labels_are_the_documented_compositions(grains):
    out = label(grains, d=3, voxel_size=2.0)
    assert list(out) == list(LABEL_KEYS)
    assert all(len(v) == len(grains) for v in out.values())
    phi = grains.reshape(len(grains), -1).mean(axis=1)
    zeta, eta = three_point_parameters(grains, d=3)
    np.testing.assert_array_equal(out["porosity"], phi)
    np.testing.assert_allclose(out["zeta2"], zeta, rtol=1e-12)
    np.testing.assert_allclose(out["eta2"], eta, rtol=1e-12)
    k_eff, g_eff = elastic_moduli(phi, zeta, eta, 3)
    np.testing.assert_allclose(out["K"], k_eff, rtol=1e-12)
    np.testing.assert_allclose(out["G"], g_eff, rtol=1e-12)
    np.testing.assert_allclose(out["E"], youngs_modulus(phi, zeta, eta, 3), rtol=1e-12)
    np.testing.assert_allclose(out["D"], diffusivity(phi, zeta, 3), rtol=1e-12)
    np.testing.assert_allclose(out["k"], 4 * permeability(s2(grains), phi), rtol=1e-12)
    assert out["valid"].dtype == bool and out["valid"].all()
    # Physical ranges: stiffness and diffusivity below the rock's and the pore's.
    assert np.all((out["E"] > 0) & (out["E"] < 1) & (out["D"] > 0) & (out["D"] < 1) & (out["k"] > 0))


@pytest.mark.parametrize("periodic", [True, False])
def test_labels_equal_the_scipy_path_of_before(grains, periodic):
    # label() runs ζ2, η2 and S2 through the compiled kernel; the array operations of before
    # (SciPy transforms, S2 computed on its own) give the same labels to rounding.
    from microvae.properties._engines import NumpyOps
    from microvae.properties.label import label_batch

    new = label(grains[:9], periodic=periodic)
    old = label_batch(grains[:9], 2, 3, 4.3, 3.8, 1.0, periodic, None, True, None, None, ops=NumpyOps(None))
    for key in LABEL_KEYS:
        np.testing.assert_allclose(new[key], old[key], rtol=1e-10, atol=1e-10, err_msg=key)


def test_batches_do_not_change_results(grains):
    whole = label(grains)
    pieces = label(grains, batch_size=5)
    for key in LABEL_KEYS:
        np.testing.assert_allclose(pieces[key], whole[key], rtol=1e-12)


def test_single_image_volume_and_flags():
    one = label(synthetic.grains((48, 48), 4, 0.3, n=1, seed=1)[0])
    assert len(one["E"]) == 1
    vol = synthetic.overlapping_spheres((32, 32, 32), 4, 0.4, n=1, seed=2)[0]
    out = label(vol, ndim=3)
    assert len(out["zeta2"]) == 1 and out["valid"][0]
    # Connected pores in a genuinely 2D medium: moduli reported as 0 and flagged.
    porous = synthetic.overlapping_disks((128, 128), 6, 0.8, n=2, seed=4)
    flat = label(porous, d=2)
    assert not flat["valid"].any() and np.all(flat["K"] == 0) and np.all(flat["E"] >= 0)
    empty = label(np.zeros((1, 32, 32), dtype=np.uint8))
    assert not empty["valid"][0] and np.isnan(empty["zeta2"][0])


def test_zarr_store_is_read_lazily_with_identical_results(tmp_path, grains):
    zarr = pytest.importorskip("zarr")
    store = zarr.open(str(tmp_path / "g.zarr"), mode="w", shape=grains.shape, chunks=(8, 64, 64), dtype="uint8")
    store[:] = grains
    lazy = label(store, batch_size=7)
    eager = label(grains)
    for key in LABEL_KEYS:
        np.testing.assert_allclose(lazy[key], eager[key], rtol=1e-12)


def test_bad_arguments_are_explained(grains):
    with pytest.raises(ValueError, match="d must be 2 or 3"):
        label(grains, d=1)
    with pytest.raises(ValueError, match="voxel_size"):
        label(grains, voxel_size=0)
    with pytest.raises(ValueError, match="binary"):
        label(grains * 3)


# ---------------------------------------------------------------- CLI

def test_cli_writes_csv_and_sidecar(tmp_path, grains, capsys):
    src = tmp_path / "g.npy"
    np.save(src, grains)
    out = tmp_path / "labels.csv"
    assert main(["label", str(src), "-o", str(out), "--chunk", "10", "--voxel-size", "0.5"]) == 0
    table = _read_csv(out)
    expected = label(grains, voxel_size=0.5)
    assert len(table) == len(grains)
    np.testing.assert_array_equal(table["image"], np.arange(len(grains)))
    for key in ("porosity", "zeta2", "eta2", "K", "G", "E", "D", "k"):
        np.testing.assert_allclose(table[key], expected[key], rtol=1e-12)
    meta = json.loads((tmp_path / "labels.csv.json").read_text())
    assert meta["parameters"]["d"] == 3 and meta["parameters"]["voxel_size"] == 0.5
    assert meta["rows"] == len(grains) and "microvae_version" in meta
    assert not (tmp_path / "labels.csv.parts").exists()
    assert "0 flagged" in capsys.readouterr().out
    # An existing output is kept unless --overwrite.
    assert main(["label", str(src), "-o", str(out)]) == 2
    assert "exists" in capsys.readouterr().err


def test_cli_reads_hdf5_stores_chunk_by_chunk(tmp_path, grains):
    h5py = pytest.importorskip("h5py")
    src = tmp_path / "stack.h5"
    with h5py.File(src, "w") as fh:
        fh.create_dataset("a", data=grains[:5])
        fh.create_dataset("b", data=grains)
    out = tmp_path / "h5.csv"
    assert main(["label", str(src), "-o", str(out)]) == 2  # two arrays: which one?
    assert main(["label", str(src), "--dataset", "b", "--chunk", "9", "-o", str(out)]) == 0
    np.testing.assert_allclose(_read_csv(out)["eta2"], label(grains)["eta2"], rtol=1e-12)


def test_cli_slices_volumes_along_three_axes(tmp_path):
    vol = synthetic.overlapping_spheres((48, 48, 48), 4, 0.4, n=1, seed=6)[0]
    src = tmp_path / "vol.npy"
    np.save(src, vol)
    out = tmp_path / "slices.csv"
    assert main(["label", str(src), "--volume", "--slice", "24", "--stride", "24", "-o", str(out)]) == 0
    table = _read_csv(out)
    # 3 axes x 2 planes x 2 x 2 tiles.
    assert len(table) == 24
    assert sorted(set(table["axis"].astype(int))) == [0, 1, 2]
    first = vol[0, :24, :24]
    np.testing.assert_allclose(table["porosity"][0], first.mean())


def test_cli_resumes_after_an_interruption(tmp_path, grains, monkeypatch):
    import microvae.labeling.chunks as dist

    src = tmp_path / "g.npy"
    np.save(src, grains)
    out = tmp_path / "labels.csv"
    real = dist._label_slice
    calls = []

    def flaky(source, start, stop, kwargs):
        calls.append(start)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(source, start, stop, kwargs)

    monkeypatch.setattr(dist, "_label_slice", flaky)
    assert main(["label", str(src), "-o", str(out), "--chunk", "10"]) == 130
    assert len(list((tmp_path / "labels.csv.parts").glob("part-*.npz"))) == 1
    calls.clear()
    monkeypatch.setattr(dist, "_label_slice", lambda *a: (calls.append(a[1]), real(*a))[1])
    assert main(["label", str(src), "-o", str(out), "--chunk", "10"]) == 0
    assert calls == [10, 20]  # the first chunk was not recomputed
    np.testing.assert_allclose(_read_csv(out)["zeta2"], label(grains)["zeta2"], rtol=1e-12)
    # Saved chunks from other inputs or parameters are refused, and discarded by --overwrite.
    (tmp_path / "other.csv.parts").mkdir()
    (tmp_path / "other.csv.parts" / "manifest.json").write_text(json.dumps({"digest": "other"}))
    (tmp_path / "other.csv.parts" / "part-0000-000000000000.npz").write_bytes(b"")  # a manifest alone is replaced
    assert main(["label", str(src), "-o", str(tmp_path / "other.csv")]) == 2
    assert main(["label", str(src), "-o", str(tmp_path / "other.csv"), "--overwrite"]) == 0


@pytest.mark.data
def test_cli_labels_berea_slices(tmp_path, berea_volume):
    out = tmp_path / "berea.csv"
    assert main(["label", str(shared_file("berea.zip")), "--pore-value", "0", "--volume", "--slice", "128",
                 "--stride", "128", "--no-periodic", "-o", str(out)]) == 0
    table = _read_csv(out)
    assert len(table) == 3 * 4 * 9
    assert abs(table["porosity"].mean() - berea_volume.mean()) < 0.01
    assert table["valid"].all()
    assert np.all((table["E"] > 0.2) & (table["E"] < 0.9))
    assert np.all((table["D"] > 0.01) & (table["D"] < 0.4))
    assert np.all(table["k"] > 0)


def test_unresolved_or_non_positive_permeability_is_flagged_with_the_reason():
    from microvae import synthetic
    from microvae.correlations import s2
    from microvae.properties import label
    from microvae.properties.strong_contrast import INVALID_FLAGS, invalid_reasons, validity_flags

    noise = (np.random.default_rng(0).random((40, 32, 32)) < 0.3).astype(np.uint8)
    out = label(noise, d=3)
    chi1 = s2(noise)[:, 1] - out["porosity"] ** 2
    # Uncorrelated pixels: χ reaches 0 within the first pixel in most images, and k <= 0 in many.
    assert (chi1 <= 0).sum() > 10 and (out["k"] <= 0).sum() > 10
    assert not out["valid"][out["k"] <= 0].any() and not out["valid"][chi1 <= 0].any()
    assert np.all((out["invalid"][out["k"] <= 0] & 8) == 8)
    assert np.array_equal((out["invalid"] & 16) == 16, chi1 <= 0)
    assert np.array_equal(out["valid"], out["invalid"] == 0)
    assert "k <= 0" in " ".join(invalid_reasons(out["invalid"][np.argmin(out["k"])]))
    # Resolved media keep their labels valid.
    grains = label(synthetic.grains((64, 64), 4, 0.25, n=6, seed=1))
    assert grains["valid"].all() and (grains["invalid"] == 0).all() and (grains["k"] > 0).all()
    assert validity_flags(0.3, 0.4, 0.4, k=-1.0) == 8 and validity_flags(1.0, 0.4, 0.4) == 1
    assert set(INVALID_FLAGS) == {1, 2, 4, 8, 16}


def test_cli_label_says_why_images_are_flagged(tmp_path, capsys):
    np.save(tmp_path / "noise.npy", (np.random.default_rng(3).random((8, 16, 16)) < 0.3).astype(np.uint8))
    out = tmp_path / "labels.csv"
    assert main(["label", str(tmp_path / "noise.npy"), "-o", str(out), "--d", "2"]) == 0
    assert "k unresolved" in capsys.readouterr().out
    table = np.genfromtxt(out, delimiter=",", names=True)
    assert np.array_equal(table["valid"] == 1, table["invalid"] == 0) and (table["invalid"] > 0).any()
    meta = json.loads((tmp_path / "labels.csv.json").read_text())
    assert meta["parameters"]["invalid_flags"]["8"] == "permeability k <= 0"
