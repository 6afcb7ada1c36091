"""A tiny task for testing the shared training loop (also run under torchrun)."""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from common.training import RunContext, SampleKey, TrainingTask


class ToyData(Dataset):
    def __init__(self, size: int = 64) -> None:
        rng = np.random.default_rng(0)
        self.x = rng.normal(size=(size, 4)).astype(np.float32)
        self.y = (self.x @ np.array([1.0, -2.0, 0.5, 3.0], np.float32))[:, None]

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, key: SampleKey) -> dict[str, torch.Tensor]:
        noise = np.random.default_rng(key.seed).normal(scale=0.01, size=4).astype(np.float32)
        return {
            "x": torch.from_numpy(self.x[key.index] + noise),
            "y": torch.from_numpy(self.y[key.index]),
        }


def _send_sigterm(to: str) -> None:
    """As a scheduler or pkill would: to the trainer, to its process group, or to every
    process. The sender is `kill`, not the trainer: torch's workers obey their parent only."""
    import multiprocessing
    import signal
    import subprocess

    if to == "self":
        os.kill(os.getpid(), signal.SIGTERM)
    elif to == "group":
        subprocess.run(["kill", "-TERM", "--", f"-{os.getpgrp()}"])  # kills kill too
    else:  # the DataLoader workers are the trainer's multiprocessing children
        pids = [os.getpid()] + [c.pid for c in multiprocessing.active_children()]
        subprocess.run(["kill", "-TERM", *map(str, pids)], check=True)


class ToyTask(TrainingTask):
    name = "toy"

    def __init__(
        self,
        hidden: int = 16,
        nan_at: int | None = None,
        sigterm_at: int | None = None,
        sigterm_to: str = "self",  # "group": the whole process group; "each": every process
    ):
        self.hidden, self.nan_at, self.sigterm_at = hidden, nan_at, sigterm_at
        self.sigterm_to = sigterm_to

    def setup(self, ctx: RunContext) -> None:
        net = nn.Sequential(
            nn.Linear(4, self.hidden), nn.ReLU(), nn.Dropout(0.1), nn.Linear(self.hidden, 1)
        )
        self.model = ctx.wrap(net)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=0.02)
        self.sched = torch.optim.lr_scheduler.StepLR(self.opt, step_size=10, gamma=0.9)

    def dataset(self) -> Dataset:
        return ToyData()

    def train_step(self, batch, ctx: RunContext) -> dict[str, torch.Tensor]:
        with ctx.autocast():
            loss = nn.functional.mse_loss(self.model(batch["x"]), batch["y"])
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.sched.step()
        if self.nan_at is not None and ctx.step + 1 == self.nan_at:
            loss = loss * float("nan")
        if self.sigterm_at is not None and ctx.step + 1 == self.sigterm_at:
            _send_sigterm(self.sigterm_to)
        return {"loss": loss.detach()}

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model}

    def optimizers(self) -> dict:
        return {"adam": self.opt, "schedule": self.sched}

    def describe(self) -> dict:
        return {"model": {"class": "ToyMLP", "config": {"hidden": self.hidden}}}

    def evaluate(self, ctx: RunContext) -> dict[str, float]:
        data = ToyData()
        with torch.no_grad():
            self.model.eval()
            pred = self.model(torch.from_numpy(data.x).to(ctx.device))
            self.model.train()
        return {"mse": float(((pred.cpu().numpy() - data.y) ** 2).mean())}


if __name__ == "__main__":  # torchrun --nproc_per_node 2 tests/toy_task.py RUN_DIR
    import sys
    from pathlib import Path

    import torch.distributed as dist

    from common.checkpoint import unwrap
    from common.training import TrainConfig, Trainer

    cfg = TrainConfig(
        steps=12, batch_size=4, num_workers=0, checkpoint_every=6, log_every=3, sample_every=0
    )
    task = ToyTask()
    result = Trainer(task, cfg, Path(sys.argv[1]), {"task": "toy"}).run()
    weights = torch.cat([p.detach().flatten() for p in unwrap(task.model).parameters()])
    gathered = [torch.zeros_like(weights) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, weights)
    assert all(torch.equal(gathered[0], g) for g in gathered), "ranks diverged"
    print(f"rank {dist.get_rank()} done at step {result['step']}", flush=True)
    dist.barrier()
    dist.destroy_process_group()
    # Under load gloo's teardown at interpreter exit has aborted a finished rank once
    # ("terminate called without an active exception", CI, 1 run in ~10): not ours to test.
    os._exit(0)
