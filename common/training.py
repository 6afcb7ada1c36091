"""The one training loop, shared by the keypoint, parsing/DensePose and ADGAN tasks.

A task (`TrainingTask`) builds its modules, optimisers and dataset and does one optimisation
step; this loop does everything around it, the same way for all of them:

- device choice, bf16 autocast on CUDA and bf16 CPUs (`ctx.autocast()`), DDP when launched by
  torchrun (`ctx.wrap(module)`; NCCL on GPUs, gloo on CPU);
- a data stream that is a pure function of (seed, position): each sample gets its own seed,
  so augmentation does not depend on worker processes, and resuming at step k continues the
  exact stream;
- a checkpoint every `checkpoint_every` steps (atomic folders, see `common.checkpoint`) and
  at the end, with optimisers and every RNG state: `--resume` continues bit for bit;
- SIGTERM (a cluster pre-empting the job) saves a checkpoint and returns normally;
- a non-finite loss stops the run at once, naming the loss, the step and the checkpoint;
- stats by name to `stats.jsonl` and TensorBoard, sample grids to `samples/`, a tqdm bar.
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing
import os
import random
import re
import shutil
import signal
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm import tqdm

from common.checkpoint import (
    LATEST,
    CheckpointError,
    find_checkpoint,
    load_training_state,
    load_weights,
    read_config,
    save_checkpoint,
    unwrap,
)
from common.fileio import write_text
from common.hardware import cpu_has_bf16_dot, cpu_has_bf16_matmul
from common.image_io import save_image


@dataclass
class TrainConfig:
    """The loop's own settings (a task's optimiser settings live in the task config)."""

    seed: int = 0
    steps: int = 1000  # optimisation steps in total
    batch_size: int = 16  # per process
    num_workers: int = 2
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # bf16 autocast on CUDA and on CPUs with bf16 units (AMX tiles, AVX-512 BF16); fp32 elsewhere
    amp: bool = True
    channels_last: bool = True  # on CUDA, and on a CPU with AMX tiles under bf16 autocast
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    log_every: int = 20
    sample_every: int = 500  # 0 = never
    eval_every: int = 0  # 0 = at the end only
    max_minutes: float = 0.0  # wall-clock budget: checkpoint and stop when spent (0 = none)
    # Weights to start from (a run or checkpoint folder of the same task): every module of
    # the same name loads strictly, optimisers and the step start afresh. For a second stage
    # of other settings (a larger image size for a fully convolutional generator).
    init: str = ""

    def __post_init__(self) -> None:
        for key in ("steps", "batch_size", "checkpoint_every", "log_every"):
            if getattr(self, key) < 1:
                raise ValueError(f"train.{key} must be at least 1, got {getattr(self, key)}")
        for key in ("sample_every", "eval_every", "num_workers", "max_minutes"):
            if getattr(self, key) < 0:
                raise ValueError(f"train.{key} must not be negative, got {getattr(self, key)}")


@dataclass
class OptimConfig:
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    min_lr_fraction: float = 0.02  # cosine decay down to lr * this


def warmup_cosine(optim: OptimConfig, total_steps: int):
    """LambdaLR factor: linear warm-up, then cosine decay to lr * min_lr_fraction."""

    def factor(step: int) -> float:
        if step < optim.warmup_steps:
            return (step + 1) / optim.warmup_steps
        progress = (step - optim.warmup_steps) / max(1, total_steps - optim.warmup_steps)
        cosine = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
        return optim.min_lr_fraction + (1 - optim.min_lr_fraction) * cosine

    return factor


def adamw_with_schedule(model: nn.Module, optim: OptimConfig, total_steps: int):
    """AdamW (no weight decay on norms and biases) and its warm-up + cosine schedule."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": optim.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=optim.lr,
    )
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(optim, total_steps))


class TrainingError(RuntimeError):
    """A run that cannot go on (a NaN loss, a checkpoint that does not fit)."""


