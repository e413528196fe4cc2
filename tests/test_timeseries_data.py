"""UCR/UEA readers and the time-series datamodule on real archive files (shared/data and aeon's wheel)."""

from __future__ import annotations

import functools
import http.server
import threading
import zipfile

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from conftest import shared_data
from lightsweep.build import build
from lightsweep.config import compose
from lightsweep.data.timeseries import TimeSeriesDataModule, aeon_data_dir, centre_padded_series, prepare_for_fit
from lightsweep.data.ucr_formats import read_arff, read_ts, read_tsv
from lightsweep.errors import ConfigError
from lightsweep.validate import check_node

UNREACHABLE = "http://127.0.0.1:9/"  # the discard port: connection refused at once, online or not

# Train, test, length (train, test), channels, classes of the sets shipped with aeon (its 1.6.0 .ts files).
AEON_SETS = {
    "gunpoint": (50, 150, (150, 150), 1, 2),
    "italy_power_demand": (67, 1029, (24, 24), 1, 2),
    "arrow_head": (36, 175, (251, 251), 1, 3),
    "basic_motions": (40, 40, (100, 100), 6, 4),
    "japanese_vowels": (270, 370, (26, 29), 12, 9),  # variable length 7-29, NaN-padded per file
    "unit_test": (20, 22, (24, 24), 1, 2),
}
NEW_DATASETS = [*AEON_SETS, "chinatown", "coffee", "atrial_fibrillation", "ucr"]


def from_config(tmp_path, name: str, *overrides: str) -> TimeSeriesDataModule:
    module = build(compose([f"dataset={name}", *overrides], output_dir=tmp_path).dataset)
    module.setup()
    return module


def ucr_module(name: str, **kwargs) -> TimeSeriesDataModule:
    module = TimeSeriesDataModule(name, str(shared_data("UCR").parent), download_url=UNREACHABLE, **kwargs)
    module.setup()
    return module


def test_chinatown_is_z_scored_with_one_global_train_statistic():
    raw_train = np.loadtxt(shared_data("UCR") / "Chinatown/Chinatown_TRAIN.tsv")
    raw_test = np.loadtxt(shared_data("UCR") / "Chinatown/Chinatown_TEST.tsv")
    module = ucr_module("Chinatown")
    # TimeHUT's Chinatown test set has 343 series (TSlib enhanced_metrics/enhanced_single_model_runner.py);
    # this copy of the archive files holds 345 rows.
    assert module.train_x.shape == (20, 24, 1) and module.test_x.shape == (345, 24, 1)
    assert module.input_shape == (24, 1) and module.num_classes == 2
    assert set(module.train_y.tolist()) == set(module.test_y.tolist()) == {0, 1}
    assert abs(float(module.train_x.mean())) < 1e-5
    assert abs(float(module.train_x.std(unbiased=False)) - 1) < 1e-5
    mean, std = raw_train[:, 1:].mean(), raw_train[:, 1:].std()
    np.testing.assert_allclose(module.test_x[..., 0].numpy(), (raw_test[:, 1:] - mean) / std, atol=1e-6)
    assert (raw_test[:, 1:] < 0).sum() == 2  # counts, except two test values of -1 (kept as they are)
    assert (module.test_y.numpy() == raw_test[:, 0] - 1).all()  # labels 1, 2 -> 0, 1


def test_coffee_is_used_as_stored():
    raw = np.loadtxt(shared_data("UCR") / "Coffee/Coffee_TRAIN.tsv")
    module = ucr_module("Coffee")
    assert module.train_x.shape == (28, 286, 1) and module.test_x.shape == (28, 286, 1)
    assert (module.train_x[..., 0].numpy() == raw[:, 1:].astype(np.float32)).all()
    assert (module.train_y.numpy() == raw[:, 0]).all()


def test_long_series_are_cut_into_nan_padded_sections():
    two = ucr_module("Coffee", max_train_length=100)  # 286 // 100 = 2 sections of 143
    assert two.fit_x.shape == (56, 143, 1)
    assert torch.equal(two.fit_x[:28], two.train_x[:, :143]) and torch.equal(two.fit_x[28:], two.train_x[:, 143:])
    three = ucr_module("Coffee", max_train_length=95)  # 3 sections: 96, 95, 95 -> padded to 96
    sections = np.array_split(three.train_x.numpy(), 3, axis=1)
    assert three.fit_x.shape == (84, 96, 1)
    assert torch.isnan(three.fit_x[28:, -1]).all() and not torch.isnan(three.fit_x[:, :-1]).any()
    assert np.array_equal(three.fit_x[56:, :95].numpy(), sections[2])  # padding of 1 stays at the end
    assert ucr_module("Coffee", max_train_length=None).fit_x.shape == (28, 286, 1)


