"""Weight-only int8 storage: a bundle a quarter the size of fp32, computed in float.

Each weight matrix or conv kernel is stored as int8 with one fp16 scale per output channel
(symmetric, scale = max|w| / 127), the usual weight-only scheme: the error per weight is at
most half a step of its own channel, well under what changes a network's output visibly.
Vectors (biases, norms) and integer buffers stay as they are (fp16 for floats), and so does
anything too small to matter. Loading dequantizes back to float before the shapes are
checked, so a quantized file loads into the same module as a float one.
"""

from __future__ import annotations

import torch

SCALE_SUFFIX = ".int8_scale"
MIN_ELEMENTS = 1024  # smaller tensors are kept in fp16: no size to win, only error to add


def quantize_tensor(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """float [out, ...] -> (int8 [out, ...], fp16 scale [out, 1, ...])."""
    w = weight.detach().float()
    dims = tuple(range(1, w.dim()))
    scale = w.abs().amax(dim=dims, keepdim=True).clamp_min(1e-12) / 127.0
    scale = scale.half().float()  # the scale as it will be stored
    q = torch.round(w / scale).clamp(-127, 127).to(torch.int8)
    return q, scale.half()


def quantize_state_dict(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, value in tensors.items():
        if value.is_floating_point() and value.dim() >= 2 and value.numel() >= MIN_ELEMENTS:
            out[key], out[key + SCALE_SUFFIX] = quantize_tensor(value)
        elif value.is_floating_point():
            out[key] = value.half()
        else:
            out[key] = value
    return out


def is_quantized(tensors: dict[str, torch.Tensor]) -> bool:
    return any(key.endswith(SCALE_SUFFIX) for key in tensors)


def dequantize_state_dict(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Back to float32; a stored int8 tensor without its scale (or the reverse) is left for
    the caller's key check to report."""
    out: dict[str, torch.Tensor] = {}
    for key, value in tensors.items():
        if key.endswith(SCALE_SUFFIX) and key[: -len(SCALE_SUFFIX)] in tensors:
            continue
        scale = tensors.get(key + SCALE_SUFFIX)
        if scale is not None and value.dtype == torch.int8:
            out[key] = value.float() * scale.float()
        else:
            out[key] = value
    return out
