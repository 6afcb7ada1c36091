"""The part-warp generator: the warp's evidence in, a picture out, swaps by appearance rows."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from adgan.data import PairDataset
from adgan.generators import Backdrops, build_generator, enlarge, mix_appearance, take
from adgan.losses import LossConfig
from adgan.partwarp import PartWarpGenerator, person_rows, warp_rows
from adgan.task import AdganConfig, AdganOptimConfig, AdganTask
from adgan.warp import WarpConfig, composite
from common.training import RunContext, TrainConfig
from parsing.labels import ADGAN_INDEX, component_classes

SIZE = (64, 44)
TINY = {
    "arch": "partwarp",
    "image_size": list(SIZE),
    "channels": [8, 16, 16],
    "encoder_channels": [8, 16],
    "code_size": 8,
    "style_channels": 4,
    "res_blocks": 1,
}


@pytest.fixture(scope="module")
def pairs(synth_dataset):
    data = PairDataset(synth_dataset, "train", SIZE)
    items = [data[i] for i in range(4)]
    keys = ("source", "source_parsing", "source_keypoints", "target_keypoints", "target")
    return {k: torch.stack([it[k] for it in items]) for k in keys}


def run(gen, b):
    return gen(b["source"], b["source_parsing"], b["source_keypoints"], b["target_keypoints"])


def test_shapes_range_and_it_starts_from_the_warp(pairs):
    torch.manual_seed(0)
    gen = build_generator(TINY).eval()
    assert isinstance(gen, PartWarpGenerator)
    with torch.no_grad():
        look = gen.encode(pairs["source"], pairs["source_parsing"], pairs["source_keypoints"])
        out, warped, blend = gen.render(look, pairs["target_keypoints"])
    assert out.shape == (4, 3, *SIZE) and out.abs().max() <= 1
    assert all(v.shape[:2] == (4, 8) for v in look.values())
    assert blend.min() > 0.5  # the initial blend trusts the warp...
    rough = composite(warped)
    assert (out - rough).abs().mean() < 0.5 * (out - pairs["target"]).abs().mean() + 0.1


@pytest.mark.parametrize("arch", ["partwarp", "warponly"])
def test_the_matte_is_the_warps_with_the_same_picture(pairs, arch):
    torch.manual_seed(0)
    gen = build_generator(TINY if arch == "partwarp" else {"arch": arch, "image_size": SIZE})
    gen.eval()
    with torch.no_grad():
        look = gen.encode(pairs["source"], pairs["source_parsing"], pairs["source_keypoints"])
        picture, matte = gen.decode_with_matte(look, pairs["target_keypoints"])
        warped = warp_rows(look, pairs["target_keypoints"], gen.config.warp, layout=True)
    torch.testing.assert_close(picture, gen.decode(look, pairs["target_keypoints"]))
    torch.testing.assert_close(matte, warped.matte)
    assert matte.shape == (4, 1, *SIZE) and matte.min() >= 0 and matte.max() <= 1


@pytest.mark.parametrize("arch", ["partwarp", "warponly"])
def test_a_frame_reaches_the_background_of_the_source_row(pairs, arch):
    """`with_frame`: the letterbox of the source's crop (frame 0) is no background, through
    a swap's mix too (the background is the source's)."""
    gen = build_generator(TINY if arch == "partwarp" else {"arch": arch, "image_size": SIZE})
    frame = torch.ones(4, *SIZE)
    frame[:, :, -6:] = 0  # past the photo's right edge
    look = gen.encode(pairs["source"], pairs["source_parsing"], pairs["source_keypoints"])
    framed = gen.with_frame(look, frame)
    donor = gen.with_frame(look, torch.ones(4, *SIZE)).copy()
    mixed = mix_appearance(framed, take(donor, slice(0, 4)), component_classes("upper"))
    for appearance in (framed, mixed):
        warped = warp_rows(appearance, pairs["target_keypoints"], gen.config.warp)
        assert (warped.background_mask[..., -6:] == 0).all()
    plain = warp_rows(look, pairs["target_keypoints"], gen.config.warp)
    assert (plain.background_mask[..., -6:] > 0).any()


@pytest.mark.parametrize("arch", ["partwarp", "warponly"])
def test_a_card_told_its_backdrop_reads_that_colour_as_its_background(pairs, arch):
    """`Backdrops`: the rows told a plain colour warp onto it (background seen everywhere,
    that colour), the network reads it, and the matte stays the warp's; the other rows are
    the cards they were."""
    torch.manual_seed(0)
    gen = build_generator(TINY if arch == "partwarp" else {"arch": arch, "image_size": SIZE})
    gen.eval()
    kp = pairs["target_keypoints"]
    green = torch.tensor([-1.0, 1.0, -1.0]).expand(4, 3)
    used = torch.tensor([True, False, True, False])
    with torch.no_grad():
        look = gen.encode(pairs["source"], pairs["source_parsing"], pairs["source_keypoints"])
        scene, scene_matte = gen.decode_with_matte(look, kp)
        told, told_matte = gen.decode_with_matte(look, kp, Backdrops(green, used))
        warped = warp_rows(look, kp, gen.config.warp, layout=True)
    on = warped.on_backdrop(green, used)
    assert (on.background[used] == green[0, :, None, None]).all()
    assert (on.layers[used, 0] == green[0, :, None, None]).all()
    assert (on.background_mask[used] == 1).all()
    for field in ("background", "background_mask", "layers", "masks", "holes"):
        torch.testing.assert_close(getattr(on, field)[~used], getattr(warped, field)[~used])
    torch.testing.assert_close(told_matte, scene_matte)
    torch.testing.assert_close(told[~used], scene[~used])
    assert (told[used] - scene[used]).abs().mean() > 0.01
    if arch == "warponly":  # no network: where the warp shows background, the colour itself
        background = on.masks[:, 0, 0] > 0.999  # [B, H, W]
        shown = told.permute(0, 2, 3, 1)[used][background[used]]
        assert len(shown) > 100
        torch.testing.assert_close(shown, green[0].expand_as(shown), atol=5e-3, rtol=0)


def test_a_batch_equals_one_at_a_time(pairs):
    torch.manual_seed(0)
    gen = build_generator(TINY).eval()
    with torch.no_grad():
        whole = run(gen, pairs)
        single = torch.cat(
            [run(gen, {k: v[i : i + 1] for k, v in pairs.items()}) for i in range(4)]
        )
    torch.testing.assert_close(whole, single, atol=1e-4, rtol=1e-4)


def test_a_swap_takes_the_donors_layer_and_code(pairs):
    torch.manual_seed(0)
    gen = build_generator(TINY).eval()
    upper = component_classes("upper")
    with torch.no_grad():
        look = gen.encode(pairs["source"], pairs["source_parsing"], pairs["source_keypoints"])
        own, donor = take(look, 0), take(look, 2)
        mixed = mix_appearance(own, donor, upper)
        target = pairs["target_keypoints"][:1]
        base, swapped = gen.warp(own, target), gen.warp(mixed, target)
        from_donor = gen.warp(donor, target)
        c = upper[0]
        torch.testing.assert_close(swapped.layers[:, c], from_donor.layers[:, c])
        torch.testing.assert_close(swapped.layers[:, 4], base.layers[:, 4])  # own face
        assert torch.equal(mixed["codes"][0, c], donor["codes"][0, c])
        assert not torch.allclose(gen.decode(mixed, target), gen.decode(own, target))


def test_a_donor_in_the_forward_pass_is_a_swap_per_sample(pairs):
    """Training on swaps: `forward(..., donor=(image, parsing, keypoints, take))` is, for
    each sample, the swap of the components it takes (none: the plain transfer)."""
    torch.manual_seed(0)
    gen = build_generator(TINY).eval()
    b = pairs
    upper = list(component_classes("upper"))
    chosen = torch.zeros(4, 8, dtype=torch.bool)
    chosen[0, upper] = True  # sample 0 takes its top from sample 0's donor; the rest nothing
    donor = (b["source"].flip(0), b["source_parsing"].flip(0), b["source_keypoints"].flip(0))
    with torch.no_grad():
        out = gen(
            *(b[k] for k in ("source", "source_parsing", "source_keypoints")),
            b["target_keypoints"],
            (*donor, chosen),
        )
        own = gen.encode(b["source"], b["source_parsing"], b["source_keypoints"])
        other = gen.encode(*donor)
        swapped = gen.decode(
            mix_appearance(take(own, 0), take(other, 0), tuple(upper)), b["target_keypoints"][:1]
        )
        plain = run(gen, b)
    torch.testing.assert_close(out[:1], swapped, atol=1e-5, rtol=0)
    torch.testing.assert_close(out[1:], plain[1:], atol=1e-5, rtol=0)
    assert (out[0] - plain[0]).abs().max() > 1e-3


def test_a_swapped_garment_covers_skin_and_uncovers_the_body(pairs):
    """Trousers over bare legs hide them; a lower garment swapped for none leaves the legs
    it covered as holes for the network to paint, not background."""
    pants, legs = ADGAN_INDEX["pants"], ADGAN_INDEX["legs"]
    labels = pairs["source_parsing"].argmax(1)
    n = int(torch.argmax((labels == pants).sum((1, 2))))  # the person showing most trousers
    image, kp = pairs["source"][n : n + 1], pairs["source_keypoints"][n : n + 1]
    own = labels[n : n + 1]
    shopper = person_rows(image, own, kp, 8)
    lower = component_classes("lower")

    def swapped(donor_labels):
        donor = person_rows(image, donor_labels, kp, 8)
        return warp_rows(mix_appearance(shopper, donor, lower), kp, WarpConfig())

    base = warp_rows(shopper, kp, WarpConfig())
    for w in (base, swapped(torch.where(own == pants, legs, own))):
        total = w.masks.sum(1) + w.holes
        torch.testing.assert_close(total, torch.ones_like(total), atol=1e-4, rtol=0)
    # a donor in no lower garment: where the shopper's trousers were, the body shows
    bare = swapped(torch.where(own == pants, legs, own))
    was = base.masks[0, pants, 0] > 0.9
    assert was.sum() > 20
    assert bare.masks[0, pants, 0][was].max() < 0.05
    assert bare.holes[0, 0][was].mean() > 0.9
    assert bare.masks[0, 0, 0][was].mean() < 0.05  # not background
    # a donor whose trousers reach over what the shopper shows as bare legs
    covered = swapped(torch.where(own == legs, pants, own))
    skin = base.masks[0, legs, 0] > 0.9
    assert skin.sum() > 5, "the test wants a person showing trousers and bare legs"
    assert covered.masks[0, legs, 0][skin].max() < 0.1
    assert covered.masks[0, pants, 0][skin].mean() > 0.9


def _long_trousers(synth_dataset):
    """The training photo with the most trousers below the knees, hips and knees seen."""
    data = PairDataset(synth_dataset, "train", SIZE)
    pants, rows = ADGAN_INDEX["pants"], torch.arange(SIZE[0])[:, None]

    def shins(item) -> int:
        kp, labels = item["source_keypoints"], item["source_parsing"].argmax(0)
        if not (kp[[8, 9, 11, 12]] >= 0).all():
            return -1
        return int(((labels == pants) & (rows > kp[[9, 12], 1].mean() + 2)).sum())

    return max((data[i] for i in range(len(data))), key=shins)


def test_trousers_cut_by_the_donors_photo_go_on_down_the_legs(synth_dataset):
    """A donor photo cut at mid-thigh: the swapped trousers go on down the shopper's shins
    (as trousers do); a skirt cut the same way is left as seen (its length is unknown)."""
    pants, skirt = ADGAN_INDEX["pants"], ADGAN_INDEX["skirt"]
    person = _long_trousers(synth_dataset)
    image, kp = person["source"][None], person["source_keypoints"][None]
    own = person["source_parsing"].argmax(0)[None]
    h = SIZE[0]
    hips, knees = kp[0, [8, 11], 1].mean(), kp[0, [9, 12], 1].mean()
    shift = int(h - (hips + knees) / 2)  # mid-thigh lands on the photo's bottom edge
    cut_image = torch.roll(image, shift, dims=2)
    cut_image[:, :, :shift] = image[:, :, :1]
    cut_labels = torch.roll(own, shift, dims=1)
    cut_labels[:, :shift] = 0
    cut_kp = kp.clone()
    cut_kp[..., 1] += shift
    cut_kp[(cut_kp[..., 1] >= h) | (kp[..., 0] < 0)] = -1.0
    assert (cut_labels[:, -1] == pants).any()
    shopper = person_rows(image, own, kp, 8)

    def swapped(donor_labels):
        donor = person_rows(cut_image, donor_labels, cut_kp, 8)
        return warp_rows(
            mix_appearance(shopper, donor, component_classes("lower")), kp, WarpConfig()
        )

    base = warp_rows(shopper, kp, WarpConfig())
    rows = torch.arange(h)[:, None].expand(h, SIZE[1])
    shins = (base.masks[0, pants, 0] > 0.9) & (rows > knees + 2)
    assert shins.sum() > 5, "the test wants a person in long trousers"
    trousers = swapped(cut_labels)
    assert trousers.masks[0, pants, 0][shins].mean() > 0.8
    # a real photo's crop goes on below the photo, letterboxed: no knee, no ankle says it
    letterboxed = cut_labels.clone()
    letterboxed[:, -4:] = 0
    assert swapped(letterboxed).masks[0, pants, 0][shins].mean() > 0.8
    shorts = letterboxed.clone()  # ... but shorts above bare legs end where they end
    band = shorts[:, -10:-4]
    band[band == pants] = ADGAN_INDEX["legs"]
    assert swapped(shorts).masks[0, pants, 0][shins].mean() < 0.2
    as_skirt = swapped(torch.where(cut_labels == pants, skirt, cut_labels))
    assert as_skirt.masks[0, skirt, 0][shins].mean() < 0.2


def test_warp_trust_shows_the_warp_wherever_it_has_the_person(pairs):
    torch.manual_seed(0)
    trusting = build_generator({**TINY, "warp_trust": 1.0}).eval()
    plain = build_generator(TINY).eval()
    plain.load_state_dict(trusting.state_dict())
    with torch.no_grad():
        look = trusting.encode(pairs["source"], pairs["source_parsing"], pairs["source_keypoints"])
        out, warped, _ = trusting.render(look, pairs["target_keypoints"])
        learnt = plain.render(look, pairs["target_keypoints"])[0]
    cover = warped.masks[:, 1:, 0].sum(1)  # [B, H, W]: how much the warp shows the person
    person, away = cover > 0.999, cover < 1e-3
    assert person.sum() > 100 and away.sum() > 100
    rough = composite(warped).permute(0, 2, 3, 1)
    shown, as_learnt = out.permute(0, 2, 3, 1), learnt.permute(0, 2, 3, 1)
    torch.testing.assert_close(shown[person], rough[person], atol=3e-3, rtol=0)  # 2 * 0.001
    assert (as_learnt[person] - rough[person]).abs().max() > 1e-2  # the learnt blend differs
    torch.testing.assert_close(shown[away], as_learnt[away])  # elsewhere the learnt blend


def test_gradients_reach_the_network_and_the_source(pairs):
    gen = build_generator(TINY)
    source = pairs["source"].clone().requires_grad_(True)
    out = gen(source, pairs["source_parsing"], pairs["source_keypoints"], pairs["target_keypoints"])
    (out - pairs["target"]).abs().mean().backward()
    assert source.grad is not None and source.grad.abs().sum() > 0
    for name, p in gen.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert gen.codes.to_code.weight.grad.abs().sum() > 0  # the codes matter


@pytest.mark.slow
def test_a_tiny_model_overfits_a_few_pairs(pairs):
    torch.manual_seed(0)
    gen = build_generator(TINY)
    opt = torch.optim.Adam(gen.parameters(), 3e-3)
    losses = []
    for _ in range(60):
        loss = (run(gen, pairs) - pairs["target"]).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]
    assert np.mean(losses[-5:]) < np.mean(losses[:5])


def test_under_bf16_autocast_the_warp_stays_fp32(pairs):
    """A GPU or an AMX CPU runs the network in bf16; the geometry must not follow (bf16
    puts a coordinate at 256 rows a pixel off, and linalg.solve refuses it)."""
    torch.manual_seed(0)
    gen = build_generator(TINY).eval()
    inputs = (pairs["source"], pairs["source_parsing"], pairs["source_keypoints"])
    with torch.no_grad():
        look = gen.encode(*inputs)
        plain = composite(gen.warp(look, pairs["target_keypoints"]))
        picture = run(gen, pairs)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            warped = gen.warp(gen.encode(*inputs), pairs["target_keypoints"])
            half = run(gen, pairs)
    rough = composite(warped)
    assert rough.dtype == torch.float32
    torch.testing.assert_close(rough, plain)
    assert (half.float() - picture).abs().max() < 0.05


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
def test_on_cuda_the_generator_draws_what_it_draws_on_the_cpu(pairs, channels_last):
    """The training loop hands a GPU its batches channels_last and runs under bf16
    autocast: neither may change the picture beyond bf16's rounding."""
    torch.manual_seed(0)
    gen = build_generator(TINY).eval()
    with torch.no_grad():
        expected = run(gen, pairs)
        gen = gen.cuda()
        batch = {k: v.cuda() for k, v in pairs.items()}
        if channels_last:
            gen = gen.to(memory_format=torch.channels_last)
            batch = {
                k: v.contiguous(memory_format=torch.channels_last) if v.ndim == 4 else v
                for k, v in batch.items()
            }
        torch.testing.assert_close(run(gen, batch).cpu(), expected, atol=1e-3, rtol=1e-3)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            half = run(gen, batch).float().cpu()
    assert (half - expected).abs().max() < 0.05


