"""What the machine can do fast, asked once in one place (training and inference agree).

torch is imported inside the probes, so a command line can offer the choices (`PRECISIONS`)
and check its arguments before the seconds torch takes to import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, get_args

if TYPE_CHECKING:
    import torch

Precision = Literal["auto", "fp32", "bf16"]
PRECISIONS: tuple[str, ...] = get_args(Precision)


def cpu_has_bf16_matmul() -> bool:
    """Whether this CPU multiplies bf16 in hardware (Intel AMX tiles). There bf16 runs our
    networks 2-3x faster than fp32 (the 256x176 generator on 2 cores: 0.85 s against 2.5 s; an
    ADGAN training step at 64x44: 0.85 s against 2.4 s); elsewhere bf16 is emulated and slower."""
    import torch

    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(probe and probe())


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
