"""Reading image files safely: nothing is read before the suffix, the kind of file and the size
its header declares are checked; FIFOs and devices are refused without blocking; archives cannot
expand past the memory limit; colour images and non-numeric arrays are refused with advice."""
import os
import threading
import zipfile

import numpy as np
import numpy.lib.format as npy_format
import pytest

from microvae import io
from microvae.cli import main


@pytest.fixture
def two_gib(monkeypatch):
    monkeypatch.setenv("MICROVAE_MAX_MEMORY", "2G")


def _peak_rss_kib():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "x.npy"
    os.mkfifo(fifo)
    result = {}
    reader = threading.Thread(target=lambda: result.update(error=_raises(io.read, fifo)))
    reader.start()
    reader.join(10)
    if reader.is_alive():  # unblock the reader before failing
        with open(fifo, "wb"):
            pass
        reader.join()
        pytest.fail("reading a FIFO blocked")
    assert "a FIFO (named pipe), not an image file" in result["error"]


def _raises(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "no error"


def test_devices_are_refused_before_reading(tmp_path):
    with pytest.raises(ValueError, match=r"/dev/zero: unsupported file type '\(no suffix\)'"):
        io.read("/dev/zero", shape=(10,), dtype="uint8")
    link = tmp_path / "zero.raw"
    link.symlink_to("/dev/zero")  # through a symlink with an image suffix too
    with pytest.raises(ValueError, match="a device, not an image file"):
        io.read(link, shape=(10,), dtype="uint8")


def test_the_suffix_is_checked_before_the_file_is_opened(tmp_path):
    os.mkfifo(tmp_path / "x.dat")
    with pytest.raises(ValueError, match=r"unsupported file type '\.dat'"):
        io.read(tmp_path / "x.dat")


def test_a_raw_file_of_the_wrong_size_is_refused_without_reading_it(tmp_path):
    big = tmp_path / "big.raw"
    with open(big, "wb") as fh:
        fh.truncate(6 * 2**30)  # sparse: takes no disk space
    before = _peak_rss_kib()
    with pytest.raises(ValueError, match=r"file has 6442450944 bytes but shape=\(100, 100\) of dtype=uint8 needs "
                                         r"10000"):
        io.read(big, shape=(100, 100), dtype="uint8")
    assert _peak_rss_kib() - before < 100_000


def test_a_raw_file_beyond_the_memory_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("MICROVAE_MAX_MEMORY", "1M")
    raw = tmp_path / "x.raw"
    with open(raw, "wb") as fh:
        fh.truncate(4 * 2**20)
    with pytest.raises(MemoryError, match=r"x.raw \(4194304 bytes\) would take 4.0 MiB, more than the 1.0 MiB"):
        io.read(raw, shape=(4, 1024, 1024), dtype="uint8")


def _zip_of_zeros(path, member, header=None, n_bytes=2**30):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        with zf.open(member, "w", force_zip64=True) as fh:
            if header is not None:
                npy_format.write_array_header_1_0(fh, header)
            block = bytes(2**24)
            for _ in range(n_bytes // len(block)):
                fh.write(block)


def test_a_small_zip_cannot_expand_into_gigabytes(tmp_path, two_gib):
    _zip_of_zeros(tmp_path / "raw.zip", "x.raw")
    assert (tmp_path / "raw.zip").stat().st_size < 2 * 2**20
    before = _peak_rss_kib()
    with pytest.raises(ValueError, match=r"raw.zip:x.raw: file has 1073741824 bytes but shape=\(10, 10\)"):
        io.read(tmp_path / "raw.zip", shape=(10, 10), dtype="uint8")
    # A .npy whose header declares 3 GiB: refused by the limit from the header, before its data.
    _zip_of_zeros(tmp_path / "npy.zip", "x.npy", {"descr": "|u1", "fortran_order": False, "shape": (3, 2**30)},
                  n_bytes=2**24)
    with pytest.raises(MemoryError, match=r"npy.zip:x.npy \(an array of shape \(3, 1073741824\), uint8\) would "
                                          r"take 3.0 GiB"):
        io.read(tmp_path / "npy.zip")
    assert _peak_rss_kib() - before < 200_000


def test_npy_headers_are_checked_against_the_file(tmp_path):
    path = tmp_path / "x.npy"
    with open(path, "wb") as fh:
        npy_format.write_array_header_1_0(fh, {"descr": "<f8", "fortran_order": False, "shape": (100, 100)})
        fh.write(bytes(1000))
    with pytest.raises(ValueError, match=r"declares 80000 bytes of float64 \(100, 100\), but the file holds 1000 "
                                         r"\(truncated\)"):
        io.read(path)
    # Trailing bytes after the data are not read.
    with open(path, "wb") as fh:
        npy_format.write_array_header_1_0(fh, {"descr": "|u1", "fortran_order": False, "shape": (2, 3)})
        fh.write(bytes(range(6)))
        fh.truncate(2**30)
    before = _peak_rss_kib()
    np.testing.assert_array_equal(io.read(path), np.arange(6).reshape(2, 3))
    assert _peak_rss_kib() - before < 100_000


@pytest.mark.parametrize("array", [np.arange(12, dtype=">i4").reshape(3, 4), np.asfortranarray(np.eye(3, 5)),
                                   np.zeros((0, 4), bool), np.array(7.5)])
def test_npy_reads_equal_numpy(tmp_path, array):
    np.save(tmp_path / "a.npy", array)
    got = io.read(tmp_path / "a.npy")
    np.testing.assert_array_equal(got, np.load(tmp_path / "a.npy"))
    assert got.dtype == array.dtype and got.shape == array.shape


@pytest.mark.parametrize("array, what", [(np.ones((2, 3), np.complex64), "dtype complex64"),
                                         (np.array(["a", "b"]), "dtype <U1"),
                                         (np.array([{"a": 1}], dtype=object), "Python objects")])
def test_non_numeric_arrays_are_refused(tmp_path, array, what):
    np.save(tmp_path / "a.npy", array, allow_pickle=True)
    np.savez(tmp_path / "a.npz", images=array)
    for name in ("a.npy", "a.npz"):
        with pytest.raises(ValueError, match=what) as info:
            io.read(tmp_path / name)
        assert "allow_pickle" not in str(info.value)


def test_npz_members_that_are_not_arrays_are_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "x.npz", "w") as zf:
        zf.writestr("images.txt", "hello")
    with pytest.raises(ValueError, match=r"holds 'images.txt', which is not a NumPy array \(.npy\)"):
        io.read(tmp_path / "x.npz")


def test_npz_reads_only_the_chosen_array(tmp_path, monkeypatch):
    np.savez(tmp_path / "x.npz", small=np.ones((2, 2), np.uint8), big=np.zeros((512, 1024), np.uint8))
    monkeypatch.setenv("MICROVAE_MAX_MEMORY", "100K")
    np.testing.assert_array_equal(io.read(tmp_path / "x.npz", key="small"), 1)
    with pytest.raises(MemoryError, match=r"x.npz\[big\]"):
        io.read(tmp_path / "x.npz", key="big")


def test_colour_tiffs_and_pngs_are_refused_with_advice(tmp_path):
    import tifffile
    from PIL import Image

    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[8:20, 8:20] = 255
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    with pytest.raises(ValueError, match=r"rgb.tif: a colour or multi-channel TIFF \(3 samples per pixel, RGB\); "
                                         r"microvae reads single-channel segmented images: save one channel"):
        io.read(tmp_path / "rgb.tif")
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[..., 3] = 255
    (tmp_path / "pngs").mkdir()
    Image.fromarray(rgba, "RGBA").save(tmp_path / "pngs" / "0.png")
    with pytest.raises(ValueError, match=r"0.png: a colour PNG \(mode RGBA, 4 channels\)"):
        io.read(tmp_path / "pngs")
    with zipfile.ZipFile(tmp_path / "x.zip", "w") as zf:
        zf.write(tmp_path / "pngs" / "0.png", "0.png")
    with pytest.raises(ValueError, match=r"x.zip:0.png: a colour PNG"):
        io.read(tmp_path / "x.zip")
    # Grey, indexed and 16-bit images are single-channel and read as they are.
    for mode, array in (("L", rgb[..., 0]), ("P", rgb[..., 0] // 255), ("I;16", rgb[..., 0].astype(np.uint16))):
        Image.fromarray(array).convert(mode).save(tmp_path / "g.png")
        np.testing.assert_array_equal(io.read(tmp_path / "g.png"), array)
    stack = np.stack([rgb[..., 0], rgb[..., 0] // 2, rgb[..., 0] // 4])
    io.save(tmp_path / "stack.tif", stack)  # three grey images, not one RGB image
    np.testing.assert_array_equal(io.read(tmp_path / "stack.tif"), stack)
    # Such a stack stored as separate RGB planes (as tifffile did by default) still reads as a stack.
    tifffile.imwrite(tmp_path / "planes.tif", stack, photometric="rgb", planarconfig="separate")
    np.testing.assert_array_equal(io.read(tmp_path / "planes.tif"), stack)


def test_save_refuses_what_read_refuses(tmp_path):
    for bad in (np.array([{"a": 1}, None], dtype=object), np.ones((2, 4, 4), complex)):
        with pytest.raises(TypeError, match="microvae saves numeric or boolean images only"):
            io.save(tmp_path / "o.npy", bad)
        assert not (tmp_path / "o.npy").exists()


def test_cli_reads_are_refused_in_one_line(tmp_path, capsys):
    os.mkfifo(tmp_path / "x.npy")
    assert main(["data", "info", str(tmp_path / "x.npy")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a FIFO (named pipe), not an image file" in err


def test_slices_count_the_grid_without_listing_it(two_gib):
    vol = (np.random.default_rng(0).random((400, 400, 400)) < 0.2).astype(np.uint8)
    before = _peak_rss_kib()
    out, pos = io.slices(vol, 8, 10, stride=1, seed=3, return_positions=True)
    assert out.shape == (10, 8, 8) and _peak_rss_kib() - before < 300_000
    for (a, p, i, j), sample in zip(pos, out):
        np.testing.assert_array_equal(sample, np.take(vol, p, axis=a)[i:i + 8, j:j + 8])
    with pytest.raises(MemoryError, match=r"185338800 samples of 8 x 8 px would take 16.6 GiB"):
        io.slices(vol, 8, stride=1)
    with pytest.raises(MemoryError, match=r"1000000000 samples of 8 x 8 px would take 89.4 GiB"):
        io.slices(vol, 8, 10**9)


def test_grid_subsets_are_those_of_the_listed_grid():
    """The grid is counted, not listed; the samples are those of the listed grid (the old way,
    written out here as the reference) for the same seed."""
    vol = (np.random.default_rng(1).random((20, 24, 28)) < 0.3).astype(np.uint8)
    size, stride, axes = 5, 3, (2, 0)
    grid = [(a, p, i, j) for a in axes for p in range(0, vol.shape[a], stride)
            for i in range(0, [s for k, s in enumerate(vol.shape) if k != a][0] - size + 1, stride)
            for j in range(0, [s for k, s in enumerate(vol.shape) if k != a][1] - size + 1, stride)]
    want = np.asarray(grid)[np.sort(np.random.default_rng(4).choice(len(grid), size=7, replace=False))]
    _, pos = io.slices(vol, size, 7, axes=axes, stride=stride, seed=4, return_positions=True)
    np.testing.assert_array_equal(pos, want)
    _, every = io.slices(vol, size, axes=axes, stride=stride, return_positions=True)
    np.testing.assert_array_equal(every, np.asarray(grid))
