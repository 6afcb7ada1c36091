"""Training entry point: `python train.py --config configs/X.yaml [key=value ...]`.

Thin by design: it reads the config's `task` and hands over to that task's trainer. The
trainers (keypoints, parsing, densepose, adgan) land with their packages; until then this
says so and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common.config import ConfigError, apply_overrides, load_yaml

# Task name -> "module:function" of its trainer; each model package adds its own.
TRAINERS: dict[str, str] = {}
PLANNED = {"keypoints": "issue 3", "parsing": "issue 4", "densepose": "issue 4", "adgan": "issue 5"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train a model of the pipeline.")
    parser.add_argument("--config", required=True, type=Path, help="configs/<task>-*.yaml")
    parser.add_argument("--resume", type=Path, help="a run folder or checkpoint to continue")
    parser.add_argument(
        "--dry-run", action="store_true", help="validate the config and exit before anything heavy"
    )
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    try:
        config = apply_overrides(load_yaml(args.config), args.overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    task = config.get("task")
    if task not in TRAINERS:
        known = sorted(set(TRAINERS) | set(PLANNED))
        if task in PLANNED:
            print(
                f"error: training task {task!r} is not available yet (it lands with "
                f"{PLANNED[task]}); available now: {', '.join(TRAINERS) or 'none'}",
                file=sys.stderr,
            )
        else:
            print(
                f"error: {args.config}: 'task' must be one of {', '.join(known)}, got {task!r}",
                file=sys.stderr,
            )
        return 2
    module_name, function = TRAINERS[task].split(":")
    module = __import__(module_name, fromlist=[function])
    return int(getattr(module, function)(config, resume=args.resume, dry_run=args.dry_run) or 0)


if __name__ == "__main__":
    sys.exit(main())
