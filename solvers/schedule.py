"""Uniform time grid and the map from time steps to control intervals."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    """``steps`` uniform steps of size ``dt`` from ``t0``; controls piecewise constant on
    ``intervals`` equal groups of steps (interval k covers steps n with n*K//L == k)."""

    steps: int
    dt: float
    intervals: int = 1
    t0: float = 0.0

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError("steps must be >= 1")
        if not 1 <= self.intervals <= self.steps:
            raise ValueError(f"control intervals K={self.intervals} must satisfy 1 <= K <= steps={self.steps}")

    def interval(self, n: int) -> int:
        return n * self.intervals // self.steps

    def time(self, n: int) -> float:
        return self.t0 + n * self.dt

    @property
    def t_end(self) -> float:
        return self.time(self.steps)

    def interval_steps(self, k: int) -> int:
        """Number of steps in control interval k."""
        return sum(1 for n in range(self.steps) if self.interval(n) == k)

    def interval_midpoint(self, k: int) -> float:
        ns = [n for n in range(self.steps) if self.interval(n) == k]
        return self.t0 + 0.5 * (ns[0] + ns[-1] + 1) * self.dt
