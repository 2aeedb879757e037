"""Throughput and feature-collapse meters for pretraining logs."""

from __future__ import annotations

import time

import torch


class Throughput:
    """Clips/s over the window since the last `rate()` call, excluding the first `warmup` steps.

    On CUDA the device is synchronized at each window boundary, so the figure is device time, not launch time.
    """

    def __init__(self, device: torch.device, warmup: int = 5) -> None:
        self.device = device
        self.warmup = warmup
        self.steps = 0
        self.clips = 0
        self.total_clips = 0
        self.total_time = 0.0
        self.t0: float | None = None

    def _now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def step(self, clips: int) -> None:
        self.steps += 1
        if self.steps == self.warmup:  # start timing after the warmup steps
            self.t0 = self._now()
        elif self.steps > self.warmup:
            self.clips += clips

    def rate(self) -> float | None:
        """Clips/s since the last call (None while warming up or when nothing was timed)."""
        if self.t0 is None or self.clips == 0:
            return None
        now = self._now()
        dt = now - self.t0
        rate = self.clips / dt if dt > 0 else None
        self.total_clips += self.clips
        self.total_time += dt
        self.t0, self.clips = now, 0
        return rate

    def overall(self) -> float | None:
        """Clips/s over every timed window so far."""
        return self.total_clips / self.total_time if self.total_time > 0 else None


@torch.no_grad()
def feature_std(features: torch.Tensor) -> tuple[float, float]:
    """(mean, min) over dimensions of the per-dimension std of `features` (..., D) across all tokens.

    A collapsed encoder maps every token to the same vector: all stds go to 0.
    """
    std = features.float().flatten(0, -2).std(dim=0)
    return float(std.mean()), float(std.min())
