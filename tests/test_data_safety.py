"""Data safety: config values never reach outside the data dir, written files keep the umask's mode, and
decoded-array caches live in their own dir (never in a shared, possibly read-only, data folder)."""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED_DATA, shared_data
from lightsweep.build import build
from lightsweep.config import compose
from lightsweep.data.cifar import Cifar10DataModule
from lightsweep.data.download import cached_arrays, fetch
from lightsweep.data.imdb import ImdbDataModule
from lightsweep.data.timeseries import TimeSeriesDataModule
from lightsweep.errors import ConfigError
from lightsweep.runinfo import write_json_atomic


def datamodule(tmp_path: Path, *overrides: str):
    return build(compose(list(overrides), output_dir=tmp_path / "out").dataset)


# --- names that become paths and URLs ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["../../etc", "Chinatown/../../etc", "..", ".hidden", "/etc/passwd"])
def test_a_ucr_name_that_is_not_a_plain_name_is_refused_before_any_path_is_built(tmp_path, name):
    data_dir = tmp_path / "data"
    with pytest.raises(ConfigError, match=r"dataset.name=.* is not a UCR/UEA dataset name") as error:
        datamodule(tmp_path, "dataset=ucr", f"dataset.name='{name}'", f"paths.data_dir={data_dir}").setup()
    message = str(error.value)
    assert "letters, digits" in message and "\n" not in message and "unzip" not in message
    assert not data_dir.exists()


def test_real_archive_names_are_accepted():
    for name, archive in (("Chinatown", "UCR"), ("PEMS-SF", "UEA"), ("InsectEPGRegularTrain", "UCR")):
        TimeSeriesDataModule(name, "data", archive=archive)


def test_an_image_dataset_name_or_file_name_with_a_path_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"dataset.name='../evil' is not .*letters, digits"):
        datamodule(tmp_path, "dataset=mnist", "dataset.name=../evil")
    with pytest.raises(ConfigError, match=r"dataset.files has '../../outside.tar.gz': .*file name"):
        Cifar10DataModule("cifar10", str(tmp_path), "https://example.invalid/", {"../../outside.tar.gz": None})


def test_a_tfds_name_that_climbs_out_of_the_tfds_dir_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"dataset.tfds_name='../../x' is not a tensorflow-datasets name"):
        datamodule(tmp_path, "dataset=mnist", "dataset.source=tfds", "dataset.tfds_name=../../x")
    with pytest.raises(ConfigError, match=r"dataset.tfds_name='imdb_reviews/../..' is not"):
        ImdbDataModule(str(tmp_path), source="tfds", tfds_name="imdb_reviews/../..", tfds_dir=str(tmp_path))
    ImdbDataModule(str(tmp_path), source="tfds", tfds_name="imdb_reviews/plain_text:1.0.0", tfds_dir=str(tmp_path))


# --- file modes follow the umask ------------------------------------------------------------------------


@pytest.fixture(params=[(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)], ids=["022", "077", "002"])
def umask(request):
    """(the umask set for the test, the mode a new file must get under it)."""
    previous = os.umask(request.param[0])
    yield request.param[1]
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_run_json_caches_and_downloads_honour_the_umask(umask, tmp_path, monkeypatch):
    write_json_atomic(tmp_path / "run.json", {"status": "ok"})
    cached_arrays(tmp_path / "set.arrays.npz", lambda: {"x": np.arange(3)})
    source = tmp_path / "served.bin"
    source.write_bytes(b"payload")
    monkeypatch.delenv("LIGHTSWEEP_OFFLINE")
    fetch(source.as_uri(), tmp_path / "data" / "served.bin", None, "dataset set")
    for written in ("run.json", "set.arrays.npz", "data/served.bin"):
        assert mode(tmp_path / written) == umask, written


