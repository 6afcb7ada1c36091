"""Checkpoints and released weights: `.safetensors` tensors with a JSON config beside them.

A checkpoint is a folder:

    <name>.safetensors    one file per module (model, G, D, EMA, ...), saved unwrapped
    config.json           what built them: {"modules": {name: {"class", "config"}}, ...}
    training_state.pt     optimisers, schedulers, RNG, data position (training only)

Nothing is ever unpickled: weights are safetensors and the training state is loaded with
`torch.load(weights_only=True)`, so a checkpoint from a stranger cannot run code. A folder
is written under a temporary name and renamed into place, so a crash leaves no half-written
checkpoint. Loading compares every key and shape and names the file and tensors that differ.

Weight-only int8 storage (`save_weights(..., dtype=torch.int8)`), a bundle a quarter the
size of fp32, computed in float: each weight matrix or conv kernel is stored as int8 with
one fp16 scale per output channel (symmetric, scale = max|w| / 127), the usual weight-only
scheme: the error per weight is at most half a step of its own channel. Vectors (biases,
norms), integer buffers, anything too small to matter and tensors whose leading dimension is
1 stay as they are (fp16 for floats): with one row, "per output channel" is one scale for
the whole tensor, which in a layout whose channels are not first (TFLite's depthwise 1HWC,
a [1, ..., C] constant) would quantize every channel by the largest one's step. A module
that sets `int8_weights = False` (measured not to survive int8, e.g. a converted landmark
regressor whose pixel outputs move by many pixels) is stored in fp16 when int8 is asked.
Loading dequantizes back to float before the shapes are checked, so a quantized
file loads into the same module as a float one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from common.config import ConfigError
from common.fileio import atomic_path, write_json

CONFIG_FILE = "config.json"
STATE_FILE = "training_state.pt"
LATEST = "latest"  # a run's checkpoints/latest names its newest checkpoint folder
# The bundle that ships with the project: what the CLIs load when no checkpoint is named.
DEMO_BUNDLE = Path(__file__).resolve().parent.parent / "bundles" / "demo"


# -- weight-only int8 storage ------------------------------------------------------

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
        if (
            value.is_floating_point()
            and value.dim() >= 2
            and value.shape[0] > 1  # one row: one scale for everything (see the docstring)
            and value.numel() >= MIN_ELEMENTS
        ):
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


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and what is wrong."""


def unwrap(module: nn.Module) -> nn.Module:
    """The plain module inside DistributedDataParallel and/or torch.compile wrappers."""
    while True:
        if hasattr(module, "_orig_mod"):  # torch.compile
            module = module._orig_mod
        elif isinstance(module, nn.parallel.DistributedDataParallel):
            module = module.module
        else:
            return module


def save_weights(
    path: str | os.PathLike[str], module: nn.Module, *, dtype: torch.dtype | None = None
) -> None:
    """Write a module's state dict as safetensors, atomically. `dtype` casts the floats;
    torch.int8 stores weights as int8 with per-channel scales (see the module docstring),
    or fp16 for a module with `int8_weights = False`."""
    if dtype == torch.int8 and getattr(unwrap(module), "int8_weights", True) is False:
        dtype = torch.float16
    tensors = {}
    for key, value in unwrap(module).state_dict().items():
        value = value.detach().to("cpu")
        if dtype not in (None, torch.int8) and value.is_floating_point():
            value = value.to(dtype)
        tensors[key] = value.clone().contiguous()  # clone: safetensors refuses shared storage
    if dtype == torch.int8:
        tensors = quantize_state_dict(tensors)
    with atomic_path(path) as tmp:
        save_file(tensors, os.fspath(tmp))


