"""The shared training loop: learning, exact resume, signals, NaN, bad checkpoints, DDP."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

import common.training
from common.checkpoint import (
    CheckpointError,
    find_checkpoint,
    load_weights,
    read_config,
    save_checkpoint,
    save_weights,
    unwrap,
)
from common.training import (
    StreamSampler,
    TrainConfig,
    Trainer,
    TrainingError,
    make_context,
)
from tests.conftest import ROOT
from tests.toy_task import ToyTask


def _cfg(**kw):
    base = dict(
        steps=30,
        batch_size=8,
        num_workers=0,
        checkpoint_every=10,
        log_every=5,
        sample_every=0,
        device="cpu",
    )
    return TrainConfig(**{**base, **kw})


def _weights(task):
    return torch.cat([p.detach().flatten() for p in unwrap(task.model).parameters()])


def test_loss_falls_and_files_are_written(tmp_path):
    task = ToyTask()
    result = Trainer(task, _cfg(steps=60), tmp_path, {"task": "toy"}).run()
    lines = (tmp_path / "stats.jsonl").read_text().splitlines()
    losses = [float(json.loads(line)["loss"]) for line in lines if '"loss"' in line]
    assert losses[-1] < 0.3 * losses[0]
    assert result["metrics"]["mse"] < losses[0]
    checkpoint = find_checkpoint(tmp_path)
    assert checkpoint.name == "step-00000060"
    assert read_config(checkpoint)["modules"]["model"]["config"] == {"hidden": 16}
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step-*")) == [
        "step-00000040",
        "step-00000050",
        "step-00000060",
    ]  # keeps the last 3
    assert any((tmp_path / "tensorboard").iterdir())


def test_init_starts_from_another_runs_weights_only(tmp_path):
    first = ToyTask()
    Trainer(first, _cfg(steps=20), tmp_path / "a", {"task": "toy"}).run()
    second = ToyTask()
    result = Trainer(second, _cfg(steps=1, init=str(tmp_path / "a")), tmp_path / "b", {}).run()
    assert result["step"] == 1  # a new run: its own step count and optimiser
    assert second.sched.last_epoch == 1
    fresh = ToyTask()
    Trainer(fresh, _cfg(steps=1), tmp_path / "c", {}).run()
    after_one = (_weights(second) - _weights(first)).abs().max()
    assert after_one < (_weights(fresh) - _weights(first)).abs().max()  # started from a's
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        Trainer(ToyTask(), _cfg(init=str(tmp_path / "none")), tmp_path / "d", {}).run()


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_is_bit_for_bit(tmp_path, workers):
    straight = ToyTask()
    Trainer(straight, _cfg(num_workers=workers), tmp_path / "a", {}).run()
    first = ToyTask()
    Trainer(first, _cfg(steps=10, num_workers=workers), tmp_path / "b", {}).run()
    second = ToyTask()
    Trainer(second, _cfg(num_workers=workers), tmp_path / "b", {}).run(resume=tmp_path / "b")
    assert torch.equal(_weights(straight), _weights(second))
    assert second.sched.last_epoch == straight.sched.last_epoch == 30


@pytest.mark.parametrize(
    ("tiles", "dot", "bf16_units"),
    [(True, True, True), (False, True, True), (False, False, False)],
)
def test_cpu_runs_bf16_only_where_the_hardware_has_it(
    tmp_path, monkeypatch, tiles, dot, bf16_units
):
    monkeypatch.setattr(common.training, "cpu_has_bf16_matmul", lambda: tiles)
    monkeypatch.setattr(common.training, "cpu_has_bf16_dot", lambda: dot)
    ctx = make_context(_cfg(), tmp_path)
    assert ctx.amp_dtype == (torch.bfloat16 if bf16_units else None)
    assert ctx.channels_last == tiles  # channels_last pays only with matrix tiles
    off = make_context(_cfg(amp=False), tmp_path)
    assert off.amp_dtype is None and not off.channels_last
    result = Trainer(ToyTask(), _cfg(steps=60), tmp_path / "run", {}).run()
    lines = (tmp_path / "run" / "stats.jsonl").read_text().splitlines()
    first = json.loads(next(line for line in lines if '"loss"' in line))["loss"]
    assert result["metrics"]["mse"] < 0.3 * float(first)  # learns under either precision


def test_nan_stops_the_run_naming_the_loss(tmp_path):
    with pytest.raises(TrainingError, match=r"step 13: non-finite loss loss=nan.*step-00000010"):
        Trainer(ToyTask(nan_at=13), _cfg(), tmp_path, {}).run()


def test_sigterm_saves_and_returns(tmp_path):
    task = ToyTask(sigterm_at=7)
    result = Trainer(task, _cfg(), tmp_path, {}).run()
    assert result["stopped"] == "SIGTERM" and result["step"] == 7
    assert find_checkpoint(tmp_path).name == "step-00000007"
    again = ToyTask()
    assert Trainer(again, _cfg(), tmp_path, {}).run(resume=tmp_path)["step"] == 30


def _run_toy_with_workers(run_dir, task_args: str) -> subprocess.CompletedProcess:
    """A toy run with two DataLoader workers in its own session (so that signalling its
    process group spares pytest)."""
    script = (
        "import sys; from pathlib import Path; sys.path[:0] = ['.', 'tests']\n"
        "from toy_task import ToyTask\n"
        "from common.training import TrainConfig, Trainer\n"
        "cfg = TrainConfig(steps=30, batch_size=4, num_workers=2, checkpoint_every=10,\n"
        "                  log_every=5, sample_every=0, eval_every=0)\n"
        f"result = Trainer(ToyTask({task_args}), cfg, Path(sys.argv[1]), {{}}).run()\n"
        "print('stopped', result['stopped'], result['step'])\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script, str(run_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,
    )


@pytest.mark.parametrize("to", ["group", "each"])
def test_sigterm_to_every_process_still_checkpoints(tmp_path, to):
    """A scheduler's SIGTERM reaches the DataLoader workers too; they must leave the stopping
    to the trainer instead of dying and crashing it before its checkpoint."""
    done = _run_toy_with_workers(tmp_path, f"sigterm_at=7, sigterm_to={to!r}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "stopped SIGTERM 7" in done.stdout
    assert find_checkpoint(tmp_path).name == "step-00000007"


def test_a_failing_run_with_workers_exits(tmp_path):
    """Workers that ignore SIGTERM during the loop must not keep a crashed trainer alive
    (multiprocessing's exit terminates them with SIGTERM)."""
    done = _run_toy_with_workers(tmp_path, "nan_at=5")
    assert done.returncode == 1 and "non-finite loss" in done.stderr


def test_time_budget_stops_with_a_checkpoint(tmp_path):
    result = Trainer(ToyTask(), _cfg(steps=10**6, max_minutes=0.002), tmp_path, {}).run()
    assert result["stopped"] == "time budget" and result["checkpoint"].is_dir()


def test_checkpoint_of_another_shape_is_refused(tmp_path):
    Trainer(ToyTask(hidden=16), _cfg(steps=10), tmp_path, {}).run()
    with pytest.raises(CheckpointError, match=r"shape: 0\.bias: file \(16,\) vs model \(8,\)"):
        Trainer(ToyTask(hidden=8), _cfg(), tmp_path, {}).run(resume=tmp_path)


def test_weights_round_trip_and_errors(tmp_path):
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    save_weights(tmp_path / "w.safetensors", net)
    other = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    load_weights(tmp_path / "w.safetensors", other)
    for a, b in zip(net.state_dict().values(), other.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(CheckpointError, match=r"missing: 2\.bias; 2\.weight"):
        load_weights(tmp_path / "w.safetensors", nn.Sequential(*net, nn.Conv2d(4, 4, 1)))
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointError, match="not a readable"):
        load_weights(tmp_path / "bad.safetensors", net)
    folder = save_checkpoint(tmp_path / "ck", {"net": net}, {"a": 1}, dtype=torch.float16)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "net.safetensors"]
    with pytest.raises(CheckpointError, match="release cannot resume"):
        from common.checkpoint import load_training_state

        load_training_state(folder)


