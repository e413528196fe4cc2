"""TimeHUT's "novel efficient" temperature schedules #14-#22 (aminjalali-research/TSlib,
models/timehut/temperature_schedulers.py; #N as in schedules.py); same interface as schedules.py."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from lightsweep.models.timehut.schedules import Cyclic, LinearDecay, Schedule, clamp, half_cosine, require


@dataclass(frozen=True)
class MomentumAdaptive(LinearDecay):
    """#14 momentum_adaptive: linear decay (#2) nudged by a momentum of the loss changes.

    M folds the changes of the history, M <- μM + (1 - μ)(h[i] - h[i-1]) from M = 0;
    τ = clamp(base + ρM, a, b).
    """

    momentum: float = 0.9
    adapt_rate: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        require(0 <= self.momentum <= 1, f"momentum={self.momentum} must be in [0, 1], e.g. 0.9.")

    def _tau(self, epoch: int, history: Sequence[float]) -> float:
        # Fixed knowingly: the reference keeps M on the class, so it leaks from one run into the next,
        # and updates it once per call. M is rebuilt here from the history on every call: the same value
        # as the reference's for one call per epoch from a fresh start, with no state to leak.
        velocity = 0.0
        for before, after in pairwise(history):
            velocity = self.momentum * velocity + (1 - self.momentum) * (after - before)
        return clamp(super()._tau(epoch, history) + self.adapt_rate * velocity, self.tau_min, self.tau_max)


@dataclass(frozen=True)
class Triangular(Cyclic):
    """#15 triangular: a triangle wave a -> b -> a every c epochs; c = cycle_length, null = P/3."""

    def _tau(self, epoch: int, history: Sequence[float]) -> float:
        position = epoch % self.cycle
        if position <= self.cycle / 2:
            return self.tau_min + self.span * 2 * position / self.cycle
        return self.tau_max - self.span * 2 * (position - self.cycle / 2) / self.cycle


@dataclass(frozen=True)
class OneCycle(Schedule):
    """#16 onecycle: up a -> b until e_p = peak_epoch_ratio·P, then down to τ_f = final_tau_ratio·a at P.

    The descent line goes on past P; τ never drops below τ_f.
    """

    peak_epoch_ratio: float = 0.3
    final_tau_ratio: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        require(0 < self.peak_epoch_ratio < 1, f"peak_epoch_ratio={self.peak_epoch_ratio} must be in (0, 1), e.g. 0.3.")
        require(self.final_tau_ratio > 0, f"final_tau_ratio={self.final_tau_ratio} must be positive, e.g. 0.1.")

    def _tau(self, epoch: int, history: Sequence[float]) -> float:
        peak, final = self.peak_epoch_ratio * self.t_max, self.final_tau_ratio * self.tau_min
        if epoch <= peak:
            return self.tau_min + self.span * epoch / peak
        return max(final, self.tau_max - (self.tau_max - final) * (epoch - peak) / (self.t_max - peak))


@dataclass(frozen=True)
class HyperbolicTangent(Schedule):
    """#17 hyperbolic_tangent: τ = a + ½Δ(1 - tanh(k(e/P - s))), an S-curve from b to a centred at e = sP."""

    steepness: float = 2.0
    shift: float = 0.5

    def _tau(self, epoch: int, history: Sequence[float]) -> float:
        slope = math.tanh(self.steepness * (epoch / self.t_max - self.shift))
        return self.tau_min + 0.5 * self.span * (1 - slope)


@dataclass(frozen=True)
class Logarithmic(Schedule):
    """#18 logarithmic: τ = max(a, b - Δ·ln(e + o)/ln(P + o)) for e < P, then a.

    The reference's `log_base` cancels in the ratio, so it is not a setting here.
    """

    offset: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        # o < 1 would put τ above b at the start (and ln(P + o) can reach 0)
        require(self.offset >= 1, f"offset={self.offset} must be at least 1, e.g. 1.0.")

    def _tau(self, epoch: int, history: Sequence[float]) -> float:
        if epoch >= self.t_max:
            return self.tau_min
        fraction = math.log(epoch + self.offset) / math.log(self.t_max + self.offset)
        return max(self.tau_min, self.tau_max - self.span * fraction)


