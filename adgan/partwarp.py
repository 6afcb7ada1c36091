"""The part-warp generator (`model.arch: partwarp`): explicit geometry, decomposed style, a
learned finish.

ADGAN learns where every piece of a garment goes from data; we know it from the keypoints
of both people. So the source is first warped into the target pose per body segment
(`adgan.warp`), giving each of the 8 ADGAN components its layer and mask in the target
frame, the source background with the person cut out, and the holes the source cannot
show. A U-Net then reads that evidence with the target's pose maps and paints what
geometry cannot give (unseen regions, seams, shading, the background behind the source);
the per-component codes modulate it where each component lies in the target (a spatial
style map: each code painted over its warped mask), so a component's code acts on that
component. The output blends the network's picture with the warped composite through a
predicted soft mask: sharp texture and prints come from the warp.

    warp: source ──► per-segment transforms ──► layers, masks, holes, background
    codes: source ─► shared conv encoder ─► masked pooling per component ─► [B, 8, C]
    U-Net( composite, masks, holes, background, pose maps ; style map of the codes )
          ─► picture, blend ─► blend * composite + (1 - blend) * picture

Appearance rows are per component (`adgan.generators`): the source image, its label map,
its keypoints and its code, so a swap takes the donor's row: the donor's layer is warped
from the donor's own photo and pose, its code modulates the donor's region.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from adgan.generators import Appearance, Backdrops, PoseGenerator, enlarge, register
from adgan.warp import (
    PartWarp,
    WarpConfig,
    body_layout,
    composite,
    fill_background,
    fine_detail,
    warp_parts,
)
from parsing.labels import ADGAN_INDEX, class_map

GARMENTS = tuple(ADGAN_INDEX[n] for n in ("pants", "skirt", "upper_clothes"))
SKIN = tuple(ADGAN_INDEX[n] for n in ("arms", "legs"))
PANTS = ADGAN_INDEX["pants"]
LOWER_LEG_POINTS = [9, 10, 12, 13]  # knees and ankles (OpenPose-18 order)


@dataclass
class PartWarpConfig:
    """Architecture of the part-warp generator (stored with every checkpoint)."""

    arch: Literal["partwarp"] = "partwarp"
    image_size: tuple[int, int] = (256, 176)  # (height, width); any size (skips are resized)
    pose_sigma: float = 6.0  # Gaussian of the pose maps in pixels at 256 rows, scaled
    components: int = 8  # the ADGAN parsing classes
    channels: tuple[int, ...] = (24, 48, 96, 128, 160)  # U-Net width per level, full res first
    res_blocks: int = 2  # modulated residual blocks at the coarsest level
    code_size: int = 64  # per component
    encoder_channels: tuple[int, ...] = (32, 64, 128)  # the code encoder, stride 2 each
    style_channels: int = 16  # the spatial style map's width at each decoder level
    blend_bias: float = 2.0  # initial blend logit: start by trusting the warp (0.88)
    # Where the warp shows the person, at least this share of the output is the warp (0:
    # the learnt blend alone, as trained). A network that learnt on synthetic people paints
    # real textures (lace, prints, faces) blurred; the warp carries them sharp.
    warp_trust: float = 0.0
    warp: WarpConfig = field(default_factory=WarpConfig)


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    """3x3 conv, group norm, leaky ReLU: the U-Net's one building block."""
    groups = 8 if cout % 8 == 0 else 1
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
        nn.GroupNorm(groups, cout),
        nn.LeakyReLU(0.2, inplace=True),
    )