class SampleKey(tuple):
    """(index, seed): which item, and the seed of its augmentation."""

    @property
    def index(self) -> int:
        return self[0]

    @property
    def seed(self) -> int:
        return self[1]


class StreamSampler(Sampler):
    """An endless, resumable stream of SampleKeys for one rank.

    Epoch e is a permutation of the dataset drawn from (seed, e), dealt round-robin to the
    ranks; position p of a rank's stream is a pure function of (seed, rank, p)."""

    def __init__(self, size: int, seed: int, rank: int = 0, world: int = 1, start: int = 0):
        if size < world:
            raise ValueError(f"dataset of {size} items is smaller than {world} processes")
        self.size, self.seed, self.rank, self.world, self.start = size, seed, rank, world, start
        self.per_rank = size // world

    def __iter__(self) -> Iterator[SampleKey]:
        position = self.start
        while True:
            epoch, offset = divmod(position, self.per_rank)
            order = np.random.default_rng([self.seed, epoch]).permutation(self.size)
            mine = order[self.rank :: self.world][: self.per_rank]
            for i in range(offset, self.per_rank):
                item_seed = int(
                    np.random.default_rng([self.seed, epoch, int(mine[i])]).integers(2**31)
                )
                yield SampleKey((int(mine[i]), item_seed))
            position = (epoch + 1) * self.per_rank

    def __len__(self) -> int:  # endless; DataLoader needs a number only for its own checks
        return 2**31


@dataclass
class RunContext:
    """What a task needs to know about the run it is in."""

    device: torch.device
    rank: int
    world: int
    local_rank: int
    amp_dtype: torch.dtype | None
    channels_last: bool
    run_dir: Path
    step: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def wrap(self, module: nn.Module) -> nn.Module:
        """Move to the device (channels_last if so set) and wrap in DDP when distributed."""
        module = module.to(self.device)
        if self.channels_last:
            module = module.to(memory_format=torch.channels_last)
        if self.distributed:
            ids = [self.local_rank] if self.device.type == "cuda" else None
            module = nn.parallel.DistributedDataParallel(module, device_ids=ids)
        return module

    def to_device(self, batch: Any) -> Any:
        if isinstance(batch, torch.Tensor):
            batch = batch.to(self.device, non_blocking=True)
            if self.channels_last and batch.ndim == 4 and batch.is_floating_point():
                batch = batch.contiguous(memory_format=torch.channels_last)
            return batch
        if isinstance(batch, dict):
            return {k: self.to_device(v) for k, v in batch.items()}
        if isinstance(batch, (list, tuple)):
            return type(batch)(self.to_device(v) for v in batch)
        return batch


class TrainingTask(ABC):
    """A model package's side of training."""

    name: str = "task"

    @abstractmethod
    def setup(self, ctx: RunContext) -> None:
        """Build modules (wrapped with `ctx.wrap`), optimisers and the dataset."""

    @abstractmethod
    def dataset(self) -> Dataset:
        """Training items; `__getitem__` receives a SampleKey (index, augmentation seed)."""

    @abstractmethod
    def train_step(self, batch: Any, ctx: RunContext) -> dict[str, torch.Tensor]:
        """One optimisation step (forward under `ctx.autocast()`, backward, optimiser step);
        returns the losses and other stats by name."""

    @abstractmethod
    def modules(self) -> dict[str, nn.Module]:
        """The modules a checkpoint holds, by name (wrapped or not)."""

    @abstractmethod
    def optimizers(self) -> dict[str, Any]:
        """Optimisers and schedulers (anything with state_dict/load_state_dict), by name."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """JSON-ready description of the modules: {name: {"class": ..., "config": ...}}."""

    def evaluate(self, ctx: RunContext) -> dict[str, float]:
        """Metrics by name (run on the main process); empty when the task has none."""
        return {}

    def sample(self, ctx: RunContext) -> np.ndarray | None:
        """A fixed-input uint8 RGB grid showing what the model does now."""
        return None

    def check(self) -> None:
        """Validate inputs (data paths, ...) before anything heavy; raise ValueError."""
        return None


def rng_state(device: torch.device) -> dict[str, Any]:
    # The legacy global NumPy generator is saved too: library code may draw from it.
    np_state = np.random.get_state()  # noqa: NPY002
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": np_state[2],
            "has_gauss": np_state[3],
            "gauss": np_state[4],
        },
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_as_tuple(state["python"]))
    n = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"])
    )
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _as_tuple(value: Any) -> Any:
    return tuple(_as_tuple(v) for v in value) if isinstance(value, (list, tuple)) else value


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002
    torch.manual_seed(seed)


def make_context(cfg: TrainConfig, run_dir: Path) -> RunContext:
    """Device and process group from the config and torchrun's environment."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    want_cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise TrainingError("device: cuda was asked for, but no GPU is visible")
    if want_cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if want_cuda else "gloo")
    matrix_units = device.type == "cuda" or cpu_has_bf16_matmul()
    amp = torch.bfloat16 if (cfg.amp and (matrix_units or cpu_has_bf16_dot())) else None
    return RunContext(
        device=device,
        rank=rank,
        world=world,
        local_rank=local_rank,
        amp_dtype=amp,
        # channels_last pays with matrix units; with AVX-512 BF16 alone it costs 5-15%
        channels_last=cfg.channels_last and amp is not None and matrix_units,
        run_dir=run_dir,
    )


