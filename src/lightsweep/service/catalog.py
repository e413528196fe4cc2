"""What the service offers, for GET /health, /datasets, /modes and /objectives: the datasets of conf/dataset/
(with whether their files are here), the objective modes and objectives of lightsweep.objective, CUDA, and
the executors that can run a job right now.

Importing this module is cheap; datasets() and cuda() import torch (datasets() with the dataset classes) on
their first call. Answers are kept for a few seconds: a probe of SLURM may wait up to two seconds, and a page polling
GET /health must not start one per request."""

from __future__ import annotations

import copy
import functools
import importlib.util
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lightsweep.errors import ConfigError, first_line
from lightsweep.objective import MODES, OBJECTIVES
from lightsweep.paths import CONF_DIR

CACHE_S = 10.0
SINFO_TIMEOUT_S = 2.0
MODE_DESCRIPTIONS = {
    "simple": "the objective as measured",
    "health": "(1 - health_weight) * objective + health_weight * overall health score, for objectives that are "
    "[0, 1] scores; needs the health callback (in callbacks=default)",
}


def _kept(seconds: float) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Keep a function's answer per arguments for `seconds`; one caller computes it while the others wait.
    Callers get copies, so changing one cannot change the next answer."""

    def wrap(function: Callable[..., Any]) -> Callable[..., Any]:
        lock, answers = threading.Lock(), {}

        @functools.wraps(function)
        def kept(*args: Any) -> Any:
            with lock:
                made, answer = answers.get(args, (None, None))
                if made is None or time.monotonic() - made > seconds:
                    answer = function(*args)
                    answers[args] = (time.monotonic(), answer)
                return copy.deepcopy(answer)

        return kept

    return wrap


@_kept(CACHE_S)
def datasets(data_dir: str | Path) -> list[dict[str, Any]]:
    """[{name, modality, present, detail}] for every conf/dataset/*.yaml: present says whether the files its
    class would read are under data_dir (a dataset shipped with a library needs none); detail says where
    they were looked for, or why the dataset cannot be used as it is."""
    return [_dataset(path, Path(data_dir)) for path in sorted((CONF_DIR / "dataset").glob("*.yaml"))]


def modes() -> list[dict[str, str]]:
    return [{"name": mode, "description": MODE_DESCRIPTIONS[mode]} for mode in MODES]


def objectives() -> list[dict[str, Any]]:
    """[{name, direction, needs_health_mode, test_data_only, score, needs_callback}] of lightsweep.objective:
    test-data objectives are reported by single runs but refused in sweeps."""
    return [
        {
            "name": name,
            "direction": spec.direction,
            "needs_health_mode": spec.health_only,
            "test_data_only": spec.test_data,
            "score": spec.score,  # a [0, 1] score: mode=health can blend it
            "needs_callback": spec.needs,
        }
        for name, spec in OBJECTIVES.items()
    ]


@_kept(CACHE_S)
def cuda() -> dict[str, Any]:
    """{available, devices: [names], detail}: whether a job's trials can train on CUDA here (imports torch)."""
    import torch

    if not torch.cuda.is_available():
        why = "no CUDA device visible" if torch.version.cuda else "this torch is built without CUDA"
        return {"available": False, "devices": [], "detail": f"{why} (torch {torch.__version__})"}
    devices = [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())]
    return {
        "available": True,
        "devices": devices,
        "detail": f"{len(devices)} device(s), CUDA {torch.version.cuda}, torch {torch.__version__}",
    }


@_kept(CACHE_S)
def executors() -> dict[str, dict[str, Any]]:
    """{local, submitit, slurm: {available, detail}}: which executor=... can run a job from here now."""
    return {
        "local": {"available": True, "detail": "trials run one after another in the job's process"},
        "submitit": _submitit(),
        "slurm": _slurm(),
    }


def _submitit() -> dict[str, Any]:
    missing = [name for name in ("submitit", "hydra_plugins.hydra_submitit_launcher") if not _importable(name)]
    if missing:
        return {
            "available": False,
            "detail": f"{' and '.join(missing)} not installed: pip install hydra-submitit-launcher",
        }
    return {"available": True, "detail": "trials run as local processes (executor=submitit_local)"}


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package is missing
        return False


def _slurm() -> dict[str, Any]:
    """Whether `sinfo` answers within SINFO_TIMEOUT_S, and the partitions it lists (a client whose controller
    is unreachable retries for a minute; the launcher then falls back to local runs when fallback_local)."""
    if shutil.which("sinfo") is None:
        return {"available": False, "detail": "`sinfo` is not on PATH (no SLURM client installed)"}
    try:
        done = subprocess.run(
            ["sinfo", "--noheader", "--format=%P %a %D %t"], capture_output=True, text=True, timeout=SINFO_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        return {"available": False, "detail": f"`sinfo` did not answer within {SINFO_TIMEOUT_S:g} s (no controller)"}
    if done.returncode != 0:
        output = (done.stderr + done.stdout).strip()
        return {"available": False, "detail": f"`sinfo` failed: {first_line(output) if output else done.returncode}"}
    rows = [line.split() for line in done.stdout.splitlines() if len(line.split()) == 4]
    if not rows:
        return {"available": False, "detail": "`sinfo` lists no partitions"}
    shown = "; ".join(f"{name} ({available}, {nodes} {state})" for name, available, nodes, state in rows)
    return {"available": True, "detail": f"partitions: {shown}"}


def _dataset(path: Path, data_dir: Path) -> dict[str, Any]:
    from hydra.utils import get_object
    from omegaconf import OmegaConf

    from lightsweep.models.registry import dataset_modality

    answer: dict[str, Any] = {"name": path.stem, "modality": None, "present": False, "detail": ""}
    root = OmegaConf.create({"paths": {"data_dir": str(data_dir), "cache_dir": str(data_dir)}})
    root.dataset = OmegaConf.load(path)
    settings = OmegaConf.to_container(root.dataset, resolve=True)
    target = settings.pop("_target_")
    try:
        answer["modality"] = dataset_modality(target)
    except ImportError as exc:
        answer["detail"] = f"its class {target} cannot be imported: {first_line(exc)}"
        return answer
    missing = OmegaConf.missing_keys(root.dataset)
    if missing:
        answer["detail"] = f"a template: needs {', '.join(sorted(missing))}"
        return answer
    try:
        module = get_object(target)(**settings)
        answer["present"], answer["detail"] = _files_present(module)
    except ConfigError as exc:
        answer["detail"] = first_line(exc)
    return answer


def _files_present(module: Any) -> tuple[bool, str]:
    """(whether the files the dataset module would read are there, where it looks), as each class finds them."""
    from lightsweep.data.images import ImageDataModule
    from lightsweep.data.imdb import KERAS_FILES as IMDB_KERAS_FILES
    from lightsweep.data.imdb import RAW_URL, ImdbDataModule
    from lightsweep.data.reuters import KERAS_FILES as REUTERS_KERAS_FILES
    from lightsweep.data.reuters import SGML_FILES, SGML_URL, ReutersDataModule
    from lightsweep.data.timeseries import TimeSeriesDataModule, aeon_data_dir, find_split_files

    if isinstance(module, TimeSeriesDataModule):
        if module.source == "aeon":
            shipped = find_split_files(aeon_data_dir() / module.name, module.name) is not None
            return shipped, f"{module.name} {'is' if shipped else 'is not'} shipped with aeon"
        folder = module.data_dir / module.archive / module.name
        return find_split_files(folder, module.name) is not None, f"{module.name}_TRAIN/_TEST in {folder}"
    if getattr(module, "source", None) == "tfds":
        return _tfds_present(module.tfds_name, module.tfds_dir)
    if isinstance(module, ImageDataModule):
        if module.unpacked_sources() is not None:
            return True, f"unpacked in {module.data_dir}"
        return _all_in(module.data_dir, list(module.files))
    if isinstance(module, ImdbDataModule):
        if module.format == "keras":
            return _all_in(module.data_dir, list(IMDB_KERAS_FILES))
        return _any_in(module.data_dir, ["aclImdb", Path(RAW_URL).name])
    if isinstance(module, ReutersDataModule):
        if module.format == "keras":
            return _all_in(module.data_dir, list(REUTERS_KERAS_FILES))
        if all((module.data_dir / name).is_file() for name in SGML_FILES):
            return True, f"reut2-*.sgm in {module.data_dir}"
        return _any_in(module.data_dir, [Path(SGML_URL).name])
    if not hasattr(module, "data_dir"):
        return True, "needs no data files (shipped with its library)"
    return False, f"lightsweep cannot tell whether the files of {type(module).__name__} are present"


def _tfds_present(name: str, tfds_dir: str | Path) -> tuple[bool, str]:
    from lightsweep.data.tfds_source import prepared_files

    return bool(prepared_files(name, tfds_dir)), f"tensorflow-datasets {name} prepared in {tfds_dir}"


def _all_in(folder: Path, names: list[str]) -> tuple[bool, str]:
    return all((folder / name).is_file() for name in names), f"{', '.join(names)} in {folder}"


def _any_in(folder: Path, names: list[str]) -> tuple[bool, str]:
    return any((folder / name).exists() for name in names), f"{' or '.join(names)} in {folder}"
