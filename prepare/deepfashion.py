"""The whole DeepFashion preparation, step by step: `prepare_deepfashion`.

Every step looks at what is already in `out` and does only the rest, so a run that was
stopped (or one after more raw photos arrived) is simply started again. The manifest is
written last; it names the sources, counts every step's outcome, lists each problem file
and holds the checksums' digest.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.fileio import write_json, write_text
from keypoints.formats import write_pairs
from prepare import images as image_step
from prepare import keypoint_step, pairs, parsing_step
from prepare.images import SPLITS, PrepareError, Problem
from prepare.manifest import MANIFEST, sha256_file, write_checksums


@dataclass
class Sources:
    """Where keypoints, parsing and pairs come from (exactly one of each pair)."""

    annotations: Path | None = None  # published CSVs (annotation, pairs, lists)
    keypoints: Path | None = None  # our estimator's checkpoint
    parser: Path | None = None  # our parser's checkpoint
    labels: Path | None = None  # label PNGs to merge
    merge: str = "lip"  # their table

    def check(self) -> None:
        has_csv = self.annotations is not None and all(
            keypoint_step.annotation_csv(self.annotations, s).is_file() for s in SPLITS
        )
        if not has_csv and self.keypoints is None:
            where = f" ({self.annotations} has no fashion-resize-annotation-*.csv)" * bool(
                self.annotations
            )
            raise PrepareError(
                f"keypoints need a source{where}: --annotations DIR with the published "
                f"fashion-resize-annotation-{{train,test}}.csv, or --keypoints CKPT"
            )
        if (self.parser is None) == (self.labels is None):
            raise PrepareError(
                "8-class maps need exactly one source: --parser CKPT (our parser) or "
                "--labels DIR (LIP/CIHP/ATR label PNGs, with --merge lip|cihp|atr)"
            )

    @property
    def published_keypoints(self) -> bool:
        return self.annotations is not None and all(
            keypoint_step.annotation_csv(self.annotations, s).is_file() for s in SPLITS
        )

    def describe(self) -> dict[str, str]:
        return {
            "keypoints": f"published CSVs in {self.annotations}"
            if self.published_keypoints
            else f"estimator {self.keypoints}",
            "parsing": f"parser {self.parser}"
            if self.parser is not None
            else f"label PNGs in {self.labels} merged with {self.merge!r}",
        }


def _previous_manifest(out: Path) -> dict[str, Any]:
    try:
        return json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def prepare_deepfashion(
    raw: str | Path,
    out: str | Path,
    sources: Sources,
    *,
    lists: str | Path | None = None,
    size: tuple[int, int] = (256, 176),
    quality: int = 95,
    workers: int = 2,
    batch_size: int = 16,
    device: str = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Prepare (or finish preparing) `out` from the raw In-shop tree; returns the manifest."""
    raw, out = Path(raw), Path(out)
    sources.check()
    image_root = image_step.find_image_root(raw)
    list_paths = image_step.find_split_lists(
        [Path(lists) if lists else None, sources.annotations, raw]
    )
    split_of = image_step.read_split(list_paths)
    previous = _previous_manifest(out)
    seconds: dict[str, float] = {}
    problems: list[Problem] = []

    started = time.perf_counter()
    report = image_step.prepare_images(
        image_root, split_of, out, size=size, quality=quality, workers=workers, progress=progress
    )
    seconds["images"] = time.perf_counter() - started
    problems += report.problems
    problems += [Problem(n, "listed but not in the raw tree") for n in report.missing]
    prepared = report.prepared
    if not any(prepared.values()):
        raise PrepareError(f"{image_root}: none of the listed photos could be prepared")
    for split in SPLITS:
        write_text(out / f"{split}.lst", "".join(f"{n}\n" for n in prepared[split]))

    started = time.perf_counter()
    described = sources.describe()
    predicted = 0
    if sources.published_keypoints:
        rows, found = keypoint_step.from_published(sources.annotations, prepared, size)
    else:
        reuse = previous.get("sources", {}).get("keypoints") == described["keypoints"]
        rows, found, predicted = keypoint_step.from_estimator(
            out,
            prepared,
            sources.keypoints,
            reuse=reuse,
            device=device,
            batch_size=batch_size,
            progress=progress,
        )
    problems += found
    keypoint_step.write_keypoints(out, rows)
    seconds["keypoints"] = time.perf_counter() - started

    started = time.perf_counter()
    if sources.parser is not None:
        maps_written, found = parsing_step.from_parser(
            out, prepared, sources.parser, device=device, batch_size=batch_size, progress=progress
        )
    else:
        maps_written, found = parsing_step.from_label_pngs(
            out, prepared, sources.labels, sources.merge, size, progress
        )
    problems += found
    seconds["parsing"] = time.perf_counter() - started

    pair_counts: dict[str, dict[str, Any]] = {}
    for split in SPLITS:
        given = (
            sources.annotations / f"fashion-resize-pairs-{split}.csv"
            if sources.annotations is not None
            else None
        )
        if given is not None and given.is_file():
            kept, dropped = pairs.published_pairs(given, set(rows[split]))
            pair_counts[split] = {"source": "published", "pairs": len(kept)}
            pair_counts[split]["dropped"] = len(dropped)
            why = f"published {split} pair: a photo was not prepared"
            problems += [Problem(f"{a},{b}", why) for a, b in dropped]
        else:
            kept = pairs.recipe_pairs(rows[split])
            pair_counts[split] = {"source": "recipe", "pairs": len(kept)}
        write_pairs(out / f"fashion-resize-pairs-{split}.csv", kept)

    maps = parsing_step.count_maps(out, prepared)
    counts = {
        split: {
            "listed": sum(s == split for s in split_of.values()),
            "images": len(prepared[split]),
            "keypoint_rows": len(rows[split]),
            "semantic_maps": maps[split],
            "pairs": pair_counts[split]["pairs"],
            "pairs_dropped": pair_counts[split].get("dropped", 0),
        }
        for split in SPLITS
    }
    started = time.perf_counter()
    digest, files = write_checksums(out)
    seconds["checksums"] = time.perf_counter() - started
    manifest = {
        "dataset": "DeepFashion In-shop, pose-transfer layout",
        "version": 1,
        "size": list(size),
        "raw": str(image_root),
        "split_lists": {s: str(p) for s, p in list_paths.items()},
        "sources": {**described, "pairs": {s: c["source"] for s, c in pair_counts.items()}},
        "counts": counts,
        "this_run": {
            "images_written": report.written,
            "keypoints_predicted": predicted,
            "semantic_maps_written": maps_written,
            "unlisted_raw_photos": report.unlisted,
            "seconds": {k: round(v, 2) for k, v in seconds.items()},
        },
        "problems": [p.to_json() for p in problems],
        "checksums": {
            "checksums.sha256": digest,
            "files": files,
            **{
                name: sha256_file(out / name)
                for name in (
                    *(f"{s}.lst" for s in SPLITS),
                    *(f"fashion-resize-annotation-{s}.csv" for s in SPLITS),
                    *(f"fashion-resize-pairs-{s}.csv" for s in SPLITS),
                )
            },
        },
    }
    write_json(out / MANIFEST, manifest)
    return manifest
