"""The body of `POST /optimize`: parameters, never code. Typed fields with bounds, `overrides` on an allowlist
taken from the composed config, the job's Hydra argument list built from the validated request only, and
validate() (compose + the CLI's validator) for `?validate_only=true` and before a job starts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from hydra.core.config_store import ConfigStore
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

import hydra_plugins.lightsweep_sweeper.config  # noqa: F401  registers the pruners and Optuna's samplers
from lightsweep.errors import ConfigError, group_choices
from lightsweep.objective import OBJECTIVES
from lightsweep.service.allowlist import (
    COMPOSE_LOCK,
    RUN_DIR_PLACEHOLDER,
    Allowed,
    allowlist,
    allowlist_problem,
    parser,
    syntax_problem,
)


def _stored(group: str) -> tuple[str, ...]:
    return tuple(sorted(name.removesuffix(".yaml") for name in ConfigStore.instance().list(group)))


DATASETS = tuple(group_choices("dataset"))
# grid is refused by the lightsweep sweeper (the family spaces have intervals); motpe was removed from Optuna.
SAMPLERS = tuple(name for name in _stored("hydra/sweeper/sampler") if name not in ("grid", "motpe"))
SAMPLER_PACKAGES = {"cmaes": "cmaes"}  # imported by Optuna only when sampling: a missing one fails every trial
SWEEP_OBJECTIVES = tuple(name for name, spec in OBJECTIVES.items() if not spec.test_data)
OverrideValue = StrictBool | StrictInt | StrictFloat | StrictStr


class RequestInvalid(Exception):
    """The request's config does not compose or validate: every problem, each a sentence naming the key."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class OptimizeRequest(BaseModel):
    """A sweep (or one run) as parameters only: typed, bounded fields and an allowlisted `overrides` map."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, str_max_length=200)

    kind: Literal["sweep", "run"] = Field("sweep", description="sweep: an Optuna search (-m); run: one training run")
    dataset: str = Field(description="a dataset of conf/dataset", json_schema_extra={"enum": list(DATASETS)})
    model: Literal[tuple(group_choices("model"))] = Field(
        "auto", description="model family; auto picks it from the dataset's modality"
    )
    mode: Literal["simple", "health"] = Field(
        "simple", description="simple: the objective as measured; health: blended with the overall health score"
    )
    objective: Literal[SWEEP_OBJECTIVES] = Field("val_accuracy", description="what the sweep optimises")
    health_weight: float = Field(0.3, ge=0.0, le=1.0, description="w in (1-w)*objective + w*health (mode=health)")
    trials: int = Field(10, ge=1, le=1000, description="trials in the study (kind=sweep)")
    max_epochs: int | None = Field(None, ge=1, le=10000, description="epochs per trial; null: the model's budget")
    pruner: Literal[("default", *_stored("hydra/sweeper/pruner"))] = Field(
        "default",
        description="stops poor trials early; default: the sweep's (median, off when the objective has no "
        "per-epoch metric), none: every trial trains in full",
    )
    sampler: Literal[SAMPLERS] = Field("tpe", description="Optuna sampler proposing each trial's parameters")
    executor: Literal[tuple(group_choices("executor"))] = Field("local", description="where the sweep's trials run")
    fallback_local: bool = Field(False, description="executor=slurm: run locally when no scheduler answers")
    n_jobs: int = Field(1, ge=1, le=64, description="trials launched at once")
    seed: int = Field(42, ge=0, le=2**31 - 1, description="seeds training and the sampler")
    overrides: dict[Annotated[str, Field(max_length=200)], OverrideValue] = Field(
        default_factory=dict,
        max_length=64,
        description="config keys -> scalar values, on an allowlist: the model family's search space and the "
        "numeric, boolean and enumerated knobs of model., dataset. and trainer.",
    )

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, dataset: str) -> str:
        if dataset not in DATASETS:
            raise ValueError(f"dataset={dataset!r} is not a dataset: use one of {', '.join(DATASETS)}.")
        return dataset

    @field_validator("overrides")
    @classmethod
    def _allowed(cls, overrides: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        found = [p for key in sorted(overrides) if (p := syntax_problem(key, overrides[key]))]
        if overrides and not found and {"dataset", "model"} <= set(info.data):  # else their own errors answer
            allowed = allowlist(info.data["dataset"], info.data["model"])
            found = [p for key in sorted(overrides) if (p := allowlist_problem(key, overrides[key], allowed))]
        if found:
            raise ValueError(" ".join(found))
        return overrides

    @model_validator(mode="after")
    def _consistent(self) -> OptimizeRequest:
        defaults = {name: field.default for name, field in type(self).model_fields.items()}
        found = [
            f"{name}={getattr(self, name)} applies to kind=sweep only: drop it or use kind=sweep."
            for name in ("trials", "pruner", "sampler", "n_jobs", "executor")
            if self.kind == "run" and getattr(self, name) != defaults[name]
        ]
        if OBJECTIVES[self.objective].health_only and self.mode != "health":
            found.append(f"objective={self.objective} is a health score: it needs mode=health (got mode={self.mode}).")
        if self.mode != "health" and self.health_weight != defaults["health_weight"]:
            found.append(f"health_weight={self.health_weight} applies to mode=health only: set mode=health or drop it.")
        if self.fallback_local and self.executor != "slurm":
            found.append(f"fallback_local=true applies to executor=slurm only (got executor={self.executor}).")
        if found:
            raise ValueError(" ".join(found))
        return self


def allowed_overrides(request: OptimizeRequest) -> dict[str, Allowed]:
    """The overrides keys settable for the request's dataset and model, with what each accepts."""
    return allowlist(request.dataset, request.model)


