import zipfile

import numpy as np
import pytest
import tifffile
from PIL import Image

from microvae import io
from tests.conftest import shared_file


@pytest.fixture
def volume(rng):
    return (rng.random((20, 24, 28)) < 0.3).astype(np.uint8)


def test_roundtrip_formats(tmp_path, volume):
    for name in ("v.npy", "v.npz", "v.tif"):
        io.save(tmp_path / name, volume)
        np.testing.assert_array_equal(io.load(tmp_path / name), volume)


def test_pore_value_mapping(tmp_path, volume):
    stored = np.where(volume == 1, 0, 255).astype(np.uint8)  # pores stored as 0, like Berea
    tifffile.imwrite(tmp_path / "s.tif", stored)
    np.testing.assert_array_equal(io.load(tmp_path / "s.tif", pore_value=0), volume)
    with pytest.raises(ValueError, match="pore_value"):
        io.load(tmp_path / "s.tif")
    with pytest.raises(ValueError, match="does not occur"):
        io.load(tmp_path / "s.tif", pore_value=7)


def test_grayscale_refused_with_advice(tmp_path, rng):
    np.save(tmp_path / "g.npy", rng.integers(0, 255, (8, 8)))
    with pytest.raises(ValueError, match="binarize"):
        io.load(tmp_path / "g.npy", pore_value=0)


def test_png_folder_raw_and_zip(tmp_path, volume):
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, plane in enumerate(volume[:3]):
        Image.fromarray(plane * 255).save(folder / f"{i:03d}.png")
    np.testing.assert_array_equal(io.load(folder, pore_value=255), volume[:3])

    volume.tofile(tmp_path / "v.raw")
    np.testing.assert_array_equal(io.load(tmp_path / "v.raw", shape=volume.shape, dtype="uint8"), volume)
    with pytest.raises(ValueError, match="truncated"):
        io.load(tmp_path / "v.raw", shape=(21, 24, 28), dtype="uint8")

    np.save(tmp_path / "v.npy", volume)
    with zipfile.ZipFile(tmp_path / "v.zip", "w") as zf:
        zf.write(tmp_path / "v.npy", "inner/v.npy")
    np.testing.assert_array_equal(io.load(tmp_path / "v.zip"), volume)


@pytest.mark.parametrize("content,suffix,match", [
    (b"not a numpy file", ".npy", "cannot read"),
    (b"II*\x00garbage", ".tif", "cannot read|empty"),
    (b"PK\x03\x04broken", ".zip", "zip"),
    (b"", ".xyz", "unsupported"),
])
def test_corrupt_and_unknown_files(tmp_path, content, suffix, match):
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        io.load(path)


def test_missing_file_and_empty_and_nan(tmp_path):
    with pytest.raises(FileNotFoundError):
        io.load(tmp_path / "nope.npy")
    np.save(tmp_path / "e.npy", np.zeros((0, 4)))
    with pytest.raises(ValueError, match="empty"):
        io.load(tmp_path / "e.npy")
    np.save(tmp_path / "n.npy", np.array([[0.0, np.nan]]))
    with pytest.raises(ValueError, match="NaN"):
        io.load(tmp_path / "n.npy", pore_value=0)


def test_save_never_overwrites_without_consent(tmp_path, volume):
    path = tmp_path / "v.npy"
    io.save(path, volume)
    with pytest.raises(FileExistsError):
        io.save(path, 1 - volume)
    np.testing.assert_array_equal(np.load(path), volume)
    io.save(path, 1 - volume, overwrite=True)
    np.testing.assert_array_equal(np.load(path), 1 - volume)


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"precious")

    def failing(fh):
        fh.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        io.atomic_write(path, failing, overwrite=True)
    assert path.read_bytes() == b"precious"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]  # no temp file left behind


def test_atomic_write_gives_the_permissions_of_a_plain_open(tmp_path):
    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"x")
    written = io.atomic_write(tmp_path / "atomic.bin", lambda fh: fh.write(b"x"))
    assert written.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777


def test_binarize():
    img = np.array([[10, 200], [90, 120]])
    np.testing.assert_array_equal(io.binarize(img, 100), [[1, 0], [1, 0]])
    np.testing.assert_array_equal(io.binarize(img, 100, "above"), [[0, 1], [0, 1]])
    with pytest.raises(ValueError, match="below"):
        io.binarize(img, 100, "dark")
    with pytest.raises(ValueError, match="NaN"):
        io.binarize(np.array([np.nan]), 0.5)


def test_slices_random_and_grid(volume):
    out, pos = io.slices(volume, 8, 30, seed=0, return_positions=True)
    assert out.shape == (30, 8, 8)
    assert set(pos[:, 0]) == {0, 1, 2}
    for sample, (a, p, i, j) in zip(out, pos):
        np.testing.assert_array_equal(sample, np.take(volume, p, axis=a)[i:i + 8, j:j + 8])
    np.testing.assert_array_equal(io.slices(volume, 8, 30, seed=0), out)

    grid = io.slices(volume, 10, stride=10, axes=(0,))
    assert grid.shape == (2 * 2 * 2, 10, 10)  # planes 0, 10; offsets (0, 10) x (0, 10)
    np.testing.assert_array_equal(grid[0], volume[0, :10, :10])
    sub = io.slices(volume, 10, 3, stride=10, axes=(0,), seed=1)
    assert sub.shape == (3, 10, 10)


