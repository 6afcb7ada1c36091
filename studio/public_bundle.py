"""A bundle from the three public checkpoints, for users who have downloaded them elsewhere:

    python -m studio.public_bundle --openpose body_pose_model.pth \\
        --schp exp-schp-201908261155-lip.pth --adgan latest_net_netG.pth \\
        --out bundles/public [--dtype float16]

- `body_pose_model.pth`: the CMU OpenPose COCO-18 body model in PyTorch (the port of
  pytorch-openpose; `keypoints.openpose`);
- `exp-schp-201908261155-lip.pth`: Self-Correction Human Parsing trained on LIP, merged to
  the 8 ADGAN classes (`parsing.schp`);
- `latest_net_netG.pth`: the official ADGAN generator, 256x176 (`adgan.importer`).

Each is imported by its own importer (every key and shape checked, nothing unpickled) into a
temporary folder, and the three become one bundle (`studio.bundle.make_bundle`) whose
config.json says which file each part came from. These networks learned from real people, so
the bundle carries no synthetic-only warning.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from common.checkpoint import CheckpointError, save_checkpoint
from studio.bundle import STORAGE, load_bundle, make_bundle

PUBLIC_SOURCES = {
    "keypoints": "CMU OpenPose body model (body_pose_model.pth, pytorch-openpose)",
    "parser": "Self-Correction Human Parsing, LIP (GoGoDuck912/Self-Correction-Human-Parsing), "
    "LIP's 20 classes merged to ADGAN's 8",
    "generator": "official ADGAN generator (menyifang/ADGAN latest_net_netG.pth)",
}


def make_public_bundle(
    openpose: str | Path,
    schp: str | Path,
    adgan: str | Path,
    out: str | Path,
    *,
    dtype: str = "float16",
    notes: str = "",
) -> Path:
    """Import the three public files and assemble them into the bundle folder `out`; a file
    that does not fit is a CheckpointError naming it and what is wrong."""
    from adgan.importer import import_official  # the importers: not the product's
    from keypoints.openpose import import_public as import_openpose
    from parsing.schp import import_public as import_schp

    files = {"keypoints": Path(openpose), "parser": Path(schp), "generator": Path(adgan)}
    for part, path in files.items():
        if not path.is_file():
            raise CheckpointError(f"{path}: no such file (the {part} checkpoint)")
    if dtype not in STORAGE:
        raise ValueError(f"dtype must be one of {', '.join(STORAGE)}, got {dtype!r}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".public-imports.", dir=out.parent) as tmp:
        tmp = Path(tmp)
        for name, importer in (("keypoints", import_openpose), ("parser", import_schp)):
            module = importer(files[name])  # one network in memory at a time
            config = {"modules": {"model": module.describe()}, "source": str(files[name])}
            save_checkpoint(tmp / name, {"model": module}, config)
            del module
        try:
            import_official(files["generator"], tmp / "generator")
        except FileNotFoundError as exc:
            raise CheckpointError(str(exc)) from None
        sources = {part: f"{path.name}: {PUBLIC_SOURCES[part]}" for part, path in files.items()}
        lines = [f"{part}: {text}" for part, text in sources.items()]
        return make_bundle(
            tmp / "keypoints",
            tmp / "parser",
            tmp / "generator",
            out,
            dtype=dtype,
            notes="; ".join([*([notes] if notes else []), "public checkpoints", *lines]),
            synthetic_only=False,
            sources=sources,
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="Assemble a bundle for infer.py from the public OpenPose, SCHP (LIP) and "
        "ADGAN checkpoints."
    )
    p.add_argument("--openpose", required=True, type=Path, help="body_pose_model.pth")
    p.add_argument("--schp", required=True, type=Path, help="exp-schp-201908261155-lip.pth")
    p.add_argument("--adgan", required=True, type=Path, help="latest_net_netG.pth")
    p.add_argument("--out", required=True, type=Path, help="bundle folder to write")
    p.add_argument(
        "--dtype", choices=sorted(STORAGE), default="float16", help="how weights are stored"
    )
    p.add_argument("--notes", default="", help="anything to add to the bundle's notes")
    args = p.parse_args(argv)
    try:
        out = make_public_bundle(
            args.openpose, args.schp, args.adgan, args.out, dtype=args.dtype, notes=args.notes
        )
        load_bundle(out)  # what was written must load
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    size = sum(f.stat().st_size for f in out.iterdir()) / 2**20
    print(f"bundle {out}: {size:.1f} MB (OpenPose, SCHP LIP, ADGAN)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