def new_run_dir(root: str | os.PathLike[str], task: str, label: str) -> Path:
    """runs/<task>/<NNNNN>-<label>, numbered after the highest existing run."""
    base = Path(root) / task
    base.mkdir(parents=True, exist_ok=True)
    numbers = [int(m.group(1)) for p in base.iterdir() if (m := re.match(r"(\d{5})-", p.name))]
    run = base / f"{max(numbers, default=-1) + 1:05d}-{label}"
    run.mkdir()
    return run


class _StopFlag:
    """Set by SIGTERM/SIGINT; the loop checkpoints and returns at the next step.

    A scheduler, `kill -- -PGID`, pkill or Ctrl-C signals the DataLoader workers too, and
    torch's worker handler exits on a SIGTERM its parent did not send: the trainer then
    crashes on the dead worker before it can checkpoint. So workers (`worker_init`) ignore
    SIGINT, and SIGTERM until the loop is over; after that a SIGTERM ends them, as the
    loader's shutdown and multiprocessing's exit expect.
    """

    def __init__(self) -> None:
        self.raised: str | None = None
        self._previous: dict[int, Any] = {}
        self._loop_over = multiprocessing.get_context().Event()

    def worker_init(self, worker_id: int) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, self._worker_sigterm)

    def _worker_sigterm(self, signum: int, frame: Any) -> None:
        if self._loop_over.is_set():
            os._exit(0)

    def __enter__(self) -> _StopFlag:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError):  # not the main thread: no handlers
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.raised = signal.Signals(signum).name

    def __exit__(self, *exc: object) -> None:
        self._loop_over.set()
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class Trainer:
    """Runs a TrainingTask: see the module docstring."""

    def __init__(
        self, task: TrainingTask, cfg: TrainConfig, run_dir: Path, full_config: dict[str, Any]
    ) -> None:
        self.task, self.cfg, self.run_dir, self.full_config = task, cfg, run_dir, full_config
        self._last_metrics: dict[str, float] = {}

    # -- checkpoints ----------------------------------------------------------------

    def _checkpoint(self, ctx: RunContext, step: int, sampler_position: int) -> Path | None:
        rng = [rng_state(ctx.device)]
        if ctx.distributed:  # every rank's generators, so dropout etc. resume exactly
            rng = [None] * ctx.world
            dist.all_gather_object(rng, rng_state(ctx.device))
        folder = None
        if ctx.is_main:
            state = {
                "step": step,
                "sampler_position": sampler_position,
                "world": ctx.world,
                "optimizers": {k: v.state_dict() for k, v in self.task.optimizers().items()},
                "rng": rng,
            }
            config = {
                "task": self.task.name,
                "step": step,
                "modules": self.task.describe(),
                "config": self.full_config,
            }
            name = f"step-{step:08d}"
            folder = save_checkpoint(
                self.run_dir / "checkpoints" / name, self.task.modules(), config, state=state
            )
            write_text(self.run_dir / "checkpoints" / LATEST, name + "\n")
            self._prune()
        if ctx.distributed:
            dist.barrier()
        return folder

    def _prune(self) -> None:
        folders = sorted((self.run_dir / "checkpoints").glob("step-*"))
        for old in folders[: max(0, len(folders) - self.cfg.keep_checkpoints)]:
            shutil.rmtree(old)

    def _init(self, checkpoint: Path) -> None:
        """`train.init`: the weights of another run of the same task, nothing else."""
        config = read_config(checkpoint)
        if config.get("task") != self.task.name:
            raise CheckpointError(
                f"train.init {checkpoint}: a {config.get('task')!r} checkpoint, "
                f"not {self.task.name!r}"
            )
        for name, module in self.task.modules().items():
            load_weights(checkpoint / f"{name}.safetensors", module)

    def _resume(self, ctx: RunContext, checkpoint: Path) -> tuple[int, int]:
        config = read_config(checkpoint)
        if config.get("task") != self.task.name:
            raise CheckpointError(
                f"{checkpoint}: a {config.get('task')!r} checkpoint, not {self.task.name!r}"
            )
        for name, module in self.task.modules().items():
            load_weights(checkpoint / f"{name}.safetensors", module)
        state = load_training_state(checkpoint)
        if state.get("world", 1) != ctx.world:
            raise CheckpointError(
                f"{checkpoint}: saved with {state.get('world')} processes; "
                f"resume with the same number ({ctx.world} now)"
            )
        for name, opt in self.task.optimizers().items():
            opt.load_state_dict(state["optimizers"][name])
        set_rng_state(state["rng"][ctx.rank], ctx.device)
        return int(state["step"]), int(state["sampler_position"])

    # -- logging --------------------------------------------------------------------

    def _log(self, writer: Any, step: int, stats: dict[str, float], prefix: str = "") -> None:
        record = {"step": step, **{f"{prefix}{k}": v for k, v in stats.items()}}
        with open(self.run_dir / "stats.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        if writer is not None:
            for k, v in stats.items():
                writer.add_scalar(f"{prefix}{k}", v, step)

    def _sample(self, ctx: RunContext, writer: Any, step: int) -> None:
        grid = self.task.sample(ctx)
        if grid is None:
            return
        save_image(self.run_dir / "samples" / f"step-{step:08d}.png", grid)
        if writer is not None:
            writer.add_image("samples", grid, step, dataformats="HWC")

    def _evaluate(self, ctx: RunContext, writer: Any, step: int, checkpoint: Path | None):
        metrics = self.task.evaluate(ctx) if ctx.is_main else {}
        self._last_metrics = metrics
        if metrics:
            self._log(writer, step, metrics, prefix="eval/")
            record = {
                "step": step,
                "checkpoint": str(checkpoint) if checkpoint else None,
                **metrics,
            }
            with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
        return metrics

    # -- the loop -------------------------------------------------------------------

    def run(self, resume: Path | None = None) -> dict[str, Any]:
        cfg = self.cfg
        ctx = make_context(cfg, self.run_dir)
        seed_everything(cfg.seed)  # identical initial weights on every rank
        self.task.setup(ctx)
        step, position = 0, 0
        if resume is not None:
            step, position = self._resume(ctx, find_checkpoint(resume))
        else:
            if cfg.init:
                self._init(find_checkpoint(cfg.init))
            seed_everything(cfg.seed + 1000 * ctx.rank)
        dataset = self.task.dataset()
        sampler = StreamSampler(len(dataset), cfg.seed, ctx.rank, ctx.world, start=position)
        stop = _StopFlag()
        # Its own generator: a DataLoader iterator draws a base seed, which must not come
        # from (and shift) the global RNG that dropout and the task use.
        loader = DataLoader(
            dataset,
            batch_size=cfg.batch_size,
            sampler=sampler,
            num_workers=cfg.num_workers,
            pin_memory=ctx.device.type == "cuda",
            drop_last=True,
            persistent_workers=cfg.num_workers > 0,
            worker_init_fn=stop.worker_init,
            generator=torch.Generator().manual_seed(cfg.seed),
        )
        writer = None
        if ctx.is_main:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(os.fspath(self.run_dir / "tensorboard"))
        started = time.monotonic()
        totals: dict[str, float] = {}
        count = 0
        checkpoint = None
        stopped = None
        with (
            stop,
            tqdm(
                total=cfg.steps,
                initial=step,
                disable=not ctx.is_main,
                desc=self.task.name,
                dynamic_ncols=True,
            ) as bar,
        ):
            batches = iter(loader)
            while step < cfg.steps:
                batch = ctx.to_device(next(batches))
                ctx.step = step
                stats = self.task.train_step(batch, ctx)
                values = {
                    k: float(v.detach()) if isinstance(v, torch.Tensor) else float(v)
                    for k, v in stats.items()
                }
                bad = [k for k, v in values.items() if not math.isfinite(v)]
                flag = torch.tensor([float(bool(bad))], device=ctx.device)
                if ctx.distributed:
                    dist.all_reduce(flag)
                if flag.item() > 0:
                    last = (
                        find_checkpoint(self.run_dir)
                        if (self.run_dir / "checkpoints" / LATEST).is_file()
                        else None
                    )
                    raise TrainingError(
                        f"step {step + 1}: non-finite loss "
                        f"{', '.join(f'{k}={values[k]}' for k in bad) or 'on another rank'}; "
                        f"the last good checkpoint is {last or 'none (none was written)'}"
                    )
                step += 1
                position += cfg.batch_size
                for k, v in values.items():
                    totals[k] = totals.get(k, 0.0) + v
                count += 1
                bar.update(1)
                if step % cfg.log_every == 0 or step == cfg.steps:
                    means = {k: v / count for k, v in totals.items()}
                    if ctx.is_main:
                        self._log(writer, step, means)
                        bar.set_postfix({k: f"{v:.4g}" for k, v in list(means.items())[:4]})
                    totals, count = {}, 0
                if cfg.sample_every and step % cfg.sample_every == 0 and ctx.is_main:
                    self._sample(ctx, writer, step)
                out_of_time = cfg.max_minutes > 0 and (
                    time.monotonic() - started > cfg.max_minutes * 60
                )
                flags = torch.tensor(
                    [float(stop.raised is not None), float(out_of_time)], device=ctx.device
                )
                if ctx.distributed:
                    dist.all_reduce(flags)
                if flags.sum().item() > 0:
                    stopped = stop.raised or "time budget"
                    break
                if step % cfg.checkpoint_every == 0:
                    checkpoint = self._checkpoint(ctx, step, position)
                if cfg.eval_every and step % cfg.eval_every == 0:
                    self._evaluate(ctx, writer, step, checkpoint)
        checkpoint = self._checkpoint(ctx, step, position)
        evaluated = cfg.eval_every and step % cfg.eval_every == 0 and not stopped
        if stopped == "SIGTERM" or evaluated:  # evaluated just now, at this very step
            metrics = self._last_metrics if evaluated else {}
        else:
            metrics = self._evaluate(ctx, writer, step, checkpoint)
        if ctx.is_main:
            self._sample(ctx, writer, step)
            if writer is not None:
                writer.close()
        if ctx.distributed:
            dist.barrier()
        return {
            "step": step,
            "checkpoint": checkpoint,
            "metrics": metrics,
            "stopped": stopped,
            "minutes": (time.monotonic() - started) / 60,
        }


__all__ = [
    "RunContext",
    "SampleKey",
    "StreamSampler",
    "TrainConfig",
    "Trainer",
    "TrainingError",
    "TrainingTask",
    "new_run_dir",
    "unwrap",
]
