"""`python infer.py --source model.jpg --pose user.jpg [--swap upper=garment.jpg] ...`

Renders the catalogue model of `--source` in the pose of the person in `--pose`, with
optional component swaps. The work happens in `studio.pipeline`; this file parses the
arguments, reports what a user can act on (a missing, empty or corrupt photo, a photo
without a person, a missing or mismatched bundle) with status 2, and writes the result
atomically. The input paths are checked before torch is imported, so a typo is reported at
once. A bundle trained on synthetic people only (the demo) prints a `warning:` line on
stderr: its results on real photos mean nothing.

    python infer.py --batch jobs.csv --out-dir cards/ [--batch-size 16] [--device cuda]
    torchrun --nproc_per_node 8 infer.py --batch jobs.csv --out-dir cards/ --device cuda

makes product cards in batches (`studio.cards`: resumable, failures.csv, exit 1 if a row failed).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# Nothing imported at the top pulls in torch: argument and file errors come back at once.
from common.geometry import Box, parse_box, parse_named_box
from common.hardware import PRECISIONS
from parsing.labels import ADGAN_CLASSES, canonical_component, component_classes
from studio.backdrop import AUTO, Backdrop, parse_backdrop
from studio.framing import CARD_SCALES, DEFAULT_FRAMING, FRAMINGS

DEFAULT_BUNDLE = Path(__file__).resolve().parent / "bundles" / "demo"
DEVICES = ("auto", "cpu", "cuda")  # auto: cuda if available (common.hardware.resolve_device)


class InputError(ValueError):
    """A file named on the command line that cannot be used; the message names it."""


def parse_swap(text: str) -> tuple[str, Path]:
    """COMPONENT=PHOTO, split and syntax-checked; the component name is checked against the
    generator's components after the files (`check_components`)."""
    component, sep, path = text.partition("=")
    if not sep or not component or not path:
        raise argparse.ArgumentTypeError(
            f"--swap {text!r} must be COMPONENT=PHOTO with COMPONENT one of "
            f"{', '.join(ADGAN_CLASSES[1:])} (or upper/top, lower/bottom)"
        )
    return component, Path(path)


def _canonical(component: str) -> str:
    """`canonical_component`, so two names of one component cannot both be given; unknown
    names stay as given, for `main` to name them."""
    try:
        return canonical_component(component)
    except ValueError:
        return component


def _swap_arg(text: str) -> tuple[str, Path]:
    component, path = parse_swap(text)
    return _canonical(component), path


def _swap_box_arg(text: str) -> tuple[str, Box]:
    component, box = parse_named_box(text)
    return _canonical(component), box