def test_labels_follow_sorted_train_labels(tmp_path):
    folder = tmp_path / "UCR" / "Toy"
    folder.mkdir(parents=True)
    rows = {"TRAIN": ["10\t1\t2", "9\t3\t4", "-1\t5\t6"], "TEST": ["9\t1\t1", "10\t2\t2"]}
    for split, lines in rows.items():
        (folder / f"Toy_{split}.tsv").write_text("\n".join(lines) + "\n")
    module = TimeSeriesDataModule("Toy", str(tmp_path), download_url=UNREACHABLE)
    module.setup()
    assert module.classes == ["-1", "9", "10"]  # numeric order, as TS2Vec reads UCR labels as numbers
    assert module.train_y.tolist() == [2, 1, 0] and module.test_y.tolist() == [1, 2]
    (folder / "Toy_TEST.tsv").write_text("7\t1\t1\n")
    with pytest.raises(ConfigError, match=r"labels \['7'\] never occur in the training set"):
        TimeSeriesDataModule("Toy", str(tmp_path), download_url=UNREACHABLE).setup()


@pytest.mark.parametrize("dataset", list(AEON_SETS))
def test_aeon_sets_load_offline_with_the_spec_sizes(tmp_path, dataset):
    n_train, n_test, (t_train, t_test), channels, classes = AEON_SETS[dataset]
    module = from_config(tmp_path, dataset, f"paths.data_dir={tmp_path / 'nothing-here'}")
    assert module.train_x.shape == (n_train, t_train, channels)
    assert module.test_x.shape == (n_test, t_test, channels)
    assert module.num_classes == classes and set(module.train_y.tolist()) == set(range(classes))
    assert module.train_x.dtype == torch.float32 and module.train_y.dtype == torch.int64
    if module.archive == "UEA":  # per-channel scaling over every train timestamp, NaN ignored
        flat = module.train_x.reshape(-1, channels).numpy().astype(np.float64)
        np.testing.assert_allclose(np.nanmean(flat, axis=0), 0, atol=1e-5)
        np.testing.assert_allclose(np.nanstd(flat, axis=0), 1, atol=1e-4)


def test_unit_test_set_is_normalised_like_chinatown(tmp_path):
    unit = from_config(tmp_path, "unit_test")
    assert torch.equal(unit.train_x, ucr_module("Chinatown").train_x)  # same 20 series, same statistics


def test_japanese_vowels_padding_is_recentred_for_fit(tmp_path):
    module = from_config(tmp_path, "japanese_vowels")
    padded = torch.isnan(module.train_x).all(dim=2).numpy()
    assert padded[:, -1].any() and not padded[:, 0].any()  # the files pad at the end only
    fit_x = module.fit_x.numpy()
    assert fit_x.shape == module.train_x.shape  # too short to split, nothing entirely missing
    empty = np.isnan(fit_x).all(axis=2)
    for original, centred, gaps in zip(module.train_x.numpy(), fit_x, empty):
        valid = np.flatnonzero(~gaps)
        leading, trailing = valid[0], len(gaps) - 1 - valid[-1]
        assert leading == (leading + trailing) // 2 and 0 <= trailing - leading <= 1
        assert np.array_equal(centred[valid], original[~np.isnan(original).all(axis=1)])


def test_centring_shifts_circularly_and_keeps_inner_gaps():
    nan = np.nan
    x = np.array([[nan, nan, nan, 1, 2], [3, nan, 4, 5, 6]])[..., None]
    centred = centre_padded_series(x)[..., 0]
    np.testing.assert_array_equal(centred, [[nan, 1, 2, nan, nan], [3, nan, 4, 5, 6]])
    no_padding = np.arange(10.0).reshape(2, 5, 1)
    assert centre_padded_series(no_padding) is no_padding


def test_fit_preprocessing_drops_sections_that_are_entirely_missing():
    nan = np.nan
    x = np.array([[1, 2, 3, nan, nan, nan], [nan, 4, 5, 6, 7, nan]])[..., None]
    # 2 sections each: [1 2 3], [nan 4 5], [nan nan nan], [6 7 nan]; leading padding becomes floor(total / 2)
    fitted = prepare_for_fit(x, max_train_length=3)
    np.testing.assert_array_equal(fitted[..., 0], [[1, 2, 3], [4, 5, nan], [6, 7, nan]])


