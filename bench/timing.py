"""What the bench scripts share: peak memory and latency summaries, measured one way."""

from __future__ import annotations

import resource

import numpy as np
import torch


def peak_mb(device: str | torch.device) -> float:
    """Peak CUDA memory allocated since the last reset, or the process's peak RSS on CPU."""
    if torch.device(device).type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def summarize(times: list[float] | np.ndarray, batch: int) -> tuple[float, float, float, float]:
    """(items per second, mean, p50, p95 milliseconds per batch) of per-batch times (s)."""
    t = np.asarray(times, dtype=np.float64)
    return batch / t.mean(), t.mean() * 1e3, np.median(t) * 1e3, np.percentile(t, 95) * 1e3