def _train_losses(pairs: dict[str, torch.Tensor], ctx: RunContext, steps: int) -> np.ndarray:
    """The training loop's own step (L1 + SSIM, the GPU config's losses) on one fixed
    batch, from one seed's weights: [steps, 2] L1 and 1 - SSIM."""
    torch.manual_seed(0)
    task = AdganTask(
        AdganConfig(
            model=dict(TINY),
            loss=LossConfig(l1=1.0, ssim=1.0, perceptual=0.0, contextual=0.0, adversarial=0.0),
            optim=AdganOptimConfig(lr=1e-3, beta1=0.9),
            train=TrainConfig(steps=steps),
        )
    )
    task.build(ctx)
    batch = ctx.to_device(dict(pairs))
    losses = []
    for _ in range(steps):
        stats = task.train_step(batch, ctx)
        losses.append([stats["l1"].item(), stats["ssim"].item()])
    return np.array(losses)


BF16_CONTEXTS = [
    pytest.param("cpu", id="cpu"),
    pytest.param(
        "cuda",
        id="cuda",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
    ),
]


@pytest.mark.parametrize("device", BF16_CONTEXTS)
def test_training_under_bf16_autocast_follows_fp32(pairs, tmp_path, device):
    """What a GPU (and an AMX CPU) trains with, bf16 autocast and channels_last, learns as
    fp32 does: a GPU run once learnt nothing (L1 0.42 where fp32 reads 0.14) through an SSIM
    loss that autocast ran in bf16."""
    steps = 40
    alone = {"rank": 0, "world": 1, "local_rank": 0, "run_dir": tmp_path}
    plain = RunContext(torch.device("cpu"), amp_dtype=None, channels_last=False, **alone)
    half = RunContext(torch.device(device), amp_dtype=torch.bfloat16, channels_last=True, **alone)
    reference, losses = _train_losses(pairs, plain, steps), _train_losses(pairs, half, steps)
    assert np.isfinite(losses).all()
    assert reference[-5:].mean(0).sum() < 0.9 * reference[:5].mean(0).sum()  # fp32 learns
    np.testing.assert_allclose(losses[-5:].mean(0), reference[-5:].mean(0), rtol=0.05)


