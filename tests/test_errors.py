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


def test_typo_in_a_key_names_the_nearest_key_first():
    line = assert_one_line_error(
        cli("trainer.max_epoch=3"),
        "lightsweep: error: trainer.max_epoch is not a key of the config. Did you mean trainer.max_epochs?",
    )
    assert "+trainer.max_epoch=" in line and "constructor" in line  # adding it is the rare case, said last
    assert "Could not override" not in line and "To append" not in line


def test_unknown_key_without_a_near_one_lists_the_keys_of_its_node():
    line = assert_one_line_error(
        cli("objective.zzz=1"),
        "objective.zzz is not a key of the config.",
        "Keys of objective: name, mode, health_weight, direction.",
    )
    assert "Did you mean" not in line


def test_unknown_top_level_key():
    line = assert_one_line_error(cli("seeed=3"), "seeed is not a key of the config. Did you mean seed?")
    assert "+seeed" not in line  # no constructor reads a new top-level key: adding one is never the fix


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


def cli_with_site(tmp_path, monkeypatch, sitecustomize: str, *args: str):
    """The real CLI in a Python whose startup runs `sitecustomize` (put first on PYTHONPATH): how these tests
    plant a bug in our own code without editing it."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(sitecustomize)
    monkeypatch.setenv("PYTHONPATH", str(site))
    return cli(*args, "trainer.max_epochs=1", "trainer.enable_progress_bar=false")


def assert_internal_error(proc, exception: str) -> None:
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" in proc.stderr and exception in proc.stderr
    assert "lightsweep: error:" not in proc.stderr


def test_a_bug_in_a_resolver_keeps_its_traceback(tmp_path, monkeypatch):
    # OmegaConf wraps whatever a resolver raises in its own InterpolationResolutionError: a bug in our
    # objective_direction resolver must not read as a bad config.
    proc = cli_with_site(tmp_path, monkeypatch, "import lightsweep.objective as o\no.direction = lambda name: 1 / 0\n")
    assert_internal_error(proc, "ZeroDivisionError")


@pytest.mark.parametrize(("body", "exception"), [("1 / 0", "ZeroDivisionError"), ("len(None)", "TypeError")])
def test_a_bug_inside_a_constructor_keeps_its_traceback(tmp_path, monkeypatch, body, exception):
    proc = cli_with_site(
        tmp_path,
        monkeypatch,
        "import functools\nfrom lightsweep.data.digits import DigitsDataModule\n"
        "built = DigitsDataModule.__init__\n"
        "@functools.wraps(built)\n"  # the same signature, so the settings check still passes
        f"def broken(self, *args, **kwargs):\n    built(self, *args, **kwargs)\n    {body}\n"
        "DigitsDataModule.__init__ = broken\n",
        "dataset=digits",
    )
    assert_internal_error(proc, exception)


def test_a_bug_at_import_of_a_target_module_keeps_its_traceback(tmp_path, monkeypatch):
    """Hydra wraps it twice (InstantiationException from ImportError from the bug): still a bug."""
    from hydra.utils import instantiate

    from lightsweep.errors import describe_user_error

    (tmp_path / "buggy_target.py").write_text("RATIO = 1 / 0\nclass Thing:\n    pass\n")
    (tmp_path / "fine_target.py").write_text("class Thing:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    allowed = ["buggy_target.*", "fine_target.*"]
    with pytest.raises(Exception) as bug:
        instantiate({"_target_": "buggy_target.Thing"}, _execution_whitelist_=allowed)
    assert describe_user_error(bug.value) is None
    with pytest.raises(Exception) as typo:  # a target that does not exist is the user's to fix
        instantiate({"_target_": "fine_target.Thingy"}, _execution_whitelist_=allowed)
    assert "fine_target.Thingy" in describe_user_error(typo.value)


def test_a_value_a_constructor_refuses_is_one_line():
    # Lightning's ModelCheckpoint refuses the mode with a MisconfigurationException while it is built.
    assert_one_line_error(cli("callbacks.model_checkpoint.mode=maxx"), "callbacks.model_checkpoint", "min, max", "maxx")


def test_build_tells_refused_arguments_from_bugs():
    from lightsweep.build import build

    with pytest.raises(ConfigError, match=r"^model \(torch.nn.Linear\) refused its settings: .*out_features"):
        build({"_target_": "torch.nn.Linear", "in_features": 2}, where="model")  # arguments that do not bind
    with pytest.raises(RuntimeError, match="negative dimension"):  # raised deep inside torch: not a refusal
        build({"_target_": "torch.nn.Linear", "in_features": -1, "out_features": 1}, where="model")
