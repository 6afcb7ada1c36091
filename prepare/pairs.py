"""Step 4: `fashion-resize-pairs-{train,test}.csv` (`from,to`).

The published recipe (PATN's `tool/create_pairs_dataset.py`, which ADGAN reuses): keep the
photos whose keypoints show both shoulders and both hips; pair every two photos of the
same person in the same clothes (gender, category, item id and outfit number: the flat
name up to its view), in both orders. On the published test annotations this gives the
8,570 published test pairs exactly (a test checks it). When the published pairs CSVs are
given they are used instead, less the pairs whose photos were not prepared.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import permutations
from pathlib import Path

import numpy as np

from common.deepfashion import parse_flat
from keypoints.formats import FormatError, read_pairs
from keypoints.skeleton import visible

# r-shoulder, l-shoulder, r-hip, l-hip: the points the recipe requires
REQUIRED_POINTS = (2, 5, 8, 11)


def pose_is_valid(keypoints: np.ndarray) -> bool:
    return bool(visible(np.asarray(keypoints)[list(REQUIRED_POINTS)]).all())


def recipe_pairs(annotations: dict[str, np.ndarray]) -> list[tuple[str, str]]:
    """All ordered pairs of valid photos of one person in one outfit, sorted by name."""
    people: dict[str, list[str]] = defaultdict(list)
    for name in sorted(annotations):
        if pose_is_valid(annotations[name]):
            people[parse_flat(name).identity].append(name)
    return [pair for names in people.values() for pair in permutations(names, 2)]


def published_pairs(
    path: Path, available: set[str]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(pairs whose both photos are available, pairs dropped) of a published pairs CSV."""
    try:
        pairs = read_pairs(path)
    except FormatError as exc:
        raise FormatError(f"{exc} (the published pairs CSV)") from None
    kept = [p for p in pairs if p[0] in available and p[1] in available]
    dropped = [p for p in pairs if not (p[0] in available and p[1] in available)]
    return kept, dropped
