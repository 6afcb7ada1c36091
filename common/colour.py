"""Colours a user names on the command line (`infer.py --backdrop white`); no torch here, so
a typo is reported before any model loads."""

from __future__ import annotations

Colour = tuple[int, int, int]  # RGB, each 0-255

NAMED: dict[str, Colour] = {
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "grey": (128, 128, 128),
    "gray": (128, 128, 128),
    "studio": (240, 240, 240),  # the light grey of a catalogue backdrop
}


def parse_colour(text: str) -> Colour:
    """'white' (a name of NAMED), '#f0f0f0' or '240,240,240' -> (r, g, b) in 0-255."""
    value = text.strip().lower()
    if value in NAMED:
        return NAMED[value]
    try:
        if value.startswith("#") and len(value) == 7:
            rgb = tuple(int(value[i : i + 2], 16) for i in (1, 3, 5))
        else:
            rgb = tuple(int(v) for v in value.split(","))
    except ValueError:
        rgb = ()
    if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
        raise ValueError(
            f"colour {text!r}: give a name ({', '.join(NAMED)}), #rrggbb or r,g,b with each "
            "of 0-255"
        )
    return rgb  # type: ignore[return-value]
