"""Untrusted files are data, not code: Zarr stores (and Zarr/Dask arrays passed in) with pickle
codecs or object dtypes are refused from their metadata before any chunk is read, object
``.npy`` files are refused without advising pickle, and a raw file's size check cannot
overflow."""
import json
import pickle

import numpy as np
import pytest

from microvae.cli import main


class _Marker:
    """Pickled into a chunk: unpickling it creates a file, i.e. runs code from the data."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _pickle_store(path, marker, dtype="|O"):
    """A Zarr v2 store whose chunk is decoded by the pickle filter (the zarr 2 layout)."""
    path.mkdir()
    (path / ".zarray").write_text(json.dumps({
        "zarr_format": 2, "shape": [2, 8, 8], "chunks": [2, 8, 8], "dtype": dtype, "compressor": None,
        "fill_value": 0, "filters": [{"id": "pickle"}], "order": "C"}))
    (path / "0.0.0").write_bytes(pickle.dumps(_Marker(marker)))
    return path


@pytest.mark.parametrize("dtype", ["|O", "|u1"])
def test_zarr_pickle_codec_is_refused_before_any_chunk_is_read(tmp_path, monkeypatch, capsys, dtype):
    zarr = pytest.importorskip("zarr")
    from microvae.io import open_store

    marker = tmp_path / "code_ran"
    store = _pickle_store(tmp_path / "evil.zarr", marker, dtype)
    # Even where numcodecs' own guard is switched off, nothing is decoded.
    monkeypatch.setenv("NUMCODECS_ALLOW_UNSAFE_PICKLE_DECODE", "1")
    opened = []
    monkeypatch.setattr(zarr, "open", lambda *a, **k: opened.append(a) or pytest.fail("zarr.open was called"))
    with pytest.raises(ValueError, match="pickle"):
        open_store(store)
    assert main(["label", str(store), "-o", str(tmp_path / "labels.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "refusing" in err and "evil.zarr" in err
    assert not opened and not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.zarr"]  # no output, no .parts manifest


def test_zarr_object_dtype_is_refused(tmp_path):
    pytest.importorskip("zarr")
    from microvae.io import open_store

    store = tmp_path / "strings.zarr"
    store.mkdir()
    (store / ".zarray").write_text(json.dumps({
        "zarr_format": 2, "shape": [2, 8, 8], "chunks": [2, 8, 8], "dtype": "|O", "compressor": None,
        "fill_value": 0, "filters": [{"id": "vlen-utf8"}], "order": "C"}))
    with pytest.raises(ValueError, match="not numeric or boolean"):
        open_store(store)


def test_numeric_zarr_store_still_opens(tmp_path):
    zarr = pytest.importorskip("zarr")
    from microvae.io import open_store

    group = zarr.open_group(str(tmp_path / "ok.zarr"), mode="w")
    group.create_array("images", shape=(3, 8, 8), chunks=(1, 8, 8), dtype="uint8")[:] = 1
    assert open_store(tmp_path / "ok.zarr").shape == (3, 8, 8)


def _consolidated_store(path, zarr_format):
    """A benign uint8 store whose consolidated metadata alone names a pickle filter/codec."""
    zarr = pytest.importorskip("zarr")
    group = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)
    group.create_array("images", shape=(2, 8, 8), chunks=(2, 8, 8), dtype="uint8")[:] = 1
    zarr.consolidate_metadata(str(path))
    if zarr_format == 2:
        meta = json.loads((path / ".zmetadata").read_text())
        meta["metadata"]["images/.zarray"]["filters"] = [{"id": "pickle"}]
        (path / ".zmetadata").write_text(json.dumps(meta))
    else:
        meta = json.loads((path / "zarr.json").read_text())
        meta["consolidated_metadata"]["metadata"]["images"]["codecs"].insert(0, {"name": "numcodecs.pickle"})
        (path / "zarr.json").write_text(json.dumps(meta))
    return path


@pytest.mark.filterwarnings("ignore:Consolidated metadata is currently not part")
@pytest.mark.parametrize("zarr_format", [2, 3])
def test_zarr_consolidated_metadata_is_checked_like_the_array_metadata(tmp_path, monkeypatch, zarr_format):
    zarr = pytest.importorskip("zarr")
    from microvae.io import open_store
    from microvae.labeling import label_dask

    store = _consolidated_store(tmp_path / "consolidated.zarr", zarr_format)
    # zarr reads consolidated metadata instead of the per-array files, which stay benign here.
    array_meta = store / "images" / (".zarray" if zarr_format == 2 else "zarr.json")
    assert "pickle" not in array_meta.read_text()
    monkeypatch.setattr(zarr, "open", lambda *a, **k: pytest.fail("zarr.open was called"))
    for call in (open_store, label_dask):
        with pytest.raises(ValueError, match="refusing a Zarr array encoded with .*pickle"):
            call(store)


class _Zarr2Array:
    """Stands in for a zarr 2 array opened by the caller (zarr 3 cannot build one with a pickle filter)."""

    __module__ = "zarr.core"

    def __init__(self, dtype, filters):
        self.shape, self.dtype, self.filters, self.compressor = (2, 8, 8), np.dtype(dtype), filters, None


@pytest.mark.parametrize("make, match", [
    (lambda: _Zarr2Array("u1", [pytest.importorskip("numcodecs").Pickle()]), "encoded with 'pickle'"),
    (lambda: pytest.importorskip("dask.array").from_array(np.empty((2, 8, 8), dtype=object), chunks=1),
     "dtype object is not numeric"),
    (lambda: pytest.importorskip("zarr").create_array(store={}, shape=(2, 8, 8), dtype=str), "not numeric"),
], ids=["zarr2-pickle-filter", "dask-object", "zarr-string"])
def test_label_dask_checks_an_array_the_caller_opened(monkeypatch, make, match):
    import microvae.properties
    from microvae.labeling import label_dask

    monkeypatch.setattr(microvae.properties, "label", lambda *a, **k: pytest.fail("a chunk was labelled"))
    with pytest.raises(ValueError, match=match):
        label_dask(make())


def test_raw_shape_message_does_not_overflow(tmp_path):
    from microvae import io

    (tmp_path / "x.raw").write_bytes(b"12")
    with pytest.raises(ValueError, match=r"needs 1329227995784915872903807060280344576 \("):
        io.read(tmp_path / "x.raw", shape=(2 ** 40,) * 3, dtype="uint8")


def test_object_npy_is_refused_without_advising_pickle(tmp_path):
    from microvae import io

    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError) as exc:
        io.read(tmp_path / "obj.npy")
    assert "Python objects" in str(exc.value) and "allow_pickle" not in str(exc.value)
