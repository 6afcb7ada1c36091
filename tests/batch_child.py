"""Batch cards in a child process, for the tests that kill it:
`python tests/batch_child.py BUNDLE JOBS OUT_DIR BATCH_SIZE`.

`infer.py --batch` with the bundle's keypoint estimator replaced by `studio.stub`'s
`StandingPerson` (random weights find nobody), so that tiny random bundles make cards.
"""

from __future__ import annotations

import sys
from pathlib import Path

from studio.cards import main_batch
from studio.pipeline import Pipeline
from studio.stub import StandingPerson


def main(argv: list[str]) -> int:
    bundle, jobs, out_dir, batch_size = Path(argv[0]), Path(argv[1]), Path(argv[2]), int(argv[3])

    def pipeline(device: str) -> Pipeline:
        pipe = Pipeline.from_bundle(bundle, device)
        pipe.keypoints = StandingPerson()
        return pipe

    return main_batch(pipeline, jobs, out_dir, "cpu", batch_size)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
