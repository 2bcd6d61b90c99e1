"""Dask labeling: the same kernel mapped over chunks on a LocalCluster gives the results of
the single-process ``label`` for every kind of input (NumPy, Dask, Zarr, HDF5); label_to_csv
is ``microvae label`` from Python; the old ``microvae.distributed`` still works, with a warning."""
import json
import sys

import numpy as np
import pytest

from microvae import synthetic
from microvae.cli import main
from microvae.io import open_store
from microvae.labeling import label_chunks, label_dask, label_to_csv
from microvae.properties import LABEL_KEYS, label

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


@pytest.fixture(scope="module")
def images():
    return synthetic.grains((48, 48), 4, 0.25, n=30, seed=9)


@pytest.fixture(scope="module")
def expected(images):
    return label(images, periodic=False)


def _same(got, want):
    assert list(got) == list(LABEL_KEYS)
    for key in LABEL_KEYS:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-10, atol=1e-13)


def test_numpy_array_on_local_cluster(client, images, expected):
    _same(label_dask(images, client=client, batch_size=7, periodic=False), expected)


def test_zarr_store_is_read_by_the_workers(client, images, expected, tmp_path):
    zarr = pytest.importorskip("zarr")
    path = tmp_path / "stack.zarr"
    group = zarr.open_group(str(path), mode="w")
    group.create_array("images", shape=images.shape, chunks=(10, 48, 48), dtype="uint8")[:] = images
    _same(label_dask(str(path), client=client, dataset="images", batch_size=8, periodic=False), expected)
    # A Zarr array object works the same way.
    _same(label_dask(group["images"], client=client, batch_size=11, periodic=False), expected)


def test_hdf5_file_and_dataset(client, images, expected, tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "stack.h5"
    with h5py.File(path, "w") as fh:
        fh.create_dataset("g/images", data=images)
    _same(label_dask(path, client=client, batch_size=9, periodic=False), expected)
    with h5py.File(path, "r") as fh:
        _same(label_dask(fh["g/images"], client=client, batch_size=9, periodic=False), expected)
    assert open_store(path).shape == images.shape


def test_dask_array_keeps_its_chunks(client, images, expected):
    da = pytest.importorskip("dask.array")
    arr = da.from_array(images, chunks=(6, 24, 48))
    _same(label_dask(arr, client=client, periodic=False), expected)


def test_without_client_uses_local_scheduler(images, expected):
    _same(label_dask(images, batch_size=13, periodic=False), expected)


def test_chunks_are_saved_and_reused(tmp_path, images, expected, client):
    parts = tmp_path / "parts"
    first = label_chunks([images], parts, {"input": "x"}, batch_size=10, client=client, periodic=False)
    _same(first[0], expected)
    saved = sorted(parts.glob("part-*.npz"))
    assert len(saved) == 3
    stamp = [p.stat().st_mtime_ns for p in saved]
    saved[1].unlink()
    again = label_chunks([images], parts, {"input": "x"}, batch_size=10, periodic=False)
    _same(again[0], expected)
    assert [p.stat().st_mtime_ns for p in sorted(parts.glob("part-*.npz"))][::2] == stamp[::2]
    with pytest.raises(ValueError, match="other inputs or parameters"):
        label_chunks([images], parts, {"input": "y"}, batch_size=10, periodic=False)


def test_bad_inputs_are_explained(tmp_path, images):
    with pytest.raises(FileNotFoundError):
        label_dask(tmp_path / "missing.zarr")
    with pytest.raises(ValueError, match="shape"):
        label_dask(np.zeros((4, 4, 4, 4, 4), dtype=np.uint8))
    with pytest.raises(TypeError, match="ndim"):
        label_dask(images, ndim=2)


def test_label_to_csv_is_the_label_command(tmp_path, images, expected, client):
    """From Python, files or arrays in memory, in this process or on a cluster: the table of the CLI."""
    src = tmp_path / "g.npy"
    np.save(src, images)
    assert main(["label", str(src), "--no-periodic", "-o", str(tmp_path / "cli.csv")]) == 0
    table = label_to_csv(src, tmp_path / "py.csv", periodic=False)
    assert (tmp_path / "py.csv").read_bytes() == (tmp_path / "cli.csv").read_bytes()
    cli_meta, py_meta = (json.loads((tmp_path / f"{n}.csv.json").read_text()) for n in ("cli", "py"))
    assert cli_meta["parameters"] == py_meta["parameters"] and cli_meta["columns"] == list(table)
    np.testing.assert_array_equal(table["file"], 0)
    for key in ("porosity", "zeta2", "E", "k"):
        np.testing.assert_allclose(table[key], expected[key], rtol=1e-10)
    # Two arrays in memory, on the cluster: rows of both, in order, each with its own fingerprint.
    both = label_to_csv([images[:10], images[10:]], tmp_path / "arrays.csv", client=client, batch_size=4,
                        periodic=False)
    np.testing.assert_array_equal(both["file"], np.repeat([0, 1], [10, 20]))
    np.testing.assert_array_equal(both["image"], np.r_[np.arange(10), np.arange(20)])
    np.testing.assert_allclose(both["zeta2"], expected["zeta2"], rtol=1e-10)
    inputs = json.loads((tmp_path / "arrays.csv.json").read_text())["parameters"]["inputs"]
    assert [i["array"] for i in inputs] == [[10, 48, 48], [20, 48, 48]] and inputs[0]["sha256"] != inputs[1]["sha256"]
    assert not (tmp_path / "arrays.csv.parts").exists()
    with pytest.raises(FileExistsError, match="overwrite"):
        label_to_csv(images, tmp_path / "arrays.csv")
    with pytest.raises(ValueError, match="either client= .* or processes="):
        label_to_csv(images, tmp_path / "x.csv", client=client, processes=2)
    with pytest.raises(ValueError, match=r"slice_size=8 needs volumes; inputs\[0\] holds 2D images"):
        label_to_csv(images, tmp_path / "x.csv", slice_size=8)
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "x.csv.parts").exists()


