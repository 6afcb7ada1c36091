"""What the machine can do fast, asked once in one place (training and inference agree).

torch is imported inside the probes, so a command line can offer the choices (`PRECISIONS`)
and check its arguments before the seconds torch takes to import.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from typing import TYPE_CHECKING, Literal, get_args

if TYPE_CHECKING:
    import torch

Precision = Literal["auto", "fp32", "bf16"]
PRECISIONS: tuple[str, ...] = get_args(Precision)

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
KEEP_FREED_BYTES = 1 << 30  # blocks up to this size are kept for reuse, not given back


def _torch_cpu_has(feature: str) -> bool:
    """torch's own probe of a CPU feature (`torch.cpu._is_<feature>_supported`); False where
    this torch has none."""
    import torch

    probe = getattr(torch.cpu, f"_is_{feature}_supported", None)
    return bool(probe and probe())


def cpu_has_bf16_matmul() -> bool:
    """Whether this CPU multiplies bf16 in hardware (Intel AMX tiles). There bf16 runs our
    networks 2-3x faster than fp32 (the 256x176 generator on 2 cores: 0.85 s against 2.5 s; an
    ADGAN training step at 64x44: 0.85 s against 2.4 s); without AMX or AVX-512 BF16
    (`cpu_has_bf16_dot`) bf16 is emulated and slower."""
    return _torch_cpu_has("amx_tile")


def cpu_has_bf16_dot() -> bool:
    """Whether this CPU has AVX-512 BF16 dot products (AMD Zen 4, Intel Cooper Lake and
    later), with or without matrix tiles. oneDNN's bf16 convolutions run natively there: the
    part-warp generator's training step at 256x176, batch 4, on 2 Zen 4 cores takes 0.57 s
    against 0.87 s in fp32 (1.25x at 128x88). Training uses it; inference keeps fp32 there."""
    return _torch_cpu_has("avx512_bf16")


def resolve_device(device: str) -> str:
    """`auto` -> `cuda` where a CUDA GPU is usable, else `cpu`; any other name unchanged.
    The one default of `infer.py` and `python -m studio.serve`."""
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_precision(precision: Precision, device: torch.device) -> Literal["fp32", "bf16"]:
    """auto: bf16 on a GPU (the generator is trained with bf16 autocast) and on a CPU with
    bf16 hardware; fp32 otherwise."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    if device.type == "cuda" or (device.type == "cpu" and cpu_has_bf16_matmul()):
        return "bf16"
    return "fp32"


def keep_freed_memory(limit: int = KEEP_FREED_BYTES) -> bool:
    """Ask glibc's malloc to keep freed blocks of up to `limit` bytes for the next request
    instead of handing them back to the system. A card allocates and frees the same tens of
    megabytes each time (the warp's per-segment stacks, [B, S, C, H, W] floats); glibc maps
    such blocks afresh and unmaps them on free, so every card writes to new pages, one page
    fault per 4 KiB, and those are dear in a virtual machine. The 256x176 generator on the
    2-core AVX2 EPYC (a microVM) gains 15-25% at batch 1, the pipeline at batch 8 2.3 ->
    3.2-3.5 cards/s; the price is peak memory where batches are large (the same at batch 1,
    +4% at batch 8, +25% for 528x768 cards at batch 8: docs/product.md, "Memory kept for the
    next card"). A process-wide setting, asked for by the product's pipeline
    (`Pipeline.from_bundle`). Returns whether it took effect: False off glibc (macOS,
    Windows, musl), where nothing changes."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    value = ctypes.c_int(min(limit, 2**31 - 1))
    return bool(mallopt(_M_MMAP_THRESHOLD, value)) and bool(mallopt(_M_TRIM_THRESHOLD, value))