def _backdrop_arg(text: str) -> Backdrop:
    try:
        return parse_backdrop(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def check_input(path: Path, what: str) -> None:
    """Exists, is a file, is not empty, can be read: checked before anything heavy loads."""
    if not path.exists():
        raise InputError(f"{what} {path}: no such file")
    if path.is_dir():
        raise InputError(f"{what} {path}: is a folder, not an image")
    if path.stat().st_size == 0:
        raise InputError(f"{what} {path}: empty file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{what} {path}: not readable (permission denied)")


def prepare_output(path: Path) -> None:
    """Create the output's folder now, so an unwritable place fails before the models load."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the folder of {path}: {exc.strerror}") from None
    if not os.access(path.parent, os.W_OK):
        raise InputError(f"cannot write {path}: its folder is not writable")


def check_components(swaps: list[tuple[str, Path]], boxes: list[tuple[str, Box]]) -> None:
    """Every swap names a known component, and every --swap-box one of the swaps."""
    for component, path in swaps:
        try:
            component_classes(component)
        except ValueError as exc:
            raise InputError(f"--swap {component}={path}: {exc}") from None
    swapped = {component for component, _ in swaps}
    seen = set()
    for component, _ in boxes:
        if component not in swapped:
            given = ", ".join(sorted(swapped)) or "none"
            raise InputError(
                f"--swap-box {component}: no --swap {component}=PHOTO to take it from "
                f"(swaps given: {given})"
            )
        if component in seen:
            raise InputError(f"--swap-box {component} is given twice")
        seen.add(component)


def load_pipeline(bundle: Path, device: str, precision: str = "auto", scale: int = 1):
    from common.checkpoint import CheckpointError
    from studio.pipeline import Pipeline

    if not (bundle / "config.json").is_file():
        raise CheckpointError(
            f"no model bundle at {bundle}; assemble one from trained runs with "
            "python -m studio.bundle --help (a fresh clone has the demo bundle in bundles/demo)"
        )
    return Pipeline.from_bundle(bundle, device, precision, card_scale=scale)


def bundle_warning(bundle: Path) -> str | None:
    """The sentence a user must see about this bundle's results (`real_photo_warning`)."""
    from common.checkpoint import read_config
    from studio.bundle import real_photo_warning

    return real_photo_warning(read_config(bundle))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Pose-guided person generation (ADGAN-style).")
    p.add_argument("--source", type=Path, help="photo of the person/garments to render")
    p.add_argument("--pose", type=Path, help="photo of the person whose pose to take")
    for role in ("source", "pose"):
        p.add_argument(
            f"--{role}-box",
            type=parse_box,
            metavar="X,Y,W,H",
            help=f"the person to use in --{role} when it shows several: a box around them in "
            "photo pixels (a note lists the boxes of the people found)",
        )
    p.add_argument(
        "--swap",
        type=_swap_arg,
        action="append",
        default=[],
        metavar="COMPONENT=PHOTO",
        help="take a component from another photo",
    )
    p.add_argument(
        "--swap-box",
        type=_swap_box_arg,
        action="append",
        default=[],
        metavar="COMPONENT=X,Y,W,H",
        help="the person to take COMPONENT from when its --swap photo shows several: a box "
        "around them in photo pixels",
    )
    p.add_argument("--out", type=Path, default=Path("out.png"))
    p.add_argument("--panel", type=Path, help="also write source | pose | parsing | result")
    p.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE)
    p.add_argument(
        "--device", choices=DEVICES, default="auto", help="auto: cuda if available, else cpu"
    )
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="the generator's; auto: bf16 on a GPU or a CPU with bf16 matrix units (AMX)",
    )
    p.add_argument(
        "--backdrop",
        type=_backdrop_arg,
        default=AUTO,
        metavar="COLOUR",
        help="what the person stands on: a plain colour (white, studio, #rrggbb, r,g,b); "
        "photo: the source photo's background with the person removed; auto (the default): "
        "the source's own wall colour where it is plain (a studio photo), else studio",
    )
    p.add_argument(
        "--framing",
        choices=FRAMINGS,
        default=DEFAULT_FRAMING,
        help="source: the card ends where the source photo's person ends (a photo cut at the "
        "thigh gives a card cut at the thigh, the person larger; one cut at the mouth, a card "
        "from the chin down); pose: the pose photo's frame",
    )
    p.add_argument(
        "--scale",
        type=int,
        choices=CARD_SCALES,
        default=1,
        help="the card's size in multiples of 176x256 (2: 352x512): the person's fine detail "
        "is carried from the photo read at that size, sharp as far as the photo is; what "
        "the network paints (unseen parts, the filled background) is enlarged",
    )
    p.add_argument("--batch", type=Path, help="a jobs CSV for batch product cards")
    p.add_argument("--out-dir", type=Path, help="output folder for --batch")
    p.add_argument("--batch-size", type=int, default=16, help="cards per pass in --batch")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.batch is None and (args.source is None or args.pose is None):
        parser.error("give --source and --pose (or --batch jobs.csv)")
    if args.batch is not None and args.out_dir is None:
        parser.error("--batch needs --out-dir")
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    try:  # every file named on the command line, before torch is imported
        if args.batch is not None:
            check_input(args.batch, "the jobs file")
        else:
            check_input(args.source, "--source")
            check_input(args.pose, "--pose")
            check_components(args.swap, args.swap_box)
            for component, path in args.swap:
                check_input(path, f"--swap {component}")
            for out in (args.out, args.panel):
                if out is not None:
                    prepare_output(out)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    from common.checkpoint import CheckpointError
    from common.hardware import resolve_device
    from common.image_io import ImageError, load_image, save_image
    from studio.cards import main_batch
    from studio.pipeline import Job, NoPersonError, job_notes

    device = resolve_device(args.device)
    try:
        warning = None
        if (args.bundle / "config.json").is_file():
            warning = bundle_warning(args.bundle)
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
        if args.batch is not None:
            return main_batch(
                lambda device: load_pipeline(args.bundle, device, args.precision, args.scale),
                args.batch,
                args.out_dir,
                device,
                args.batch_size,
                backdrop=args.backdrop,
                framing=args.framing,
            )
        swap_boxes = dict(args.swap_box)
        wanted = [
            (args.source, args.source_box),
            (args.pose, args.pose_box),
            *((path, swap_boxes.get(component)) for component, path in args.swap),
        ]
        photos = [(load_image(path), path.name) for path, _ in wanted]
        pipe = load_pipeline(args.bundle, device, args.precision, args.scale)
        # every photo in one batch: a card's people are found together, and all but the
        # pose's person parsed (the pose photo gives keypoints only)
        parse = [i != 1 for i in range(len(wanted))]
        views = pipe.people(photos, [box for _, box in wanted], parse)
        for view in views:
            if isinstance(view, NoPersonError):
                raise view
        source, pose, *donors = views
        swaps = dict(zip((component for component, _ in args.swap), donors, strict=True))
        for view in views:
            for note in view.notes:  # which of several people was used, and how to pick another
                print(f"note: {note}", file=sys.stderr)
        job = Job(source, pose, swaps, args.backdrop, args.framing)
        result = pipe.generate_many([job])[0]
        for note in job_notes(job):  # the source and the pose seen from opposite sides
            print(f"note: {note}", file=sys.stderr)
        save_image(args.out, result)
        if args.panel is not None:
            save_image(args.panel, pipe.panel(source, pipe.card_pose(job), result))
    except (InputError, ImageError, NoPersonError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}" + (f" and {args.panel}" if args.panel else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