def test_unpacked_time_series_files_honour_the_umask(umask, tmp_path, monkeypatch):
    source = shared_data("UCR") / "Chinatown"
    bundle = tmp_path / "Chinatown.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        for split in ("TRAIN", "TEST"):
            archive.write(source / f"Chinatown_{split}.tsv", f"Chinatown/Chinatown_{split}.tsv")
    monkeypatch.delenv("LIGHTSWEEP_OFFLINE")
    TimeSeriesDataModule("Chinatown", str(tmp_path / "data"), download_url=tmp_path.as_uri()).setup()
    for split in ("TRAIN", "TEST"):
        assert mode(tmp_path / "data" / "UCR" / "Chinatown" / f"Chinatown_{split}.tsv") == umask


# --- caches in their own dir ------------------------------------------------------------------------------


def listing(folder: Path) -> list[tuple[str, int, int]]:
    return sorted((str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*"))


def read_only_copy(name: str, tmp_path: Path) -> Path:
    """<tmp>/data/<name>/ linking to the shared files, its folders read-only (as CI's shared copy is): a
    load that wrote there would show in the listing even as root, who ignores the mode bits."""
    data_dir = tmp_path / "data"
    (data_dir / name).mkdir(parents=True)
    for file in shared_data(name).iterdir():
        (data_dir / name / file.name).symlink_to(file)
    for folder in (data_dir / name, data_dir):
        folder.chmod(0o555)
    return data_dir


def test_a_real_load_writes_nothing_into_the_data_folder_and_reuses_the_cache_dir(tmp_path, cache_dir):
    data_dir = read_only_copy("mnist", tmp_path)
    before = listing(data_dir)
    module = datamodule(tmp_path, "dataset=mnist", f"paths.data_dir={data_dir}")
    module.setup()
    assert len(module.splits["test"]) == 10000
    assert listing(data_dir) == before
    assert (cache_dir / "mnist" / "mnist.arrays.npz").is_file()
    again = datamodule(tmp_path, "dataset=mnist", f"paths.data_dir={data_dir}")
    again.decode = lambda: pytest.fail("decoded again instead of reading the cache dir")
    again.setup()
    assert again.splits["test"].tensors[0].equal(module.splits["test"].tensors[0])
    assert listing(data_dir) == before


def test_the_suite_never_caches_into_the_shared_data_folder(tmp_path, cache_dir):
    cfg = compose(["dataset=fashion_mnist", f"paths.data_dir={SHARED_DATA}"], output_dir=tmp_path)
    assert cfg.dataset.cache_dir == f"{cache_dir}/fashion_mnist"


def test_the_cache_dir_defaults_to_the_data_dir_and_can_be_set(tmp_path, monkeypatch):
    monkeypatch.delenv("LIGHTSWEEP_CACHE_DIR")
    cfg = compose(["dataset=imdb", f"paths.data_dir={tmp_path}"], output_dir=tmp_path)
    assert cfg.dataset.cache_dir == cfg.dataset.data_dir == f"{tmp_path}/imdb"
    cfg = compose(["dataset=imdb", f"paths.cache_dir={tmp_path / 'cache'}"], output_dir=tmp_path)
    assert cfg.dataset.cache_dir == f"{tmp_path / 'cache'}/imdb"


def test_an_unwritable_cache_dir_falls_back_to_the_user_cache(tmp_path, monkeypatch):
    """A cache dir that cannot be created (a file in its way: unwritable even for root) costs no rebuild:
    the cache goes to $XDG_CACHE_HOME/lightsweep/ instead, and is found there next time."""
    (tmp_path / "blocked").write_text("a file, not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    source = tmp_path / "raw.bin"
    source.write_bytes(b"abc")
    cache = tmp_path / "blocked" / "set" / "set.arrays.npz"
    assert cached_arrays(cache, lambda: {"x": np.arange(4)}, [source])["x"].sum() == 6
    assert list((tmp_path / "user-cache" / "lightsweep").rglob("set.arrays.npz"))
    again = cached_arrays(cache, lambda: pytest.fail("rebuilt instead of reading the fallback"), [source])
    assert again["x"].sum() == 6