def hydra_arguments(request: OptimizeRequest, sweep_dir: Path) -> list[str]:
    """The arguments after `train.py` for the job, from the validated request only: its fields, its overrides
    in key order, then the folder Hydra writes to (hydra.sweep.dir for a sweep, hydra.run.dir for a run)."""
    directory = "hydra.sweep.dir" if request.kind == "sweep" else "hydra.run.dir"
    return [*_arguments(request), _override(directory, str(sweep_dir))]


def _arguments(request: OptimizeRequest) -> list[str]:
    sweep = request.kind == "sweep"
    args = ["-m", f"+sweep={request.mode}"] if sweep else []
    args += [f"dataset={request.dataset}", f"model={request.model}", f"objective.name={request.objective}"]
    if request.mode == "health":
        args += [] if sweep else ["objective.mode=health"]  # +sweep=health sets it for a sweep
        args.append(_override("objective.health_weight", request.health_weight))
    if sweep:
        args += [f"hydra.sweeper.n_trials={request.trials}", f"hydra.sweeper.n_jobs={request.n_jobs}"]
        args += [] if request.pruner == "default" else [f"hydra/sweeper/pruner={request.pruner}"]
        args.append(f"hydra/sweeper/sampler={request.sampler}")
        args.append(f"executor={request.executor}")
        if request.executor == "slurm":
            args.append(_override("hydra.launcher.fallback_local", request.fallback_local))
    args.append(f"seed={request.seed}")
    if request.max_epochs is not None:
        args.append(f"trainer.max_epochs={request.max_epochs}")
    return args + [_override(key, value) for key, value in sorted(request.overrides.items())]


def _override(key: str, value: Any) -> str:
    """key=value spelled so that Hydra parses it back to the same value and type (a string that would read
    as a number or bool is quoted); anything else is refused."""
    text = str(value).lower() if isinstance(value, bool) else repr(value) if isinstance(value, float) else str(value)
    for spelling in (text, "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"):
        if "${" not in text and _parsed(f"{key}={spelling}") == (type(value), value):
            return f"{key}={spelling}"
    raise ValueError(f"{key}={text!r} cannot be written as a Hydra override that reads back the same.")


def _parsed(override: str) -> tuple[type, Any] | None:
    from hydra.errors import HydraException

    try:
        parsed = parser().parse_override(override)
    except HydraException:
        return None
    return None if parsed.is_sweep_override() else (type(parsed.value()), parsed.value())


def validate(request: OptimizeRequest) -> dict[str, Any]:
    """Compose the job's config as the CLI would for hydra_arguments() (its -m and hydra.* arguments aside)
    and check it as a run does before training: the resolved config as plain containers, or RequestInvalid
    listing every problem."""

    from lightsweep.config import compose
    from lightsweep.errors import describe_user_error
    from lightsweep.objective import check_objective, pruning_monitor
    from lightsweep.session import resolved_config
    from lightsweep.validate import problems

    job = [arg for arg in _arguments(request) if arg != "-m" and not arg.startswith(("hydra.", "hydra/"))]
    try:
        with COMPOSE_LOCK:
            cfg = compose(job, output_dir=RUN_DIR_PLACEHOLDER)
        plain, _ = resolved_config(cfg)
    except Exception as exc:
        if (message := describe_user_error(exc)) is None:
            raise
        raise RequestInvalid([message]) from exc
    found = problems(plain)
    checks = [lambda: check_objective(plain, in_sweep=request.kind == "sweep")]
    if request.kind == "sweep" and request.pruner not in ("none", "default"):  # the sweeper's check of a chosen one
        direction = OBJECTIVES[request.objective].direction
        checks.append(lambda: pruning_monitor(request.objective, None, None, direction))
    for check in checks:
        try:
            check()
        except ConfigError as exc:
            found.append(str(exc))
    if request.kind == "sweep" and (package := SAMPLER_PACKAGES.get(request.sampler)):
        import importlib.util

        if importlib.util.find_spec(package) is None:
            found.append(
                f"sampler={request.sampler} needs the Python package {package}, which is not installed "
                f"here: install it, or use another sampler ({', '.join(SAMPLERS)})."
            )
    if found:
        raise RequestInvalid(found)
    return plain
