"""Training entry point: `python train.py --config configs/X.yaml [key=value ...]`.

Thin by design: it reads the config's `task`, builds that task's typed config (an unknown
key is an error that lists the valid ones), checks the inputs, and hands over to the
shared loop (`common.training.Trainer`). Runs land in `runs/<task>/<NNNNN>-<config name>/`
with the resolved config beside the checkpoints; `--resume RUN` continues one exactly, with
the config stored in its checkpoint (only `train.*` keys may change on resume, e.g. more
steps; a `--config` that differs elsewhere is refused rather than silently mixed in).
Multi-GPU and multi-node: `torchrun --nproc_per_node N train.py --config ...`.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import os
import sys
from pathlib import Path

import yaml

from common.checkpoint import CheckpointError, find_checkpoint, read_config
from common.config import ConfigError, apply_overrides, from_dict, load_yaml, to_dict
from common.fileio import write_text
from common.training import Trainer, TrainingError, new_run_dir

# Task name -> "module:TaskClass"; the class has a `Config` dataclass.
TASKS: dict[str, str] = {
    "keypoints": "keypoints.task:KeypointsTask",
    "parsing": "parsing.task:DenseTask",
    "densepose": "parsing.task:DenseTask",
    "adgan": "adgan.task:AdganTask",
}
# train.* keys that resuming may not change either: the sampler's order depends on them.
FIXED_ON_RESUME = ("train.batch_size", "train.seed")


def load_task(config_path: Path | None, overrides: list[str], stored: dict | None = None):
    """The task and its typed config, from a YAML file, or from a checkpoint's stored config
    when resuming without one."""
    if config_path is None:
        data = apply_overrides(copy.deepcopy(stored or {}), overrides)
        config_path = Path("the checkpoint's config")
    else:
        data = apply_overrides(load_yaml(config_path), overrides)
    name = data.get("task")
    if name not in TASKS:
        raise ConfigError(
            f"{config_path}: 'task' must be one of {', '.join(sorted(TASKS))}, got {name!r}"
        )
    module_name, class_name = TASKS[name].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    try:
        config = from_dict(cls.Config, data)
    except ConfigError as exc:
        raise ConfigError(f"{config_path}: {exc}") from None
    return cls(config), config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train a model of the pipeline.")
    parser.add_argument("--config", type=Path, help="configs/<task>-*.yaml")
    parser.add_argument("--resume", type=Path, help="a run folder or checkpoint to continue")
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="where runs go")
    parser.add_argument(
        "--dry-run", action="store_true", help="validate the config and the data, then exit"
    )
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    if args.config is None and args.resume is None:
        parser.error("--config is required (or --resume RUN)")
    try:
        checkpoint = find_checkpoint(args.resume) if args.resume is not None else None
        if checkpoint is None:
            task, config = load_task(args.config, args.overrides)
        else:
            stored = read_config(checkpoint)["config"]
            task, config = load_task(args.config, args.overrides, stored=stored)
            _check_resume_changes(to_dict(load_task(None, [], stored)[1]), to_dict(config))
        task.check()
    except (ConfigError, ValueError, FileNotFoundError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    resolved = yaml.safe_dump(to_dict(config), sort_keys=False)
    if args.dry_run:
        print(resolved, end="")
        print(f"ok: {args.config} is a valid {task.name} config")
        return 0
    main_process = int(os.environ.get("RANK", "0")) == 0
    try:
        if checkpoint is not None:
            run_dir = checkpoint.parent.parent
        else:
            run_dir = _run_dir(args.runs, task.name, args.config.stem, config.train)
        if main_process:
            write_text(run_dir / "config.yaml", resolved)
        result = Trainer(task, config.train, run_dir, to_dict(config)).run(resume=checkpoint)
    except (CheckpointError, TrainingError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        _leave_process_group(finished=False)
        return 1
    _leave_process_group(finished=True)
    if main_process:
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in result["metrics"].items())
        print(
            f"{task.name}: step {result['step']} in {result['minutes']:.1f} min"
            f"{' (stopped: ' + result['stopped'] + ')' if result['stopped'] else ''}; "
            f"checkpoint {result['checkpoint']}; {metrics or 'no metrics'}"
        )
    return 0


def _check_resume_changes(stored: dict, wanted: dict) -> None:
    """Resuming may change how long and how the loop runs (`train.*`), not what it trains."""
    old, new = _flat(stored), _flat(wanted)
    changed = sorted(
        key
        for key in old.keys() | new.keys()
        if (not key.startswith("train.") or key in FIXED_ON_RESUME) and old.get(key) != new.get(key)
    )
    if changed:
        raise ConfigError(
            f"resuming cannot change {', '.join(changed)} (the run was trained with its "
            "stored config); leave out --config, or start a new run"
        )


def _flat(data: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = list(value) if isinstance(value, tuple) else value
    return out


def _leave_process_group(finished: bool) -> None:
    """Under torchrun: wait for the other ranks after a finished run, then close the group,
    so that no rank's exit tears down a group that another one still uses."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()


def _run_dir(root: Path, task: str, label: str, train_config) -> Path:
    """A new numbered run folder; under torchrun, rank 0 makes it and tells the others."""
    import torch.distributed as dist

    from common.training import make_context

    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return new_run_dir(root, task, label)
    ctx = make_context(train_config, root)  # joins the process group the run will use
    holder = [str(new_run_dir(root, task, label)) if ctx.is_main else ""]
    dist.broadcast_object_list(holder, src=0)
    return Path(holder[0])


if __name__ == "__main__":
    sys.exit(main())