class ModulatedResBlock(nn.Module):
    """Residual block whose two norms take scale and bias from the style vector (AdaIN-like,
    with the parameters passed in, not stored on the module)."""

    def __init__(self, channels: int, style: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.affine = nn.Linear(style, 4 * channels)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        g1, b1, g2, b2 = self.affine(style)[..., None, None].chunk(4, 1)  # [B, C, 1, 1] each
        y = F.leaky_relu(F.instance_norm(self.conv1(x)) * (1 + g1) + b1, 0.2)
        y = F.instance_norm(self.conv2(y)) * (1 + g2) + b2
        return x + y


class CodeEncoder(nn.Module):
    """One conv pass over the source, then one code per component by masked average
    pooling (ADGAN encodes 8 masked copies; the masks here only pick where to pool)."""

    def __init__(self, channels: tuple[int, ...], code_size: int) -> None:
        super().__init__()
        layers, cin = [], 3
        for c in channels:
            layers.append(_conv(cin, c, stride=2))
            cin = c
        self.features = nn.Sequential(*layers, _conv(cin, cin))
        self.to_code = nn.Linear(cin, code_size)

    def forward(self, image: torch.Tensor, parsing: torch.Tensor) -> torch.Tensor:
        f = self.features(image)  # [B, C, h, w]
        m = F.adaptive_avg_pool2d(parsing.float(), f.shape[-2:])  # [B, K, h, w]
        pooled = torch.einsum("bchw,bkhw->bkc", f, m) / m.sum((2, 3))[..., None].clamp_min(1e-3)
        return self.to_code(pooled)  # [B, K, code]


def _labels_to_one_hot(labels: torch.Tensor, classes: int) -> torch.Tensor:
    return F.one_hot(labels.long(), classes).permute(0, 3, 1, 2).float()  # [B, K, H, W]


def person_rows(
    image: torch.Tensor, labels: torch.Tensor, keypoints: torch.Tensor, components: int
) -> Appearance:
    """One row per component of what a warp needs: the photo, its label map, its keypoints.
    Views, not copies: a swap's mix clones what it changes."""
    k = components
    return {
        "image": image[:, None].expand(-1, k, -1, -1, -1),  # [B, K, 3, H, W]
        "labels": labels[:, None].expand(-1, k, -1, -1),  # [B, K, H, W]
        "keypoints": keypoints.to(image.dtype)[:, None].expand(-1, k, -1, -1),  # [B, K, 18, 2]
    }


def frame_rows(appearance: Appearance, frame: torch.Tensor) -> Appearance:
    """`PoseGenerator.with_frame` for the warp's rows: one frame row per component, as the
    labels (a swap's mix takes the donor's rows; the background comes from row 0's photo)."""
    k = appearance["image"].shape[1]
    frame = frame.to(appearance["image"])
    return {**appearance, "frame": frame[:, None].expand(-1, k, -1, -1)}


@dataclass
class CarriedPixels:
    """Where the warped person's colours come from, for a card larger than the warp
    (`adgan.warp.fine_detail`): per segment of every person the card takes from, the
    source pixel it takes at each target pixel, its share of the card's person colour
    there (source pixels only), and the appearance row whose photo that person is."""

    coords: torch.Tensor  # [B, N, H, W, 2]
    shares: torch.Tensor  # [B, N, H, W]
    rows: tuple[int, ...]  # N: the row of each


def warp_rows(
    appearance: Appearance, keypoints: torch.Tensor, config: WarpConfig, *, layout: bool = False
) -> PartWarp:
    """Each component warped from its own row's person into the target pose: one warp for
    the person of row 0 (the background's), and one more per row a swap took from someone
    else. layout: the result carries the target body's layout (`warp_parts`)."""
    return warp_rows_carrying(appearance, keypoints, config, layout=layout)[0]


def warp_rows_carrying(
    appearance: Appearance,
    keypoints: torch.Tensor,
    config: WarpConfig,
    *,
    layout: bool = False,
    carried: bool = False,
) -> tuple[PartWarp, CarriedPixels | None]:
    """`warp_rows`, and with `carried`, where its person's colours come from."""
    image, labels, kp = appearance["image"], appearance["labels"], appearance["keypoints"]
    k = image.shape[1]
    target = keypoints.to(image.dtype)
    swapped = {  # row -> [B] whether it comes from someone else
        c: (kp[:, c] != kp[:, 0]).flatten(1).any(1)
        | (labels[:, c] != labels[:, 0]).flatten(1).any(1)
        for c in range(1, k)
    }
    swapped = {c: other for c, other in swapped.items() if other.any()}
    garment_swapped = any(c in GARMENTS for c in swapped)
    frame = appearance.get("frame")  # [B, K, H, W] where the source photo ends, if known
    base = warp_parts(
        image[:, 0],
        labels[:, 0],
        kp[:, 0],
        target,
        config,
        layout=layout or garment_swapped,
        frame=None if frame is None else frame[:, 0, None],
        detail=carried,
    )
    takes = [(0, base, None)]  # (row, its warp, [B] where it gives its row's class | None)
    layers, masks = list(base.layers.unbind(1)), list(base.masks.unbind(1))
    worn = torch.zeros_like(base.holes)  # [B, 1, H, W] the person's own replaced garments
    new = torch.zeros_like(base.holes)  # ... and the donors' garments in their place
    for c, other in swapped.items():
        donor = warp_parts(image[:, c], labels[:, c], kp[:, c], target, config, detail=carried)
        if c == PANTS:
            donor = _trousers_past_the_edge(donor, labels[:, c], kp[:, c], target, config)
        takes.append((c, donor, other))
        pick = other[:, None, None, None]
        if c in GARMENTS:
            worn = worn + torch.where(pick, masks[c], 0)
            new = new + torch.where(pick, donor.masks[:, c], 0)
        layers[c] = torch.where(pick, donor.layers[:, c], layers[c])
        masks[c] = torch.where(pick, donor.masks[:, c], masks[c])
    holes = base.holes
    if garment_swapped:
        # A garment covers the skin under it (a donor's trousers over the shopper's bare
        # legs), and where it covers less than the garment it replaces, the body beneath
        # shows (legs under a skirt that replaced trousers): a hole for the network to paint
        # from the shopper's codes, inside the target body; outside it, background.
        new = new.clamp(0, 1)
        for c in SKIN:
            masks[c] = masks[c] * (1 - new)
        bare = ((worn - new).clamp(0, 1) * base.body).clamp(0, 1)
        holes = (holes + bare).clamp(0, 1)
    # a swapped garment may cover more or less than the one it replaces: the person's
    # classes keep their sum (within what the holes leave), the rest is background
    person = torch.stack(masks[1:], 1)  # [B, K - 1, 1, H, W]
    room = (1 - holes)[:, None] / person.sum(1, keepdim=True).clamp_min(1e-6)
    person = person * room.clamp(max=1.0)
    background = (1 - person.sum(1) - holes).clamp_min(0)[:, None]
    masks = torch.cat([background, person], 1)  # [B, K, 1, H, W]
    layers = torch.stack(layers, 1)  # [B, K, 3, H, W]
    warped = dataclasses.replace(base, layers=layers, masks=masks, holes=holes)
    return warped, _carried_pixels(takes, masks) if carried else None


def _carried_pixels(
    takes: list[tuple[int, PartWarp, torch.Tensor | None]], masks: torch.Tensor
) -> CarriedPixels:
    """Each warp's segments' shares of the final person colour: a class's colour is its
    warp's segments' mixed by their weights, scaled to the class's final mask (a swapped
    garment's skin under it, the room left by holes)."""
    coords, shares, rows = [], [], []
    donors = [(c, other) for c, _, other in takes[1:]]
    for row, warp, other in takes:
        gives = torch.zeros(masks.shape[:2], device=masks.device)  # [B, K]
        if other is None:  # the person: every class no donor gives
            gives[:, 1:] = 1.0
            for c, by_donor in donors:
                gives[:, c] = (~by_donor).to(gives)
        else:
            gives[:, row] = other.to(gives)
        ratio = gives[..., None, None] * masks[:, :, 0] / warp.masks[:, :, 0].clamp_min(1e-6)
        share = torch.einsum("bkhw,bskhw->bshw", ratio.clamp(0, 1), warp.weights)
        coords.append(warp.coords)
        shares.append(share)
        rows += [row] * share.shape[1]
    return CarriedPixels(torch.cat(coords, 1), torch.cat(shares, 1), tuple(rows))


def _trousers_past_the_edge(
    donor: PartWarp,
    labels: torch.Tensor,
    keypoints: torch.Tensor,
    target: torch.Tensor,
    config: WarpConfig,
) -> PartWarp:
    """Trousers cut by the donor's photo go on past its edge, as trousers do (a catalogue
    photo cut at the thigh): on the target's legs below the lowest row the warp carried
    them to, their colour spread from what is seen. Cut: they reach the crop's bottom edge,
    or they are the lowest thing the donor shows and no knee or ankle is seen (a real
    photo's crop goes on below the photo, letterboxed; shorts above bare legs are not cut).
    A skirt's length cannot be guessed, and is left as seen."""
    h, w = labels.shape[-2:]
    edge = max(1, h // 128)
    row = torch.arange(h, device=labels.device).view(1, h, 1)
    lowest_pants = torch.where(labels == PANTS, row, -1).flatten(1).amax(1)  # [B]
    lowest_person = torch.where(labels > 0, row, -1).flatten(1).amax(1)
    no_lower_legs = (keypoints[:, LOWER_LEG_POINTS] < 0).any(2).all(1)  # knees and ankles
    ends_in_them = (lowest_pants >= 0) & (lowest_pants >= lowest_person - edge)
    cut = (lowest_pants >= h - edge) | (ends_in_them & no_lower_legs)
    if not cut.any():
        return donor
    seen = donor.masks[:, PANTS]  # [B, 1, H, W]
    rows = torch.arange(h, device=seen.device, dtype=seen.dtype).view(1, 1, h, 1)
    lowest = torch.where(seen > 0.5, rows, -1.0).flatten(1).amax(1).view(-1, 1, 1, 1)
    legs = body_layout(target, (h, w), config, kinds=("thigh", "shin")).to(seen)
    below = (rows > lowest - 2) & (lowest >= 0) & cut.view(-1, 1, 1, 1)
    more = legs * below.to(seen) * (1 - seen)
    masks, layers = donor.masks.clone(), donor.layers.clone()
    colour = fill_background(donor.layers[:, PANTS], seen)
    layers[:, PANTS] = (layers[:, PANTS] * seen + colour * more) / (seen + more).clamp_min(1e-6)
    masks[:, PANTS] = seen + more
    return dataclasses.replace(donor, masks=masks, layers=layers)


@register
class PartWarpGenerator(PoseGenerator):
    """See the module docstring. Appearance: {"image": [B, K, 3, H, W], "labels":
    [B, K, H, W], "keypoints": [B, K, 18, 2], "codes": [B, K, C]}."""

    Config = PartWarpConfig
    # warp.background_dilation: real photos' person masks are coarser than SynthFashion's
    # exact ones, and a wider cut keeps the person's edge and shadow out of the filled
    # background; warp.head_support and warp.head_outside_opacity: real hair reaches past a
    # synthetic head's capsule, and past the photo's edge; warp.legs_past_the_edge: a photo
    # cut at the thigh still dresses the legs of a full-body pose, in the colour its edge
    # shows averaged (warp.legs_edge_blur), not in its stripes; warp.borrow_twin_limbs:
    # an arm a side view hides is carried from the other arm, sleeve and all;
    # warp.parsing_blur: the parse's staircase edges, zoomed, are a sawtooth;
    # warp.head_neck_reach: a real head tilted or seen large has its chin below the disc
    # a synthetic head fills (docs/generator.md)
    INFERENCE_SETTINGS = (
        "warp_trust",
        "warp.background_dilation",
        "warp.head_support",
        "warp.head_outside_opacity",
        "warp.legs_past_the_edge",
        "warp.legs_edge_blur",
        "warp.borrow_twin_limbs",
        "warp.parsing_blur",
        "warp.head_neck_reach",
        "warp.head_owns_face",
        "warp.torso_under_arms",
        "warp.thighs_under_hands",
        "warp.skirt_in_one_piece",
        "warp.matte_core",
        "warp.matte_ramp",
    )
    EVIDENCE = 3 + 1 + 3 + 1  # composite, holes, background, background mask (+ masks, pose)
    uses_detail = True  # a card larger than the network is warped from the photo at its size

    def __init__(self, config: PartWarpConfig) -> None:
        super().__init__()
        self.config = config
        k, ch = config.components, config.channels
        self.codes = CodeEncoder(config.encoder_channels, config.code_size)
        cin = self.EVIDENCE + k + 18
        self.down = nn.ModuleList()
        for i, c in enumerate(ch):
            self.down.append(nn.Sequential(_conv(cin, c, stride=1 if i == 0 else 2), _conv(c, c)))
            cin = c
        style = k * config.code_size
        self.style = nn.Sequential(nn.Linear(style, 256), nn.LeakyReLU(0.2), nn.Linear(256, 256))
        self.middle = nn.ModuleList(
            ModulatedResBlock(ch[-1], 256) for _ in range(config.res_blocks)
        )
        self.up = nn.ModuleList()
        self.style_maps = nn.ModuleList()
        for i in range(len(ch) - 2, -1, -1):  # coarse to fine
            extra = config.style_channels if i > 0 else 0  # no style map at full resolution
            self.up.append(_conv(ch[i + 1] + ch[i] + extra, ch[i]))
            if extra:
                self.style_maps.append(nn.Linear(config.code_size, extra))
        self.head = nn.Conv2d(ch[0], 4, 3, 1, 1)
        with torch.no_grad():
            self.head.bias[3] = config.blend_bias

    def encode(
        self, image: torch.Tensor, parsing: torch.Tensor, keypoints: torch.Tensor
    ) -> Appearance:
        k = self.config.components
        labels = class_map(parsing) if parsing.dim() == 4 else parsing.long()  # [B, H, W]
        rows = person_rows(image, labels, keypoints, k)
        rows["codes"] = self.codes(image, _labels_to_one_hot(labels, k))
        return rows

    def with_frame(self, appearance: Appearance, frame: torch.Tensor) -> Appearance:
        return frame_rows(appearance, frame)

    def warp(
        self, appearance: Appearance, keypoints: torch.Tensor, *, layout: bool = False
    ) -> PartWarp:
        return self._warp(appearance, keypoints, layout=layout)[0]

    def _warp(
        self,
        appearance: Appearance,
        keypoints: torch.Tensor,
        *,
        layout: bool = False,
        carried: bool = False,
    ) -> tuple[PartWarp, CarriedPixels | None]:
        # The geometry in fp32 whatever the autocast: bf16's 8-bit mantissa puts a pixel
        # coordinate at 256 rows a pixel off, and linalg.solve has no bf16 kernel.
        with torch.autocast(keypoints.device.type, enabled=False):
            rows = {k: v.float() if v.is_floating_point() else v for k, v in appearance.items()}
            return warp_rows_carrying(
                rows, keypoints.float(), self.config.warp, layout=layout, carried=carried
            )

    def decode(self, appearance: Appearance, keypoints: torch.Tensor) -> torch.Tensor:
        return self.render(appearance, keypoints)[0]

    def decode_with_matte(
        self,
        appearance: Appearance,
        keypoints: torch.Tensor,
        backdrops: Backdrops | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        picture, warped, _ = self.render(appearance, keypoints, layout=True, backdrops=backdrops)
        return picture, warped.matte.to(picture)

    def render(
        self,
        appearance: Appearance,
        keypoints: torch.Tensor,
        *,
        layout: bool = False,
        backdrops: Backdrops | None = None,
    ) -> tuple[torch.Tensor, PartWarp, torch.Tensor]:
        """(image [B, 3, H, W] in [-1, 1], the warp, the blend [B, 1, H, W]); layout: the
        warp carries the target body's layout (for a matte); `backdrops`: the network reads
        those rows' plain colours as their background (`PartWarp.on_backdrop`)."""
        picture, blend, warped, rough, _ = self._paint(
            appearance, keypoints, layout=layout, backdrops=backdrops
        )
        blend = self._trusted(blend, warped)
        return blend * rough + (1 - blend) * picture, warped, blend

    def detail_rows(self, image: torch.Tensor) -> Appearance:
        return {"image": image[:, None].expand(-1, self.config.components, -1, -1, -1)}

    def render_card(
        self,
        appearance: Appearance,
        keypoints: torch.Tensor,
        *,
        scale: int = 1,
        detail: Appearance | None = None,
        matte: bool = False,
        backdrops: Backdrops | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """At a larger scale the card is the network-size card enlarged, plus, where it shows
        the warp, the fine detail of the photo read at the card's size (`detail`: that photo
        less the network-size crop enlarged), carried by the same geometry
        (`adgan.warp.fine_detail`): the person is as sharp as the photo, and what the
        network paints (unseen parts, the filled background) is enlarged, having no finer
        detail to give. Without detail rows, the network-size card enlarged."""
        if scale == 1 or detail is None:
            return super().render_card(
                appearance, keypoints, scale=scale, matte=matte, backdrops=backdrops
            )
        picture, blend, warped, rough, carried = self._paint(
            appearance, keypoints, layout=matte, carried=True, backdrops=backdrops
        )
        with torch.autocast(keypoints.device.type, enabled=False):
            blend = self._trusted(blend, warped).float()
            card = enlarge(blend * rough + (1 - blend) * picture.float(), scale)
            rows = torch.tensor(carried.rows, device=keypoints.device)
            fine = torch.zeros_like(card)
            for row in sorted(set(carried.rows)):
                mine = rows == row
                photo = detail["image"][:, row].float()
                finer = photo - enlarge(appearance["image"][:, row], scale)  # [B, 3, sH, sW]
                fine += fine_detail(carried.coords[:, mine], carried.shares[:, mine], finer, scale)
            card = (card + enlarge(blend, scale) * fine).clamp(-1, 1)
        return card, enlarge(warped.matte, scale).clamp(0, 1) if matte else None

    def _trusted(self, blend: torch.Tensor, warped: PartWarp) -> torch.Tensor:
        """The learnt blend, raised to `warp_trust` wherever the warp shows the person."""
        if self.config.warp_trust <= 0:
            return blend
        person = warped.masks[:, 1:, 0].sum(1, keepdim=True).clamp(0, 1)  # [B, 1, H, W]
        return torch.maximum(blend, self.config.warp_trust * person.to(blend.dtype))

    def _paint(
        self,
        appearance: Appearance,
        keypoints: torch.Tensor,
        *,
        layout: bool = False,
        carried: bool = False,
        backdrops: Backdrops | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, PartWarp, torch.Tensor, CarriedPixels | None]:
        """(the network's picture, its learnt blend, the warp, the warp's composite, and with
        `carried` where the warp took its person's colours); `backdrops`: see `render`."""
        # The warp has no weights: without gradients wanted through its inputs, it runs
        # without autograd's bookkeeping (training needs none; half the step's memory).
        inputs_need_grad = keypoints.requires_grad or any(
            v.requires_grad for k, v in appearance.items() if k != "codes"
        )
        with torch.set_grad_enabled(inputs_need_grad and torch.is_grad_enabled()):
            warped, pixels = self._warp(appearance, keypoints, layout=layout, carried=carried)
            if backdrops is not None:
                warped = warped.on_backdrop(*backdrops)
            rough = composite(warped)  # [B, 3, H, W]
        masks = warped.masks[:, :, 0]  # [B, K, H, W]
        pose = self.pose_input(keypoints).to(rough.dtype)
        x = torch.cat(
            [rough, warped.holes, warped.background, warped.background_mask, masks, pose], 1
        )
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        codes = appearance["codes"].to(x.dtype)  # [B, K, C]
        style = self.style(codes.flatten(1))
        for block in self.middle:
            x = block(x, style)
        maps = iter(self.style_maps)
        for block, skip in zip(self.up, reversed(skips[:-1]), strict=True):
            x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
            parts = [x, skip]
            if skip.shape[-2] < masks.shape[-2]:  # a style map at every level but full res
                m = F.adaptive_avg_pool2d(masks, skip.shape[-2:])  # [B, K, h, w]
                parts.append(torch.einsum("bkhw,bkc->bchw", m, next(maps)(codes)))
            x = block(torch.cat(parts, 1))
        out = self.head(x)
        return torch.tanh(out[:, :3]), torch.sigmoid(out[:, 3:]), warped, rough, pixels
