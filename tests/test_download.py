"""The download path against a real HTTP server on loopback, and the decoded-arrays cache."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import logging
import socket
import threading
from functools import partial

import numpy as np
import pytest

from lightsweep.data.download import cached_arrays, fetch
from lightsweep.errors import ConfigError


@pytest.fixture
def online(monkeypatch):
    """Undo conftest's LIGHTSWEEP_OFFLINE=1 for tests that really download (from loopback only)."""
    monkeypatch.delenv("LIGHTSWEEP_OFFLINE")


@pytest.fixture
def server(tmp_path):
    """An HTTP server in a thread serving tmp_path/served; yields (base URL, folder, requested paths)."""
    folder = tmp_path / "served"
    folder.mkdir()
    requested: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            requested.append(self.path)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", folder, requested
    httpd.shutdown()
    httpd.server_close()


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def test_fetch_downloads_checks_and_keeps_the_file(online, server, tmp_path):
    url, served, requested = server
    payload = np.random.default_rng(0).bytes(3 << 20)  # several read chunks
    (served / "blob.bin").write_bytes(payload)
    dest = tmp_path / "data" / "set" / "blob.bin"
    assert fetch(url + "blob.bin", dest, hashlib.sha256(payload).hexdigest(), "dataset set") == dest
    assert dest.read_bytes() == payload and leftovers(dest.parent) == []
    fetch(url + "blob.bin", dest, None, "dataset set")  # present: not downloaded again
    assert requested.count("/blob.bin") == 1


def test_checksum_mismatch_is_refused_and_nothing_is_kept(online, server, tmp_path):
    url, served, _ = server
    (served / "blob.bin").write_bytes(b"tampered")
    dest = tmp_path / "data" / "blob.bin"
    with pytest.raises(ConfigError, match="SHA-256 .* expected 00ff.*discarded") as error:
        fetch(url + "blob.bin", dest, "00ff" * 16, "dataset set")
    assert url + "blob.bin" in str(error.value) and "\n" not in str(error.value)
    assert not dest.parent.exists()  # nothing kept, not even the folder made for it


def test_missing_remote_file_names_path_and_url(online, server, tmp_path):
    url, _, _ = server
    dest = tmp_path / "data" / "nope.gz"
    with pytest.raises(ConfigError, match="HTTP 404") as error:
        fetch(url + "nope.gz", dest, None, "dataset set")
    assert str(dest) in str(error.value) and url + "nope.gz" in str(error.value)
    assert not dest.parent.exists()


def test_unreachable_source_is_one_clear_line(online, tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/cifar-10-python.tar.gz"
    with pytest.raises(ConfigError, match="downloading it failed .*refused") as error:
        fetch(url, tmp_path / "cifar10" / "cifar-10-python.tar.gz", None, "dataset cifar10")
    message = str(error.value)
    assert f"Download {url} into {tmp_path / 'cifar10'}" in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []  # no empty cifar10/ left behind


def test_a_failed_download_keeps_folders_that_were_there(online, server, tmp_path):
    url, _, _ = server
    (tmp_path / "cifar10").mkdir()
    with pytest.raises(ConfigError, match="HTTP 404"):
        fetch(url + "nope.gz", tmp_path / "cifar10" / "nope.gz", None, "dataset cifar10")
    assert (tmp_path / "cifar10").is_dir()


def test_offline_switch_never_touches_the_network(server, tmp_path):
    url, served, requested = server  # LIGHTSWEEP_OFFLINE=1 comes from conftest's autouse fixture
    (served / "blob.bin").write_bytes(b"x")
    with pytest.raises(ConfigError, match="LIGHTSWEEP_OFFLINE=1 forbids downloading"):
        fetch(url + "blob.bin", tmp_path / "blob.bin", None, "dataset set")
    assert requested == []


def test_decoding_says_what_it_is_doing_once(tmp_path, caplog):
    source = tmp_path / "aclImdb_v1.tar.gz"
    source.write_bytes(b"abc")
    with caplog.at_level(logging.INFO, logger="lightsweep.data.download"):
        cached_arrays(tmp_path / "imdb_raw_corpus.npz", lambda: {"x": np.zeros(2)}, [source])
        cached_arrays(tmp_path / "imdb_raw_corpus.npz", lambda: {"x": np.zeros(2)}, [source])
    said = [r.getMessage() for r in caplog.records]
    assert said == ["reading aclImdb_v1.tar.gz into arrays, once: later runs load imdb_raw_corpus.npz"]


def test_cache_is_built_once_and_rebuilt_when_a_source_changes(tmp_path):
    source = tmp_path / "raw.bin"
    source.write_bytes(b"abc")
    builds = []

    def build():
        builds.append(1)
        return {"x": np.arange(6, dtype=np.uint8).reshape(2, 3) * len(builds), "y": np.array([1, 0])}

    first = cached_arrays(tmp_path / "set.arrays.npz", build, [source])
    again = cached_arrays(tmp_path / "set.arrays.npz", build, [source])
    assert len(builds) == 1 and again["x"].dtype == np.uint8 and set(again) == {"x", "y"}
    np.testing.assert_array_equal(first["x"], again["x"])
    source.write_bytes(b"abcd")
    assert cached_arrays(tmp_path / "set.arrays.npz", build, [source])["x"][0, 1] == 2 and len(builds) == 2


def test_a_corrupt_cache_is_rebuilt(tmp_path):
    cache = tmp_path / "set.arrays.npz"
    cache.write_bytes(b"not an npz")
    assert cached_arrays(cache, lambda: {"x": np.ones(3)})["x"].sum() == 3
    assert cached_arrays(cache, lambda: pytest.fail("rebuilt a valid cache"))["x"].sum() == 3


def idx_bytes(array: np.ndarray) -> bytes:
    header = b"\x00\x00\x08" + bytes([array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


@pytest.mark.slow
def test_missing_dataset_is_downloaded_then_trained_on(online, server, tmp_path, run_cfg, cache_dir):
    """dataset=mnist with an empty data dir: the four IDX files come over HTTP, then a real run."""
    url, served, requested = server
    rng = np.random.default_rng(0)
    labels = {"train": np.arange(200) % 10, "t10k": np.arange(50) % 10}
    for split, y in labels.items():
        (served / f"{split}-images-idx3-ubyte.gz").write_bytes(idx_bytes(rng.integers(0, 256, (len(y), 28, 28))))
        (served / f"{split}-labels-idx1-ubyte.gz").write_bytes(idx_bytes(y))
    data_dir = tmp_path / "data"
    _, record = run_cfg(
        [
            "dataset=mnist",
            f"paths.data_dir={data_dir}",
            f"dataset.url={url}",
            "dataset.files=null",
            "trainer.max_epochs=1",
            "dataset.batch_size=64",
        ]
    )
    assert record["status"] == "ok" and 0.0 <= record["metrics"]["test/acc"] <= 1.0
    assert sorted(requested) == sorted(f"/{p.name}" for p in served.iterdir())
    assert (cache_dir / "mnist" / "mnist.arrays.npz").is_file()