def _fine_source(source: torch.Tensor) -> torch.Tensor:
    """The source as a photo read at twice the size would show it: the same picture, plus
    a one-pixel checker that the network-size crop cannot hold (it averages out there)."""
    big = enlarge(source, 2)
    checker = (torch.arange(big.shape[-2])[:, None] + torch.arange(big.shape[-1])) % 2
    return (big + 0.3 * (2 * checker - 1)).clamp(-1, 1)


def _checker_energy(image: torch.Tensor) -> torch.Tensor:
    """[B, H, W] how far each pixel lies from the mean of its 2x2 block (0 where smooth)."""
    blocks = F.avg_pool2d(image, 2)
    return (image - enlarge(blocks, 2, "nearest")).abs().mean(1)


def test_a_larger_card_carries_the_photo_at_its_size_and_agrees_with_the_small_one(pairs):
    torch.manual_seed(0)
    gen = build_generator({**TINY, "warp_trust": 1.0}).eval()
    detail = gen.detail_rows(_fine_source(pairs["source"]))
    with torch.no_grad():
        look = gen.encode(pairs["source"], pairs["source_parsing"], pairs["source_keypoints"])
        for kp in (pairs["target_keypoints"], pairs["source_keypoints"]):
            small = gen.decode(look, kp)
            card, matte = gen.render_card(look, kp, scale=2, detail=detail)
            enlarged, _ = gen.render_card(look, kp, scale=2)  # no detail: the small one enlarged
            assert card.shape == (4, 3, 2 * SIZE[0], 2 * SIZE[1]) and matte is None
            assert card.abs().max() <= 1
            torch.testing.assert_close(enlarged, enlarge(small, 2, "bicubic").clamp(-1, 1))
            # at the small card's size it is the small card (the checker averages out)
            assert (F.avg_pool2d(card, 2) - small).abs().mean() < 0.02
        # on the person's own pose the warp moves nothing: where it shows the person, the
        # card shows the photo's finer detail, which the small card enlarged cannot
        shown = gen.warp(look, kp).masks[:, 1:, 0].sum(1, keepdim=True)
    person = enlarge(shown, 2)[:, 0] > 0.999  # [B, 2H, 2W]
    assert person.sum() > 400
    assert _checker_energy(card)[person].mean() > 0.2
    assert _checker_energy(enlarged)[person].mean() < 0.05


