"""Dask labeling: the same kernel mapped over chunks on a LocalCluster gives the results of
the single-process ``label`` for every kind of input (NumPy, Dask, Zarr, HDF5)."""
import numpy as np
import pytest

from microvae import synthetic
from microvae.distributed import label_chunks, label_dask, open_store
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
