"""microvae.datasets: downloads pinned by SHA-256, served here by a loopback HTTP server from
../shared/data (nothing leaves this machine; the tests skip where that folder is absent)."""
import functools
import hashlib
import http.server
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA, shared_file

from microvae import datasets
from microvae.cli import main

pytestmark = pytest.mark.data


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; ``cut`` = bytes after which a response is cut short (the full length
    announced, then the connection closed)."""

    requests = []
    cut = None

    def log_message(self, *args):
        pass

    def do_GET(self):
        type(self).requests.append(self.path)
        if self.cut is None:
            return super().do_GET()
        body = (Path(self.directory) / self.path.lstrip("/")).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:self.cut])
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture
def server(monkeypatch):
    """Start a loopback server; ``serve(folder, cut=None)`` points MICROVAE_DATA_URL at it."""
    started = []

    def serve(folder, cut=None):
        handler = type("Handler", (_Handler,), {"requests": [], "cut": cut})
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(folder)))
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        started.append(srv)
        url = f"http://127.0.0.1:{srv.server_port}/"
        monkeypatch.setenv("MICROVAE_DATA_URL", url)
        return handler, url

    monkeypatch.delenv("MICROVAE_DATA_DIR", raising=False)
    yield serve
    for srv in started:
        srv.shutdown()
        srv.server_close()


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_pinned_hashes_are_those_of_the_shared_files():
    for spec in datasets.DATASETS.values():
        assert _sha256(shared_file(spec.file)) == spec.sha256


def test_first_use_downloads_and_checks_then_reuses_the_cache(server, tmp_path):
    shared_file("berea.zip")
    handler, _ = server(SHARED_DATA)
    path = datasets.fetch("berea", data_dir=tmp_path / "cache")
    assert path == tmp_path / "cache" / "berea.zip"
    assert _sha256(path) == datasets.DATASETS["berea"].sha256
    assert handler.requests == ["/berea.zip"]
    assert datasets.fetch("berea", data_dir=tmp_path / "cache") == path
    assert handler.requests == ["/berea.zip"]  # the second call reads the cache only


def test_loaders_apply_each_files_phase_convention(server, tmp_path):
    shared_file("ketton.zip")
    server(SHARED_DATA)
    vol = datasets.ketton(data_dir=tmp_path)
    assert vol.shape == (256, 256, 256) and vol.dtype == np.uint8
    assert vol.mean() == pytest.approx(0.127, abs=5e-4)  # 0 = pore in the file, 1 = pore here
    image = datasets.sandstone_2d(data_dir=tmp_path)
    assert image.shape == (256, 256) and image.mean() == pytest.approx(0.197, abs=5e-4)
    assert datasets.berea(data_dir=tmp_path).mean() == pytest.approx(0.1965, abs=5e-4)


def test_the_environment_variable_names_the_folder(server, tmp_path, monkeypatch):
    shared_file("sandstone_li2018_256.npy")
    server(SHARED_DATA)
    monkeypatch.setenv("MICROVAE_DATA_DIR", str(tmp_path / "env"))
    assert datasets.fetch("sandstone_2d") == tmp_path / "env" / "sandstone_li2018_256.npy"
    # The argument wins over the variable.
    assert datasets.fetch("sandstone_2d", data_dir=tmp_path / "arg").parent == tmp_path / "arg"


def test_a_folder_holding_the_files_is_used_offline(monkeypatch):
    shared_file("berea.zip")
    monkeypatch.setenv("MICROVAE_DATA_URL", "http://127.0.0.1:9/")  # nothing listens there
    monkeypatch.setenv("MICROVAE_DATA_DIR", str(SHARED_DATA))
    for name, spec in datasets.DATASETS.items():
        assert datasets.fetch(name) == SHARED_DATA / spec.file


def test_a_different_file_in_the_chosen_folder_is_refused_not_replaced(server, tmp_path):
    server(SHARED_DATA)
    (tmp_path / "berea.zip").write_bytes(b"my own berea")
    with pytest.raises(ValueError, match="not the berea file"):
        datasets.fetch("berea", data_dir=tmp_path)
    assert (tmp_path / "berea.zip").read_bytes() == b"my own berea"


def test_a_download_with_another_hash_is_refused_and_not_kept(server, tmp_path):
    changed = tmp_path / "mirror"
    changed.mkdir()
    data = bytearray(shared_file("sandstone_li2018_256.npy").read_bytes())
    data[-1] ^= 1
    (changed / "sandstone_li2018_256.npy").write_bytes(bytes(data))
    server(changed)
    with pytest.raises(ValueError, match="SHA-256 mismatch"):
        datasets.fetch("sandstone_2d", data_dir=tmp_path / "cache")
    assert not any((tmp_path / "cache").iterdir())


def test_a_download_cut_short_is_refused_and_not_kept(server, tmp_path):
    shared_file("ketton.zip")
    server(SHARED_DATA, cut=100_000)
    with pytest.raises(ConnectionError, match="cannot download ketton"):
        datasets.fetch("ketton", data_dir=tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("*ketton*"))
    # A shorter file served as if complete fails the hash instead.
    short = tmp_path / "short"
    short.mkdir()
    (short / "ketton.zip").write_bytes(shared_file("ketton.zip").read_bytes()[:100_000])
    server(short)
    with pytest.raises(ValueError, match="SHA-256 mismatch"):
        datasets.fetch("ketton", data_dir=tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("*ketton*"))


def test_the_public_urls_are_pinned_to_commits_and_used_without_a_mirror(server, tmp_path, monkeypatch):
    for spec in datasets.DATASETS.values():
        assert spec.url.startswith("https://raw.githubusercontent.com/") and len(spec.url.split("/")[5]) == 40
    # Served under the public file name, which differs from the local one.
    public = tmp_path / "public"
    public.mkdir()
    shutil.copy(shared_file("sandstone_li2018_256.npy"), public / "sandstone_resized.npy")
    handler, url = server(public)
    monkeypatch.delenv("MICROVAE_DATA_URL")
    spec = datasets.DATASETS["sandstone_2d"]
    monkeypatch.setitem(datasets.DATASETS, "sandstone_2d",
                        datasets.Dataset(**{**spec.__dict__, "url": url + "sandstone_resized.npy"}))
    assert datasets.fetch("sandstone_2d", data_dir=tmp_path / "c").name == "sandstone_li2018_256.npy"
    assert handler.requests == ["/sandstone_resized.npy"]


def test_unknown_names_and_unreachable_servers_are_named(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="unknown dataset 'bentheimer'; choose one of berea, ketton"):
        datasets.fetch("bentheimer")
    monkeypatch.setenv("MICROVAE_DATA_URL", "http://127.0.0.1:9/")
    with pytest.raises(ConnectionError, match="with no network, copy berea.zip into a folder"):
        datasets.fetch("berea", data_dir=tmp_path)


def test_cli_data_fetch_prints_the_path_for_the_readme_commands(server, tmp_path, monkeypatch, capsys):
    shared_file("berea.zip")
    server(SHARED_DATA)
    monkeypatch.chdir(tmp_path)
    assert main(["data", "fetch", "berea", "--data-dir", "."]) == 0
    assert capsys.readouterr().out.strip().endswith("berea.zip")
    # The README's next command, as written there, reads the fetched file.
    assert main("data slice berea.zip --pore-value 0 --size 128 -n 300 -o slices.npz".split()) == 0
    assert "wrote 300 samples of 128x128 to slices.npz" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["data", "fetch", "nope"])
    assert "invalid choice: 'nope'" in capsys.readouterr().err
