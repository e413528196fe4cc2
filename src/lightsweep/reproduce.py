"""`lightsweep reproduce RUN_DIR`: re-run a run from its .hydra/ snapshot and compare the metrics."""

from __future__ import annotations

import math
import os
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from lightsweep.errors import ConfigError
from lightsweep.runinfo import RUN_JSON, launch_dir, read_run


def reproduce(run_dir: str | Path, tolerance: float = 0.0) -> int:
    """Re-run into RUN_DIR/reproduce-<time>/; print each metric side by side. 0 if all match, else 1."""
    from omegaconf import OmegaConf

    from lightsweep.train import run

    run_dir = Path(run_dir)
    snapshot = run_dir / ".hydra" / "config.yaml"
    if not snapshot.is_file() or not (run_dir / RUN_JSON).is_file():
        raise ConfigError(
            f"{run_dir} is not a finished lightsweep run: it needs .hydra/config.yaml and {RUN_JSON}. "
            "Pass a directory under outputs/ or multirun/."
        )
    original = read_run(run_dir)
    if original.get("status") != "ok":
        raise ConfigError(f"{run_dir} ended with status {original.get('status')!r}: there are no metrics to match.")
    cfg = OmegaConf.load(snapshot)
    cfg.paths.output_dir = str((run_dir / f"reproduce-{datetime.now():%Y%m%d-%H%M%S}").resolve())
    with _working_dir(launch_dir(run_dir)):
        again = run(cfg).metrics
    return _compare(original["metrics"], again, tolerance, cfg.paths.output_dir)


@contextmanager
def _working_dir(path: Path):
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def _compare(before: dict[str, float], after: dict[str, float], tolerance: float, new_dir: str) -> int:
    names = sorted(set(before) & set(after))
    mismatched = [n for n in names if not _same(before[n], after[n], tolerance)]
    width = max([len("metric"), *map(len, names)]) + 2  # long names (test/f1_macro_per_class...) stay aligned
    print(f"{'metric':<{width}}{'original':>14}{'reproduced':>14}  match")
    for name in names:
        print(
            f"{name:<{width}}{_number(before[name])}{_number(after[name])}  {'yes' if name not in mismatched else 'NO'}"
        )
    test_names = [n for n in names if n.startswith("test/")]
    verdict = "identical" if not mismatched else f"DIFFERENT ({', '.join(mismatched)})"
    print(f"reproduced in {new_dir}: {len(names)} metrics ({len(test_names)} test) {verdict}")
    return 0 if not mismatched else 1


def _number(value: float | None) -> str:
    return f"{'null':>14}" if value is None else f"{value:>14.6f}"  # run.json stores NaN as null


def _same(a: float | None, b: float | None, tolerance: float) -> bool:
    if a is None or b is None:  # NaN is stored as null in run.json
        return a is None and (b is None or math.isnan(b))
    return abs(a - b) <= tolerance
