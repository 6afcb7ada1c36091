"""What the bench scripts share: the machine line every table starts with, peak memory and
latency summaries, measured one way."""

from __future__ import annotations

import os
import platform
import resource
from pathlib import Path

import numpy as np
import torch

from common.hardware import cpu_has_bf16_matmul


def peak_mb(device: str | torch.device) -> float:
    """Peak CUDA memory allocated since the last reset, or the process's peak RSS on CPU."""
    if torch.device(device).type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def summarize(times: list[float] | np.ndarray, batch: int) -> tuple[float, float, float, float]:
    """(items per second, mean, p50, p95 milliseconds per batch) of per-batch times (s)."""
    t = np.asarray(times, dtype=np.float64)
    return batch / t.mean(), t.mean() * 1e3, np.median(t) * 1e3, np.percentile(t, 95) * 1e3


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def machine_line(device: str | torch.device | None = None) -> str:
    """The line every bench table starts with: CPU, cores, threads, torch, and whether this
    CPU has bf16 matrix units (`common.hardware.cpu_has_bf16_matmul`: Intel AMX), which
    decides bf16 or fp32 on a CPU and changes CPU speeds 2-3x; the GPU when one is used.
    Speed figures mean little without it."""
    flags = _cpu_flags()
    bf16 = cpu_has_bf16_matmul()
    vector = "avx512_bf16 yes" if "avx512_bf16" in flags else "avx512_bf16 no"
    units = "yes: auto precision is bf16 here" if bf16 else "no: auto precision is fp32 here"
    line = (
        f"# machine: {cpu_name()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads); bf16 matrix units (AMX): {units} ({vector})"
    )
    if device is not None and torch.device(device).type == "cuda" and torch.cuda.is_available():
        line += f"; GPU {torch.cuda.get_device_name(torch.device(device))}"
    return line