def read_weights(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weights file")
    try:
        return load_file(os.fspath(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable .safetensors file ({exc})") from None


def check_state_dict(
    expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor], *, name: str
) -> None:
    """Raise CheckpointError listing missing keys, unexpected keys and shape mismatches."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    shapes = [
        f"{k}: file {tuple(found[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(expected) & set(found))
        if tuple(found[k].shape) != tuple(expected[k].shape)
    ]
    problems = []
    for title, items in (("missing", missing), ("unexpected", unexpected), ("shape", shapes)):
        if items:
            more = f" (+{len(items) - 5} more)" if len(items) > 5 else ""
            problems.append(f"{title}: {'; '.join(items[:5])}{more}")
    if problems:
        raise CheckpointError(f"{name} does not fit the model: " + " | ".join(problems))


def load_weights(path: str | os.PathLike[str], module: nn.Module) -> nn.Module:
    """Load safetensors weights into `module` after checking every key and shape."""
    target = unwrap(module)
    found = read_weights(path)
    if is_quantized(found):
        found = dequantize_state_dict(found)
    expected = target.state_dict()
    check_state_dict(expected, found, name=os.fspath(path))
    converted = {k: v.to(expected[k].dtype) for k, v in found.items()}
    target.load_state_dict(converted, strict=True)
    return module


def save_checkpoint(
    folder: str | os.PathLike[str],
    modules: dict[str, nn.Module],
    config: dict[str, Any],
    *,
    state: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write a checkpoint folder atomically; `config` is stored as config.json."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for name, module in modules.items():
            save_weights(tmp / f"{name}.safetensors", module, dtype=dtype)
        write_json(tmp / CONFIG_FILE, config)
        if state is not None:
            with atomic_path(tmp / STATE_FILE) as path:
                torch.save(state, path)
        os.chmod(tmp, 0o755)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def read_config(folder: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"{folder}: not a checkpoint folder (no {CONFIG_FILE})")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from None


def load_training_state(folder: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(folder) / STATE_FILE
    if not path.is_file():
        raise CheckpointError(f"{folder}: no {STATE_FILE}; a release cannot resume training")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle refuses anything that is not plain data
        raise CheckpointError(f"{path}: not a safe training state ({exc})") from None


def find_checkpoint(path: str | os.PathLike[str]) -> Path:
    """A checkpoint folder, or a run folder (its latest checkpoint)."""
    path = Path(path)
    if (path / CONFIG_FILE).is_file():
        return path
    pointer = path / "checkpoints" / LATEST
    if pointer.is_file():
        return path / "checkpoints" / pointer.read_text().strip()
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint or run folder")
    raise CheckpointError(f"{path}: neither a checkpoint nor a run folder with checkpoints")


def load_module(
    path: str | os.PathLike[str],
    name: str,
    builders: Mapping[str, Callable[[dict[str, Any]], nn.Module]],
    *,
    what: str,
) -> nn.Module:
    """The one strict way a network comes back from a run, checkpoint or bundle folder.

    `name` is the module's entry in config.json (`model`, `generator`, `keypoints`, ...),
    `builders` map the classes it may be to a function building it from its stored config
    (strict: `common.config.from_dict`, unknown keys refused). Every failure is a
    CheckpointError naming the folder or file and what is wrong.
    """
    folder = find_checkpoint(path)
    entry = read_config(folder).get("modules", {}).get(name)
    if not isinstance(entry, dict):
        raise CheckpointError(f"{folder}: not a {what} checkpoint (no {name!r} module in it)")
    kind = entry.get("class")
    if kind not in builders:
        raise CheckpointError(
            f"{folder}: not a {what} checkpoint (its {name} is {kind!r}; expected "
            f"{' or '.join(map(repr, builders))})"
        )
    try:
        module = builders[kind](entry.get("config", {}))
    except (ConfigError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{folder / CONFIG_FILE}: the {name} config: {exc}") from None
    load_weights(folder / f"{name}.safetensors", module)
    return module


def stored_module_name(path: str | os.PathLike[str], candidates: tuple[str, ...]) -> str:
    """The first of `candidates` that a run, checkpoint or bundle folder holds (a training
    run stores its network as `model`, a bundle as `keypoints` / `parser` / `generator`)."""
    folder = find_checkpoint(path)
    modules = read_config(folder).get("modules", {})
    return next((name for name in candidates if name in modules), candidates[0])