def test_pickled_code_is_refused(tmp_path):
    folder = save_checkpoint(tmp_path / "ck", {}, {"task": "toy"}, state={"step": 1})

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"step": Evil()}, folder / "training_state.pt")
    from common.checkpoint import load_training_state

    with pytest.raises(CheckpointError, match="not a safe training state"):
        load_training_state(folder)


def test_stream_sampler_resumes_and_shards():
    full = [k for _, k in zip(range(50), StreamSampler(20, seed=3), strict=False)]
    tail = [k for _, k in zip(range(30), StreamSampler(20, seed=3, start=20), strict=False)]
    assert full[20:] == tail
    assert sorted(k.index for k in full[:20]) == list(range(20))  # an epoch is a permutation
    ranks = [
        [k.index for _, k in zip(range(10), StreamSampler(20, 3, r, 2), strict=False)]
        for r in (0, 1)
    ]
    assert not set(ranks[0]) & set(ranks[1])
    assert len({k.seed for k in full}) > 45  # augmentation seeds differ per item and epoch


@pytest.mark.slow
def test_ddp_two_cpu_processes_on_gloo(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            str(29500 + os.getpid() % 1000),
            str(ROOT / "tests" / "toy_task.py"),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "rank 0 done at step 12" in proc.stdout and "rank 1 done at step 12" in proc.stdout
    assert find_checkpoint(tmp_path).name == "step-00000012"
    np.testing.assert_equal(len(list((tmp_path / "checkpoints").glob("step-*"))), 2)
