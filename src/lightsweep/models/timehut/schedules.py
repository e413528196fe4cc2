"""TimeHUT's per-epoch temperature schedules #1-#13; #14-#22 are in schedules_extra. #N is the method's place in
aminjalali-research/TSlib, models/timehut/temperature_schedulers.py; the training loop of
aminjalali-research/TimeHUT (ts2vec.py) sets tau once per epoch, with #1's "pi" cosine.

Each schedule is a small frozen dataclass built from conf/scheduler/<name>.yaml and called once per
epoch: `schedule(epoch, history) -> tau`, epoch 0-based, history = mean training loss of each past
epoch (only the adaptive schedules read it). Notation in the docstrings: e = epoch, a = tau_min,
b = tau_max, P = t_max, Δ = b - a. Pure Python: no torch, so the schedules are cheap to test.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from lightsweep.errors import ConfigError


def clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def half_cosine(low: float, span: float, progress: float) -> float:
    """low + span·½(1 + cos(π·progress)): low + span at progress 0, low at 1, back up at 2."""
    return low + 0.5 * span * (1.0 + math.cos(math.pi * progress))


def require(ok: bool, message: str) -> None:
    """Refuse a bad setting; the message names the setting, its value and what is valid."""
    if not ok:
        raise ConfigError(f"scheduler.{message}")


@dataclass(frozen=True)
class Schedule:
    """Shared settings: the temperature range [tau_min, tau_max] and t_max, the schedule's length in epochs."""

    tau_min: float = 0.15
    tau_max: float = 0.75
    t_max: float = 10.5

    def __post_init__(self) -> None:
        # τ divides the logits, so it must stay positive
        require(
            0 < self.tau_min <= self.tau_max,
            f"tau_min={self.tau_min} and tau_max={self.tau_max} must satisfy 0 < tau_min <= tau_max.",
        )
        require(self.t_max > 0, f"t_max={self.t_max} must be positive (epochs), e.g. 10.5.")

    @property
    def span(self) -> float:
        return self.tau_max - self.tau_min

    def __call__(self, epoch: int, history: Sequence[float] = ()) -> float:
        return float(self._tau(epoch, history))

    def _tau(self, epoch: int, history: Sequence[float]) -> float:
        raise NotImplementedError


@dataclass(frozen=True)
class CosineAnnealing(Schedule):
    """#1 cosine_annealing: τ starts at b and follows a cosine down to a and back.

    convention="pi" (default: the reference TimeHUT training loop, which the published recipes ran):
        τ = a + ½Δ(1 + cos(π·e/P)), no clamp: a at e = P, b again at e = 2P (period 2P).
    convention="two_pi" (the reference scheduler class and Kukleva et al.):
        τ = clamp(a + ½Δ(1 + cos(2π·f·e/P + φ)) + β, a, b): a at e = P/(2f), period P/f.
    phase φ (radians), frequency f and bias β exist only in the two_pi formula.
    """

    convention: Literal["pi", "two_pi"] = "pi"
    phase: float = 0.0
    frequency: float = 1.0
    bias: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.convention in ("pi", "two_pi"), f"convention={self.convention!r} must be 'pi' or 'two_pi'.")
        require(self.frequency > 0, f"frequency={self.frequency} must be positive, e.g. 1.0.")
        require(
            self.convention == "two_pi" or (self.phase, self.frequency, self.bias) == (0, 1, 0),
            "phase, frequency and bias apply only to convention=two_pi: leave them at 0, 1, 0 with pi.",
        )

    def _tau(self, epoch: int, history: Sequence[float]) -> float:
        if self.convention == "pi":
            return half_cosine(self.tau_min, self.span, epoch / self.t_max)
        progress = 2 * self.frequency * epoch / self.t_max + self.phase / math.pi
        return clamp(half_cosine(self.tau_min, self.span, progress) + self.bias, self.tau_min, self.tau_max)


@dataclass(frozen=True)
class LinearDecay(Schedule):
    """#2 linear_decay: τ = b - Δ·e/P for e < P, then a."""

    def _tau(self, epoch: int, history: Sequence[float]) -> float:
        return self.tau_max - self.span * epoch / self.t_max if epoch < self.t_max else self.tau_min


@dataclass(frozen=True)
class ExponentialDecay(Schedule):
    """#3 exponential_decay: τ = max(a, b·r^e); t_max is not used."""

    decay_rate: float = 0.95

    def __post_init__(self) -> None:
        super().__post_init__()
        require(0 < self.decay_rate <= 1, f"decay_rate={self.decay_rate} must be in (0, 1], e.g. 0.95.")

    def _tau(self, epoch: int, history: Sequence[float]) -> float:
        return max(self.tau_min, self.tau_max * self.decay_rate**epoch)