def test_a_larger_card_takes_a_swapped_garment_from_the_donors_photo(pairs):
    torch.manual_seed(0)
    gen = build_generator({**TINY, "warp_trust": 1.0}).eval()
    kp = pairs["target_keypoints"]
    upper = component_classes("upper")
    flipped = {k: v.flip(0) for k, v in pairs.items()}  # each sample's donor: another person
    keys = ("source", "source_parsing", "source_keypoints")
    with torch.no_grad():
        look, donor = (gen.encode(*(b[k] for k in keys)) for b in (pairs, flipped))
        swapped = mix_appearance(look, donor, upper)
        plain = gen.detail_rows(enlarge(pairs["source"], 2))  # no finer detail than the crop
        checked = gen.detail_rows(_fine_source(flipped["source"]))  # the donor's, checked
        small, small_matte = gen.decode_with_matte(swapped, kp)
        card, matte = gen.render_card(
            swapped, kp, scale=2, detail=mix_appearance(plain, checked, upper), matte=True
        )
        shown = gen.warp(swapped, kp).masks[:, :, 0]  # [B, K, H, W]
    assert (gen.decode(look, kp) - small).abs().mean() > 0.02  # the swap changes the card
    assert (F.avg_pool2d(card, 2) - small).abs().mean() < 0.02  # the same swap, larger
    # the donor's top carries the donor's photo's detail; the person's own classes do not
    top = enlarge(shown[:, list(upper)].sum(1, keepdim=True), 2)[:, 0] > 0.999
    rest = enlarge(shown[:, [c for c in range(1, 8) if c not in upper]].sum(1, keepdim=True), 2)
    own = rest[:, 0] > 0.999
    assert top.sum() > 100 and own.sum() > 100
    assert _checker_energy(card)[top].mean() > 0.1
    assert _checker_energy(card)[own].mean() < 0.05
    assert matte.shape == (4, 1, 2 * SIZE[0], 2 * SIZE[1])
    torch.testing.assert_close(matte, enlarge(small_matte, 2).clamp(0, 1))