@dataclass(frozen=True)
class PiecewiseLinearPlateau(Schedule):
    """#19 piecewise_linear_plateau: ramps through the targets b, 0.7b, 0.4b, a, holding each after its ramp.

    Segment i is a ramp of breakpoints[i] epochs from target i to target i+1, then a plateau of
    plateau_lengths[i] epochs; after the last plateau τ = a. Null = [0.2, 0.5, 0.8]·P and [0.1, 0.1, 0.1]·P.
    """

    breakpoints: list[float] | None = None
    plateau_lengths: list[float] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        require(
            len(self.ramps) == 3 and min(self.ramps) > 0,
            f"breakpoints={self.breakpoints} must be 3 positive ramp lengths (epochs), or null.",
        )
        require(
            len(self.plateaus) == 3 and min(self.plateaus) >= 0,
            f"plateau_lengths={self.plateau_lengths} must be 3 lengths >= 0 (epochs), or null.",
        )

    @property
    def ramps(self) -> tuple[float, ...]:
        # Reference quirk, kept: "breakpoints" are ramp durations, not epochs where a ramp ends, so the
        # defaults reach a only after 1.8P. The 0.4b target is not clamped either (it is below a when a > 0.4b).
        if self.breakpoints is not None:
            return tuple(self.breakpoints)
        return tuple(f * self.t_max for f in (0.2, 0.5, 0.8))

    @property
    def plateaus(self) -> tuple[float, ...]:
        return tuple(self.plateau_lengths) if self.plateau_lengths is not None else (0.1 * self.t_max,) * 3

    def _tau(self, epoch: int, history: Sequence[float]) -> float:
        targets = (self.tau_max, 0.7 * self.tau_max, 0.4 * self.tau_max, self.tau_min)
        start = 0.0
        for i, (ramp, plateau) in enumerate(zip(self.ramps, self.plateaus)):
            if epoch <= start + ramp:
                return targets[i] + (targets[i + 1] - targets[i]) * (epoch - start) / ramp
            start += ramp
            if epoch <= start + plateau:
                return targets[i + 1]
            start += plateau
        return self.tau_min


@dataclass(frozen=True)
class InverseTimeDecay(Schedule):
    """#20 inverse_time_decay: τ = max(a, b / (1 + r·e')); e' = e, or with staircase e rounded down to
    a multiple of s = max(1, int(P/10))."""

    decay_rate: float = 0.1
    staircase: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.decay_rate >= 0, f"decay_rate={self.decay_rate} must be >= 0, e.g. 0.1.")

    def _tau(self, epoch: int, history: Sequence[float]) -> float:
        step = max(1, int(self.t_max / 10))
        effective = epoch // step * step if self.staircase else epoch
        return max(self.tau_min, self.tau_max / (1 + self.decay_rate * effective))


@dataclass(frozen=True)
class DoubleExponential(Schedule):
    """#21 double_exponential: a fast exponential fall a + Δ·exp(-f·e) until e_t, then a slow one
    a + (τ(e_t) - a)·exp(-s(e - e_t)); e_t = transition_epoch, null = 0.3P."""

    fast_decay: float = 0.1
    slow_decay: float = 0.01
    transition_epoch: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.fast_decay >= 0, f"fast_decay={self.fast_decay} must be >= 0, e.g. 0.1.")
        require(self.slow_decay >= 0, f"slow_decay={self.slow_decay} must be >= 0, e.g. 0.01.")
        require(
            self.transition_epoch is None or self.transition_epoch >= 0,
            f"transition_epoch={self.transition_epoch} must be >= 0 (epochs), or null for 0.3 * t_max.",
        )

    def _tau(self, epoch: int, history: Sequence[float]) -> float:
        switch = self.transition_epoch if self.transition_epoch is not None else 0.3 * self.t_max
        if epoch <= switch:
            return max(self.tau_min, self.tau_min + self.span * math.exp(-self.fast_decay * epoch))
        at_switch = self.tau_min + self.span * math.exp(-self.fast_decay * switch)
        slow = math.exp(-self.slow_decay * (epoch - switch))
        return max(self.tau_min, self.tau_min + (at_switch - self.tau_min) * slow)


@dataclass(frozen=True)
class NoisyCosine(Schedule):
    """#22 noisy_cosine: the "pi" cosine plus uniform noise in ±η·δ^e·Δ, clamped to [a, b]."""

    noise_factor: float = 0.05
    noise_decay: float = 0.95
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.noise_factor >= 0, f"noise_factor={self.noise_factor} must be >= 0, e.g. 0.05.")
        require(0 < self.noise_decay <= 1, f"noise_decay={self.noise_decay} must be in (0, 1], e.g. 0.95.")

    def _tau(self, epoch: int, history: Sequence[float]) -> float:
        reach = self.noise_factor * self.noise_decay**epoch * self.span
        # Fixed knowingly: the reference draws from the global `random`, so no run repeats. Each epoch
        # gets its own generator seeded by (seed, epoch): reruns, repeated calls and resumed runs agree.
        noise = random.Random(f"{self.seed}:{epoch}").uniform(-reach, reach)
        base = half_cosine(self.tau_min, self.span, epoch / self.t_max)
        return clamp(base + noise, self.tau_min, self.tau_max)