@dataclass(frozen=True)
class StepDecay(Schedule):
    """#4 step_decay: τ = max(a, b·γ^⌊e/s⌋); s = step_size, null = int(P/3)."""

    step_size: int | None = None
    gamma: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        require(
            self.step >= 1,
            f"step_size={self.step_size} resolves to {self.step} epochs (null means "
            "int(t_max / 3)): set a step_size >= 1, or t_max >= 3.",
        )
        require(0 < self.gamma <= 1, f"gamma={self.gamma} must be in (0, 1], e.g. 0.5.")

    @property
    def step(self) -> int:
        return self.step_size if self.step_size is not None else int(self.t_max / 3)

    def _tau(self, epoch: int, history: Sequence[float]) -> float:
        return max(self.tau_min, self.tau_max * self.gamma ** (epoch // self.step))


@dataclass(frozen=True)
class PolynomialDecay(Schedule):
    """#5 polynomial_decay: τ = a + Δ(1 - e/P)^p for e < P, then a."""

    power: float = 2.0

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.power > 0, f"power={self.power} must be positive, e.g. 2.0.")

    def _tau(self, epoch: int, history: Sequence[float]) -> float:
        if epoch >= self.t_max:
            return self.tau_min
        return self.tau_min + self.span * (1 - epoch / self.t_max) ** self.power


@dataclass(frozen=True)
class SigmoidDecay(Schedule):
    """#6 sigmoid_decay: τ = a + Δ / (1 + exp(k(e - P/2))), no clamp; midway between a and b at e = P/2."""

    steepness: float = 1.0

    def _tau(self, epoch: int, history: Sequence[float]) -> float:
        x = self.steepness * (epoch - self.t_max / 2)
        # 1 / (1 + exp(x)) written so exp never overflows (the reference's math.exp does past e ≈ 700 + P/2)
        falling = math.exp(-x) / (1 + math.exp(-x)) if x > 0 else 1 / (1 + math.exp(x))
        return self.tau_min + self.span * falling


@dataclass(frozen=True)
class WarmupCosine(Schedule):
    """#7 warmup_cosine: a linear ramp a -> b over w epochs, then τ = a + ½Δ(1 + cos(π(e - w)/(P - w)))."""

    warmup_epochs: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        require(
            0 <= self.warmup_epochs < self.t_max,
            f"warmup_epochs={self.warmup_epochs} must be in [0, t_max={self.t_max}), e.g. 2.",
        )

    def _tau(self, epoch: int, history: Sequence[float]) -> float:
        if epoch < self.warmup_epochs:
            return self.tau_min + self.span * epoch / self.warmup_epochs
        # As in the reference, the cosine is not stopped at P: τ climbs back to b at 2P - w, and so on.
        progress = (epoch - self.warmup_epochs) / (self.t_max - self.warmup_epochs)
        return half_cosine(self.tau_min, self.span, progress)


@dataclass(frozen=True)
class Constant(Schedule):
    """#8 constant: τ = b at every epoch."""

    def _tau(self, epoch: int, history: Sequence[float]) -> float:
        return self.tau_max


@dataclass(frozen=True)
class Cyclic(Schedule):
    """#9 cyclic: a rising saw-tooth, τ = a + Δ·(e mod c)/c; c = cycle_length, null = P/3."""

    cycle_length: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        require(
            self.cycle_length is None or self.cycle_length > 0,
            f"cycle_length={self.cycle_length} must be positive (epochs), or null for t_max / 3.",
        )

    @property
    def cycle(self) -> float:
        return self.cycle_length if self.cycle_length is not None else self.t_max / 3

    def _tau(self, epoch: int, history: Sequence[float]) -> float:
        return self.tau_min + self.span * (epoch % self.cycle) / self.cycle


@dataclass(frozen=True)
class AdaptiveCosineAnnealing(Schedule):
    """#11 adaptive_cosine_annealing: the "pi" cosine whose range reacts to the last loss change.

    With two or more past losses h: Δ' = Δ(1 - ρ(h[-1] - h[-2])) (a falling loss widens the range);
    τ = clamp(a + ½Δ'(1 + cos(π·e/P)), a/2, 1.2b). The reference's `momentum` argument is never used,
    so it is not a setting here; its `performance_history` is the call's `history`.
    """

    adaptation_rate: float = 0.1

    def _tau(self, epoch: int, history: Sequence[float]) -> float:
        span = self.span
        if len(history) >= 2:
            span *= 1 - self.adaptation_rate * (history[-1] - history[-2])
        tau = half_cosine(self.tau_min, span, epoch / self.t_max)
        return clamp(tau, 0.5 * self.tau_min, 1.2 * self.tau_max)


@dataclass(frozen=True)
class MultiCycleCosine(Schedule):
    """#12 multi_cycle_cosine: n half-cosines from the top down to a, each d times the height of the last.

    L = P/n, k = ⌊e/L⌋: τ = clamp(a + ½Δd^k(1 + cos(π(e mod L)/L)), a, b).
    After P the cycles go on, lower and lower.
    """

    num_cycles: int = 3
    decay_factor: float = 0.8

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.num_cycles >= 1, f"num_cycles={self.num_cycles} must be at least 1, e.g. 3.")
        require(0 < self.decay_factor <= 1, f"decay_factor={self.decay_factor} must be in (0, 1], e.g. 0.8.")

    def _tau(self, epoch: int, history: Sequence[float]) -> float:
        cycle = self.t_max / self.num_cycles
        span = self.span * self.decay_factor ** (epoch // cycle)
        return clamp(half_cosine(self.tau_min, span, (epoch % cycle) / cycle), self.tau_min, self.tau_max)


@dataclass(frozen=True)
class CosineWithRestarts(Schedule):
    """#13 cosine_with_restarts (SGDR): half-cosines b -> a lasting P0, P0·m, P0·m², ... epochs (t_max unused).

    In the cycle that starts at s and lasts Pk: τ = a + ½Δ(1 + cos(π(e - s)/Pk)); τ jumps back to b at each s.
    """

    restart_period: float = 5.0
    restart_mult: float = 1.5

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.restart_period > 0, f"restart_period={self.restart_period} must be positive (epochs), e.g. 5.0.")
        # m < 1 would make the cycles' total length finite: later epochs would belong to no cycle
        require(self.restart_mult >= 1, f"restart_mult={self.restart_mult} must be at least 1, e.g. 1.5.")

    def _tau(self, epoch: int, history: Sequence[float]) -> float:
        start, length = 0.0, self.restart_period
        while start + length <= epoch:
            start, length = start + length, length * self.restart_mult
        return half_cosine(self.tau_min, self.span, (epoch - start) / length)