def test_loaders_serve_whole_batches(tmp_path):
    module = ucr_module("Chinatown")
    batches = list(module.train_dataloader())
    assert len(batches) == 2 and all(len(b) == 1 and b[0].shape == (8, 24, 1) for b in batches)  # 20 // 8
    assert batches[0][0].dtype == torch.float32
    train_loader, test_loader = module.test_dataloader()
    x, y = next(iter(test_loader))
    assert torch.equal(x, module.test_x[:8]) and torch.equal(y, module.test_y[:8])
    assert sum(len(b[1]) for b in test_loader) == 345 and sum(len(b[1]) for b in train_loader) == 20
    small = TimeSeriesDataModule("UnitTest", str(tmp_path), source="aeon", batch_size=64)
    small.setup()
    assert [b[0].shape[0] for b in small.train_dataloader()] == [20]  # batch capped at N


def write_toy_files(folder):
    """The same three 2-channel cases (lengths 3, 2, 3) as .ts and as relational .arff."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "toy.ts").write_text(
        "# a comment\n@problemName Toy\n@timeStamps false\n@missing true\n@univariate false\n@dimensions 2\n"
        "@equalLength false\n@classLabel true walk run\n@data\n"
        "1.5,2,?:4,5,6:walk\n-1,0.25:7,8:run\n3,3,3:1e-3,2,1:walk\n"
    )
    # arff: one quoted relational value per case, its channels separated by a literal \\n, '?' padding
    timestamps = "".join(f"  @attribute t{i} numeric\n" for i in range(3))
    (folder / "toy.arff").write_text(
        f"@relation Toy\n@attribute series relational\n{timestamps}@end series\n"
        "@attribute activity {walk,run}\n@data\n"
        "'1.5,2,?\\n4,5,6',walk\n'-1,0.25,?\\n7,8,?',run\n'3,3,3\\n1e-3,2,1',walk\n"
    )


def test_ts_and_arff_readers_agree_with_each_other_and_with_aeon(tmp_path):
    from aeon.datasets import load_from_ts_file

    write_toy_files(tmp_path)
    x_ts, labels_ts = read_ts(tmp_path / "toy.ts")
    x_arff, labels_arff = read_arff(tmp_path / "toy.arff")
    assert x_ts.shape == (3, 3, 2) and labels_ts.tolist() == ["walk", "run", "walk"]
    np.testing.assert_array_equal(x_ts, x_arff)
    assert labels_arff.tolist() == labels_ts.tolist()
    assert np.isnan(x_ts[0, 2, 0]) and np.isnan(x_ts[1, 2]).all() and x_ts[2, 0, 1] == 1e-3
    cases, labels = load_from_ts_file(str(tmp_path / "toy.ts"))
    for ours, theirs in zip(x_ts, cases):
        np.testing.assert_array_equal(ours[: theirs.shape[1]], theirs.T)
    assert list(labels) == labels_ts.tolist()


def test_tsv_reader_matches_the_ts_reader(tmp_path):
    (tmp_path / "uni.tsv").write_text("2\t0.5\tNaN\t1\n1\t-3\t4\t5e2\n")
    (tmp_path / "uni.ts").write_text(
        "@problemName Uni\n@univariate true\n@classLabel true 1 2\n@data\n0.5,?,1:2\n-3,4,5e2:1\n"
    )
    x_tsv, y_tsv = read_tsv(tmp_path / "uni.tsv")
    x_ts, y_ts = read_ts(tmp_path / "uni.ts")
    np.testing.assert_array_equal(x_tsv, x_ts)
    assert x_tsv.shape == (2, 3, 1) and y_tsv.tolist() == y_ts.tolist() == ["2", "1"]


def test_shipped_formats_of_the_same_sets_agree():
    """aeon ships some TRAIN splits in several formats: every reader must give the same arrays."""
    for name, readers in (("GunPoint", (read_ts, read_tsv, read_arff)), ("BasicMotions", (read_ts, read_arff))):
        paths = [aeon_data_dir() / name / f"{name}_TRAIN.{r.__name__.removeprefix('read_')}" for r in readers]
        (x, labels), *others = (reader(path) for reader, path in zip(readers, paths))
        for other_x, other_labels in others:
            assert np.array_equal(other_x, x) and other_labels.tolist() == labels.tolist()
    assert x.shape == (40, 100, 6)


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("cut.ts", "@univariate true\n@classLabel true 1 2\n@data\n1,2,3:1\n4,5,", "line 5: no ':' between"),
        ("nolabel.ts", "@univariate true\n@classLabel true 1 2\n@data\n1,2,3:1\n4,5,6:", "'' is not one of the"),
        ("short.ts", "@equalLength true\n@seriesLength 3\n@classLabel true 1\n@data\n1,2,3:1\n4,5:1\n", "lengths"),
        ("nodata.ts", "@problemName A\n@univariate true\n@classLabel", "no '@data' line"),
        ("badvalue.ts", "@classLabel true 1\n@data\n1,x,3:1\n", "not a number"),
        ("cut.tsv", "1\t2\t3\n2\t4\n", "line 2: 2 tab-separated fields"),
        ("cut.arff", "@relation A\n@attribute a numeric\n@attribute c {x,y}\n@data\n1,", "not a readable .arff"),
    ],
)
def test_broken_files_name_the_file_and_the_problem(tmp_path, name, text, problem):
    path = tmp_path / name
    path.write_text(text)
    reader = {".ts": read_ts, ".tsv": read_tsv, ".arff": read_arff}[path.suffix]
    with pytest.raises(ConfigError, match=problem) as error:
        reader(path)
    assert str(path) in str(error.value)


def test_missing_files_offline_give_one_clear_error(tmp_path):
    with pytest.raises(ConfigError) as error:
        TimeSeriesDataModule("Coffee", str(tmp_path), download_url=UNREACHABLE).setup()
    message = str(error.value)
    assert str(tmp_path / "UCR" / "Coffee") in message and f"{UNREACHABLE}Coffee.zip" in message
    assert "Coffee_TRAIN.ts" in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_atrial_fibrillation_config_reports_where_its_files_belong(tmp_path):
    empty = tmp_path / "empty"
    with pytest.raises(ConfigError) as error:
        from_config(tmp_path, "atrial_fibrillation", f"paths.data_dir={empty}", f"dataset.download_url={UNREACHABLE}")
    assert str(empty / "UEA" / "AtrialFibrillation") in str(error.value)
    assert "AtrialFibrillation.zip" in str(error.value)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no request lines in the test output
        pass


def test_offline_switch_stops_the_archive_download(tmp_path):
    """LIGHTSWEEP_OFFLINE=1 (conftest) holds for the UCR/UEA archive as for every other dataset: a zip that
    could be fetched is not, and the one line says where to put the files."""
    served = tmp_path / "served"
    served.mkdir()
    with zipfile.ZipFile(served / "Chinatown.zip", "w") as bundle:
        for split in ("TRAIN", "TEST"):
            bundle.write(shared_data("UCR") / "Chinatown" / f"Chinatown_{split}.tsv", f"Chinatown_{split}.tsv")
    with pytest.raises(ConfigError, match="LIGHTSWEEP_OFFLINE=1 forbids downloading") as error:
        TimeSeriesDataModule("Chinatown", str(tmp_path / "data"), download_url=served.as_uri()).setup()
    folder = tmp_path / "data" / "UCR" / "Chinatown"
    assert f"unzip Chinatown_TRAIN.ts and Chinatown_TEST.ts into {folder}" in str(error.value)
    assert "\n" not in str(error.value) and not (tmp_path / "data").exists()


def test_missing_files_are_downloaded_and_unpacked(tmp_path, monkeypatch):
    monkeypatch.delenv("LIGHTSWEEP_OFFLINE")
    source = shared_data("UCR") / "Chinatown"
    served = tmp_path / "served"
    served.mkdir()
    with zipfile.ZipFile(served / "Chinatown.zip", "w") as bundle:  # nested folder, as archive zips have
        for split in ("TRAIN", "TEST"):
            bundle.write(source / f"Chinatown_{split}.tsv", f"Chinatown/Chinatown_{split}.tsv")
    handler = functools.partial(QuietHandler, directory=str(served))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        module = TimeSeriesDataModule("Chinatown", str(tmp_path / "data"), download_url=url)
        module.setup()
        server.shutdown()
    folder = tmp_path / "data" / "UCR" / "Chinatown"
    assert sorted(p.name for p in folder.iterdir()) == ["Chinatown_TEST.tsv", "Chinatown_TRAIN.tsv"]
    assert torch.equal(module.test_x, ucr_module("Chinatown").test_x)


def test_wrong_source_or_archive_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not shipped with aeon.*GunPoint"):
        TimeSeriesDataModule("Coffee", str(tmp_path), source="aeon").setup()
    with pytest.raises(ConfigError, match="set dataset.archive=UEA"):
        TimeSeriesDataModule("BasicMotions", str(tmp_path), source="aeon", archive="UCR").setup()


@pytest.mark.parametrize("dataset", NEW_DATASETS)
def test_dataset_configs_compose(tmp_path, dataset):
    overrides = [f"dataset={dataset}"] + (["dataset.name=Beef"] if dataset == "ucr" else [])
    cfg = compose(overrides, output_dir=tmp_path)
    assert cfg.dataset._target_ == "lightsweep.data.timeseries.TimeSeriesDataModule"
    assert cfg.dataset.data_dir == cfg.paths.data_dir
    check_node(OmegaConf.to_container(cfg.dataset, resolve=True), "dataset")  # values fit the constructor
    if dataset == "ucr":
        assert OmegaConf.is_missing(compose(["dataset=ucr"], output_dir=tmp_path).dataset, "name")
