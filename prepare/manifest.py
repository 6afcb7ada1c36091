"""Step 5: checksums of every prepared file, so two sites can tell their data is the same.

`checksums.sha256` is in `sha256sum` format (`sha256sum -c checksums.sha256` checks a copy);
the manifest holds its digest and each CSV's, so one number names the whole dataset.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from common.fileio import write_text

CHECKSUMS = "checksums.sha256"
MANIFEST = "manifest.json"


def sha256_file(path: Path, block: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def dataset_files(out: Path) -> list[Path]:
    """Every file of the prepared dataset (not the manifest, the checksums or temp files)."""
    files = []
    for root, folders, names in os.walk(out):
        folders[:] = [f for f in folders if not f.startswith(".")]  # caches, temp folders
        for name in names:
            if name.startswith(".") or name in (CHECKSUMS, MANIFEST):
                continue
            files.append(Path(root) / name)
    return sorted(files, key=lambda p: p.relative_to(out).as_posix())


def write_checksums(out: Path) -> tuple[str, int]:
    """Write `checksums.sha256`; (its own sha256, number of files)."""
    files = dataset_files(out)
    lines = "".join(f"{sha256_file(p)}  {p.relative_to(out).as_posix()}\n" for p in files)
    write_text(out / CHECKSUMS, lines)
    return hashlib.sha256(lines.encode()).hexdigest(), len(files)
