"""Bad input through the real CLI: one line naming what is wrong and what is valid, exit code 2."""

from __future__ import annotations

import pytest

from conftest import cli
from lightsweep.errors import ConfigError
from lightsweep.validate import check_devices


def assert_one_line_error(proc, *fragments: str) -> str:
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def test_unknown_dataset_names_the_valid_ones():
    assert_one_line_error(cli("dataset=nope"), "unknown dataset 'nope'", "digits", "mnist")


def test_unknown_group_choice_in_any_group():
    assert_one_line_error(cli("precision=8"), "unknown precision '8'", "16, 32, 64, bf16")


def test_wrong_type_names_key_and_expected_type():
    assert_one_line_error(cli("trainer.max_epochs=abc"), "trainer.max_epochs='abc'", "expected int")


def test_unknown_model_setting_lists_valid_settings():
    assert_one_line_error(cli("model=cnn", "+model.filterz=3"), "model.filterz", "filters")


def test_missing_data_files_say_where_to_put_them(tmp_path):  # offline (conftest): MNIST is not downloaded
    line = assert_one_line_error(
        cli("dataset=mnist", f"paths.data_dir={tmp_path}"), "train-images-idx3-ubyte.gz is missing", str(tmp_path)
    )
    assert "https://" in line


def test_deepspeed_on_cpu_is_refused():
    assert_one_line_error(cli("strategy=deepspeed"), "needs CUDA GPUs", "strategy=ddp_spawn")


def test_unparsable_override():
    assert_one_line_error(cli("seed=[1"), "cannot parse override 'seed=[1'")


def test_debug_flag_shows_the_traceback():
    proc = cli("trainer.max_epochs=abc", "--debug")
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_unknown_lightsweep_command():
    proc = cli("lightsweep", "frobnicate")
    assert proc.returncode == 2 and "unknown command" in proc.stderr


def test_reproduce_of_a_non_run_dir(tmp_path):
    assert_one_line_error(cli("lightsweep", "reproduce", str(tmp_path)), "is not a finished lightsweep run")


@pytest.mark.parametrize(
    ("trainer", "cuda", "bf16", "message"),
    [
        ({"precision": "bf16-mixed", "accelerator": "auto"}, True, False, "precision=bf16 is not supported"),
        ({"precision": "32-true", "strategy": {"_target_": "x.FSDPStrategy"}}, False, False, "needs CUDA"),
        ({"precision": "8-bit"}, False, False, "trainer.precision='8-bit' is not valid"),
    ],
)
def test_device_support_checks(trainer, cuda, bf16, message):
    with pytest.raises(ConfigError, match=message):
        check_devices(trainer, cuda_available=cuda, bf16_on_gpu=bf16)


def test_supported_combinations_pass():
    check_devices({"precision": "bf16-mixed", "accelerator": "auto"}, cuda_available=True, bf16_on_gpu=True)
    check_devices({"precision": "16-mixed", "accelerator": "cpu"}, cuda_available=False, bf16_on_gpu=False)


def test_mandatory_value_names_the_key():
    assert_one_line_error(cli("dataset=ucr"), "dataset.name has no value", "dataset.name=<value>")