@pytest.mark.parametrize("kwargs,match", [
    (dict(size=30, n=2), "does not fit"),
    (dict(size=8), "give n"),
    (dict(size=8, n=2, axes=(3,)), "axes"),
    (dict(size=8, n=999, stride=8), "exceeds"),
])
def test_slices_bad_arguments(volume, kwargs, match):
    with pytest.raises(ValueError, match=match):
        io.slices(volume, **kwargs)


def test_slices_rejects_non_binary(volume):
    with pytest.raises(ValueError, match="binary"):
        io.slices(volume * 255, 8, 2)


def test_save_table_and_sidecar(tmp_path):
    import csv
    import json

    path, sidecar = io.save_table(tmp_path / "t.csv", {"a": [1, 2], "b": [0.5, 0.25]}, {"seed": 3})
    rows = list(csv.reader(open(path)))
    assert rows == [["a", "b"], ["1", "0.5"], ["2", "0.25"]]
    meta = json.load(open(sidecar))
    assert meta["parameters"] == {"seed": 3} and meta["rows"] == 2 and "microvae_version" in meta
    with pytest.raises(FileExistsError):
        io.save_table(path, {"a": [1]}, {})
    with pytest.raises(ValueError, match="equal-length"):
        io.save_table(tmp_path / "u.csv", {"a": [1], "b": [1, 2]}, {})



def test_json_policy_writes_standard_json(tmp_path):
    """One encoder for every JSON file: NumPy values as Python ones, NaN and infinities as null."""
    import json
    from pathlib import Path

    data = {"nan": np.float32("nan"), "inf": [float("inf"), -np.inf], "x": np.float64(0.1), "n": np.int64(3),
            "flag": np.bool_(True), "arr": np.arange(3, dtype=np.uint8), "pair": (1, 2.5), "path": Path("/a/b"),
            6: "int key"}
    plain = io.jsonable(data)
    assert plain == {"nan": None, "inf": [None, None], "x": 0.1, "n": 3, "flag": True, "arr": [0, 1, 2],
                     "pair": [1, 2.5], "path": "/a/b", 6: "int key"}
    assert type(plain["n"]) is int and type(plain["flag"]) is bool and type(plain["x"]) is float
    path = io.write_json(tmp_path / "r.json", data)
    text = path.read_text()
    # parse_constant is called for NaN/Infinity tokens only: none may appear.
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard token {c}"))["nan"] is None
    with pytest.raises(FileExistsError, match="overwrite"):
        io.write_json(path, {})
    assert json.loads(io.write_json(path, [1], overwrite=True, indent=None).read_text()) == [1]
    with pytest.raises(TypeError, match="not JSON serializable: object"):
        io.jsonable({"a": object()})
    # The sidecar of a table follows the same policy.
    _, sidecar = io.save_table(tmp_path / "t.csv", {"a": [1.0]}, {"missing": np.nan})
    assert json.loads(sidecar.read_text())["parameters"] == {"missing": None}
    assert sidecar == io.sidecar_path(tmp_path / "t.csv") == tmp_path / "t.csv.json"


def test_as_image_stack_layouts():
    img = np.zeros((5, 6), dtype=np.uint8)
    for data, volume, shape, nd in ((img, False, (1, 5, 6), 2), (img[None].repeat(3, 0), False, (3, 5, 6), 2),
                                    (np.zeros((2, 4, 5, 6)), False, (2, 4, 5, 6), 3),
                                    (img[None].repeat(4, 0), True, (1, 4, 5, 6), 3)):
        stack, got_nd = io.as_image_stack(data, volume=volume)
        assert stack.shape == shape and got_nd == nd
    with pytest.raises(ValueError, match="volume=True expects a 3D array"):
        io.as_image_stack(np.zeros((2, 4, 5, 6)), volume=True)
    with pytest.raises(ValueError, match="cannot interpret an array of shape"):
        io.as_image_stack(np.zeros(5))


def test_store_paths_and_overwrite_check(tmp_path):
    assert io.is_store("a/b.zarr/") and io.is_store("x.H5") and io.is_store(tmp_path / "s.hdf5")
    assert not io.is_store("x.npz") and not io.is_store("zarr")
    assert io.STORE_SUFFIXES == (".zarr", ".h5", ".hdf5", ".he5")
    (tmp_path / "b").write_text("x")
    io.check_overwrite(tmp_path / "a", tmp_path / "b", overwrite=True)
    with pytest.raises(FileExistsError, match=r"b exists; pass overwrite=True"):
        io.check_overwrite(tmp_path / "a", tmp_path / "b")


def test_integral_pore_value_given_as_float_is_the_stored_integer(tmp_path, volume):
    io.save(tmp_path / "v.npy", volume * 255)
    np.testing.assert_array_equal(io.load(tmp_path / "v.npy", pore_value=255.0), volume)
    with pytest.raises(ValueError, match=r"pore_value=7 does not occur"):
        io.load(tmp_path / "v.npy", pore_value=7.0)

@pytest.mark.data
def test_berea_loads_with_documented_porosity():
    vol = io.load(shared_file("berea.zip"), pore_value=0)
    assert vol.shape == (400, 400, 400)
    assert abs(vol.mean() - 0.1965) < 5e-4  # README of ../shared/data


@pytest.mark.data
def test_sandstone_2d_loads():
    im = io.load(shared_file("sandstone_li2018_256.npy"))
    assert im.shape == (256, 256) and abs(im.mean() - 0.197) < 1e-3