def test_slicing_volumes_gives_the_positions_of_the_cli(tmp_path):
    vol = synthetic.overlapping_spheres((24, 24, 24), 3, 0.3, seed=1)[0]
    np.save(tmp_path / "v.npy", vol)
    assert main(["label", str(tmp_path / "v.npy"), "--volume", "--slice", "12", "--axes", "0,2",
                 "-o", str(tmp_path / "c.csv")]) == 0
    table = label_to_csv(vol, tmp_path / "p.csv", volume=True, slice_size=12, axes=(0, 2))
    cli = np.genfromtxt(tmp_path / "c.csv", delimiter=",", names=True)
    for key in ("volume", "axis", "plane", "row", "col", "porosity", "E"):
        np.testing.assert_array_equal(table[key], cli[key])
    assert sorted(set(table["axis"].tolist())) == [0, 2] and len(table["porosity"]) == 2 * 2 * 4  # axes, planes, tiles


def test_cli_names_its_flags_in_labeling_errors(tmp_path, images, capsys):
    np.save(tmp_path / "g.npy", images)
    assert main(["label", str(tmp_path / "g.npy"), "--slice", "8", "-o", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err
    assert "--slice 8 needs volumes" in err and "(pass --volume if the file is one volume)" in err
    assert main(["label", str(tmp_path / "g.npy"), "--volume", "-o", str(tmp_path / "x.csv")]) == 0
    assert main(["label", str(tmp_path / "g.npy"), "--scheduler", "tcp://127.0.0.1:1", "--processes", "2",
                 "-o", str(tmp_path / "y.csv")]) == 2
    assert "give either --scheduler (an existing cluster) or --processes (a local one)" in capsys.readouterr().err
    np.save(tmp_path / "v4.npy", images[None])
    assert main(["label", str(tmp_path / "v4.npy"), "--volume", "-o", str(tmp_path / "z.csv")]) == 2
    assert "--volume expects a 3D array (D, H, W)" in capsys.readouterr().err


def test_old_module_warns_and_reexports(monkeypatch):
    import microvae.io
    import microvae.labeling

    monkeypatch.delitem(sys.modules, "microvae.distributed", raising=False)
    with pytest.warns(DeprecationWarning, match="microvae.labeling.*microvae.io"):
        import microvae.distributed as old
    assert old.label_dask is microvae.labeling.label_dask and old.label_chunks is microvae.labeling.label_chunks
    assert old.open_store is microvae.io.open_store
    assert sorted(old.__all__) == ["label_chunks", "label_dask", "open_store"]
