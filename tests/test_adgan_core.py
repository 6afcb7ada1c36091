"""The ADGAN generator, discriminator, losses, metrics and the official-checkpoint importer."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from adgan.discriminator import Discriminator, DiscriminatorConfig
from adgan.generators import build_generator, mix_appearance, take
from adgan.importer import ImportMismatch, convert_official, official_config
from adgan.losses import (
    contextual_loss,
    discriminator_gan_loss,
    generator_gan_loss,
    ssim_loss,
)
from adgan.metrics import FIDInception, frechet_distance, inception_score, l1, ssim
from adgan.model import Generator, GeneratorConfig
from adgan.vgg import LAYERS, VGGTrunk
from parsing.labels import component_classes

pytestmark = pytest.mark.filterwarnings("ignore:.*no VGG-19 weights")
TINY = dict(channels=8, code_size=8, mlp_channels=16, res_blocks=2, image_size=(32, 24))


def tiny_generator(**kw) -> Generator:
    return build_generator({"arch": "adgan", **TINY, **kw})


def from_maps(gen: Generator, pose: torch.Tensor, image: torch.Tensor, parsing: torch.Tensor):
    """The generator on pose maps given directly (random maps exercise every weight)."""
    return gen.decode_maps(gen.encode(image, parsing)["codes"], pose)


def random_inputs(b: int, h: int, w: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    pose = torch.rand(b, 18, h, w, generator=g)
    image = torch.rand(b, 3, h, w, generator=g) * 2 - 1
    labels = torch.randint(0, 8, (b, h, w), generator=g)
    return pose, image, F.one_hot(labels, 8).permute(0, 3, 1, 2).float()


def test_generator_has_the_reference_size():
    counts = Generator(GeneratorConfig()).parameter_counts()
    assert counts["trainable"] == 28_774_915  # the reference's ADGen: 28.8 M
    assert counts["frozen"] == 3_505_728  # VGG-19 to relu4_1 (the reference keeps all 20.0 M)
    with pytest.raises(ValueError, match="multiples of 4"):
        GeneratorConfig(image_size=(30, 22))


def test_vgg_trunk_equals_the_full_network_at_its_taps():
    from torchvision.models import vgg19

    torch.manual_seed(0)
    trunk = VGGTrunk(("relu1_2", "relu3_2", "relu4_1"), normalize="none")
    full = vgg19(weights=None).features
    full.load_state_dict(trunk.layers.state_dict(), strict=False)
    x = torch.randn(2, 3, 32, 24)
    taps = trunk(x)
    outs, y = {}, x
    for i, layer in enumerate(full[: LAYERS["relu4_1"] + 1]):
        y = layer(y.clone())
        outs[i] = y
    for name in ("relu1_2", "relu3_2", "relu4_1"):
        assert torch.allclose(taps[name], outs[LAYERS[name]], atol=1e-6)
    assert len(trunk.layers) == LAYERS["relu4_1"] + 1  # nothing computed past the last tap
    assert not any(p.requires_grad for p in trunk.parameters())


@pytest.mark.parametrize("chunk_pixels", [0, 3 * 32 * 24])  # one batch; chunks of 3 of 16
def test_batched_component_encoder_equals_one_component_at_a_time(chunk_pixels):
    torch.manual_seed(0)
    gen = tiny_generator(cpu_chunk_pixels=chunk_pixels).eval()
    _, image, parsing = random_inputs(2, 32, 24)
    codes = gen.encode(image, parsing)["codes"]
    assert codes.shape == (2, 8, 8)
    enc = gen.component_encoder
    for k in range(8):  # the reference's loop: one masked image through everything
        masked = image * parsing[:, k : k + 1]
        taps = enc.vgg(masked)
        x = masked
        for conv, tap in zip(enc.convs, ("relu1_1", "relu2_1", "relu3_1", "relu4_1"), strict=True):
            x = torch.cat([conv(x), taps[tap]], 1)
        one = enc.to_code(x.mean(dim=(2, 3), keepdim=True)).flatten(1)
        assert torch.allclose(codes[:, k], one, atol=1e-5)


def test_generator_shapes_range_and_swap_of_codes():
    torch.manual_seed(0)
    gen = tiny_generator().eval()
    _, image, parsing = random_inputs(2, 32, 24)
    keypoints = torch.rand(2, 18, 2) * torch.tensor([24.0, 32.0])
    with torch.no_grad():
        out = gen(image, parsing, keypoints, keypoints)
        look = gen.encode(image, parsing, keypoints)
        mixed = mix_appearance(take(look, 0), take(look, 1), component_classes("upper"))
        swapped = gen.decode(mixed, keypoints[:1])
    codes, mixed = look["codes"], mixed["codes"]
    assert out.shape == (2, 3, 32, 24) and out.abs().max() <= 1
    assert torch.equal(mixed[0, 5], codes[1, 5]) and torch.equal(mixed[0, :5], codes[0, :5])
    assert not torch.allclose(swapped, out[:1])  # a different top changes the picture
    assert component_classes("lower") == (1, 3) and component_classes("Upper clothes") == (5,)
    with pytest.raises(ValueError, match="valid: background, pants"):
        component_classes("hat")


@pytest.mark.slow
def test_generator_overfits_two_pairs():
    torch.manual_seed(0)
    gen = tiny_generator()
    pose, image, parsing = random_inputs(2, 32, 24)
    coarse = torch.rand(2, 3, 4, 3, generator=torch.Generator().manual_seed(1))
    target = F.interpolate(coarse, size=(32, 24), mode="bilinear") * 2 - 1  # smooth colours
    opt = torch.optim.Adam([p for p in gen.parameters() if p.requires_grad], 3e-3)
    losses = []
    for _ in range(60):
        loss = (from_maps(gen, pose, image, parsing) - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_generator_follows_the_pose():
    """One source person, two target poses, two targets: a figure standing left or right.
    A generator that ignores the pose can do no better than their mean (L1 = half their
    difference); the one we train must."""
    torch.manual_seed(0)
    gen = tiny_generator()
    h, w = 32, 24
    keypoints = torch.tensor([4.0, 2.0]) + torch.rand(18, 2) * torch.tensor([4.0, 28.0])
    poses = torch.stack([keypoints, keypoints + torch.tensor([14.0, 0.0])])  # x: left, right
    pose = gen.pose_input(poses)
    _, image, parsing = random_inputs(1, h, w)
    image, parsing = image.expand(2, -1, -1, -1), parsing.expand(2, -1, -1, -1)
    target = torch.full((2, 3, h, w), -1.0)
    target[0, :, :, 2:10], target[1, :, :, 16:24] = 1.0, 1.0
    pose_blind_best = (target[0] - target[1]).abs().mean().item() / 2
    opt = torch.optim.Adam([p for p in gen.parameters() if p.requires_grad], 3e-3)
    for _ in range(80):
        loss = (from_maps(gen, pose, image, parsing) - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * pose_blind_best


def test_discriminator_is_the_reference_shape():
    d = Discriminator(21, DiscriminatorConfig())
    out = d(torch.rand(2, 21, 64, 44))
    assert out.shape == (2, 256, 16, 11)  # no 1-channel head, as the reference
    assert sum(isinstance(m, torch.nn.Dropout) for m in d.modules()) == 3


def test_gan_losses_by_hand():
    ones, zeros = torch.ones(2, 3), torch.zeros(2, 3)
    assert generator_gan_loss(ones, "lsgan") == 0 and generator_gan_loss(zeros, "lsgan") == 1
    assert discriminator_gan_loss(ones, zeros, "lsgan") == 0
    assert discriminator_gan_loss(zeros, ones, "lsgan") == 1  # 0.5 * (1 + 1)
    assert generator_gan_loss(ones * 2, "hinge") == -2
    assert discriminator_gan_loss(ones * 0.5, -ones, "hinge") == pytest.approx(0.25)


def _contextual_reference(target, generated, sigma=0.5, b=1.0):
    """The published per-image loop (convolution with 1x1 target patches), restated."""
    mean = target.mean(dim=(0, 2, 3), keepdim=True)
    t, g = target - mean, generated - mean
    t, g = t / t.norm(dim=1, keepdim=True), g / g.norm(dim=1, keepdim=True)
    losses = []
    for i in range(t.shape[0]):
        patches = t[i].flatten(1).T[:, :, None, None]  # [P, C, 1, 1]
        cos = F.conv2d(g[i : i + 1], patches)  # [1, P, H, W]
        raw = (1 - cos) / 2
        rel = raw / (raw.min(dim=1, keepdim=True).values + 1e-5)
        w = torch.exp((b - rel) / sigma)
        cx = w / w.sum(dim=1, keepdim=True)
        losses.append(-torch.log(cx.amax(dim=(2, 3)).mean(1)))
    return torch.cat(losses).mean()


def test_contextual_loss_matches_the_reference_loop():
    torch.manual_seed(0)
    a, b = torch.randn(2, 16, 5, 4), torch.randn(2, 16, 5, 4)
    ours = contextual_loss(a, b)
    assert torch.allclose(ours, _contextual_reference(a, b), atol=1e-5)
    assert contextual_loss(a, a) < 1e-3 < ours  # identical features: every match is exact


def test_ssim_matches_scikit_image():
    skimage = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 256, (2, 40, 30, 3), dtype=np.uint8)
    gen = np.clip(ref.astype(int) + rng.integers(-40, 40, ref.shape), 0, 255).astype(np.uint8)
    mask = rng.random((2, 40, 30)) > 0.3
    ours, masked = ssim(ref, gen), ssim(ref, gen, mask)
    for i in range(2):

        def theirs(x, y, g=gen[i]):
            return skimage.structural_similarity(
                x,
                y,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
                channel_axis=2,
                data_range=float(g.max()) - float(g.min()),
            )

        assert ours[i] == pytest.approx(theirs(ref[i], gen[i]), abs=1e-6)
        m = mask[i][..., None]
        assert masked[i] == pytest.approx(theirs(ref[i] * m, gen[i] * m), abs=1e-6)
    assert ssim(ref[0], ref[0]) == pytest.approx(1.0)
    assert l1(np.zeros((1, 2, 2, 3), np.uint8), np.full((1, 2, 2, 3), 51, np.uint8))[0] == (
        pytest.approx(0.2)
    )


def test_frechet_distance_and_inception_score_by_hand():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (4000, 2))
    b = rng.normal(0, 2, (4000, 2)) + np.array([3.0, 0.0])
    # diagonal Gaussians: |mu_a - mu_b|^2 + sum(s_a + s_b - 2 sqrt(s_a s_b))
    sa, sb = a.var(0, ddof=1), b.var(0, ddof=1)
    want = ((a.mean(0) - b.mean(0)) ** 2).sum() + (sa + sb - 2 * np.sqrt(sa * sb)).sum()
    assert frechet_distance(a, b) == pytest.approx(want, rel=0.02)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    uniform = np.full((20, 10), 0.1)
    assert inception_score(uniform, splits=2)[0] == pytest.approx(1.0)
    assert inception_score(np.eye(10), splits=1)[0] == pytest.approx(10.0, rel=1e-6)


@pytest.mark.slow
def test_fid_network_and_lpips_run_without_weights():
    from adgan.metrics import LPIPS

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fid, lp = FIDInception(), LPIPS()
    x = torch.rand(2, 3, 64, 44)
    assert fid(x).shape == (2, 2048)
    assert torch.allclose(lp(x * 2 - 1, x * 2 - 1), torch.zeros(2), atol=1e-6)
    assert (lp(x * 2 - 1, -(x * 2 - 1)) > 0).all()
    with pytest.raises(FileNotFoundError, match="no such file"):
        FIDInception("/nonexistent/pt_inception.pth")


# -- the official checkpoint ------------------------------------------------------------

VGG_CONVS = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)
VGG_WIDTHS = (64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512)


def official_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict with the official ADGen's key names and shapes (random values)."""
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}

    def conv(name, cout, cin, k):
        sd[f"{name}.weight"] = torch.randn(cout, cin, k, k, generator=g) * (
            0.5 / (cin * k * k) ** 0.5
        )
        sd[f"{name}.bias"] = torch.randn(cout, generator=g) * 0.05

    cin = 3
    for i, w in zip(VGG_CONVS, VGG_WIDTHS, strict=True):
        conv(f"enc_style.vgg.{i}", w, cin, 3)
        cin = w
    conv("enc_style.conv1.conv", 64, 3, 7)
    conv("enc_style.conv2.conv", 128, 128, 4)
    conv("enc_style.conv3.conv", 256, 256, 4)
    conv("enc_style.conv4.conv", 512, 512, 4)
    conv("enc_style.model.1", 64, 1024, 1)
    conv("enc_content.model.0.conv", 64, 18, 7)
    conv("enc_content.model.1.conv", 128, 64, 4)
    conv("enc_content.model.2.conv", 256, 128, 4)
    for b in range(8):
        for j in range(2):
            conv(f"enc_content.model.3.model.{b}.model.{j}.conv", 256, 256, 3)
            conv(f"dec.model.0.model.{b}.model.{j}.conv", 256, 256, 3)
            sd[f"dec.model.0.model.{b}.model.{j}.norm.running_mean"] = torch.zeros(256)
            sd[f"dec.model.0.model.{b}.model.{j}.norm.running_var"] = torch.ones(256)
    conv("dec.model.2.conv", 128, 256, 5)
    conv("dec.model.4.conv", 64, 128, 5)
    conv("dec.model.5.conv", 3, 64, 7)
    for i, c in ((2, 128), (4, 64)):
        sd[f"dec.model.{i}.norm.gamma"] = torch.rand(c, generator=g)
        sd[f"dec.model.{i}.norm.beta"] = torch.randn(c, generator=g) * 0.1
    for name, (o, i) in {
        "fc.fc": (512, 512),
        "mlp.model.0.fc": (256, 512),
        "mlp.model.1.fc": (256, 256),
        "mlp.model.2.fc": (8192, 256),
    }.items():
        sd[f"{name}.weight"] = torch.randn(o, i, generator=g) / i**0.5
        sd[f"{name}.bias"] = torch.randn(o, generator=g) * 0.1
    return sd


def reference_forward(sd, pose, image, parsing):
    """The official ADGen's forward written directly on its state dict (its module
    semantics: reflection padding, instance norm, AdaIN parameters in module order with
    the bias first, MUNIT layer norm with the unbiased std, nearest upsampling)."""

    def conv(x, name, stride=1):
        w = sd[f"{name}.weight"]
        pad = (w.shape[-1] - 1) // 2 if stride == 1 else 1
        return F.conv2d(F.pad(x, [pad] * 4, mode="reflect"), w, sd[f"{name}.bias"], stride)

    x = F.relu(F.instance_norm(conv(pose, "enc_content.model.0.conv")))
    x = F.relu(F.instance_norm(conv(x, "enc_content.model.1.conv", 2)))
    x = F.relu(F.instance_norm(conv(x, "enc_content.model.2.conv", 2)))
    for b in range(8):
        y = F.relu(F.instance_norm(conv(x, f"enc_content.model.3.model.{b}.model.0.conv")))
        x = x + F.instance_norm(conv(y, f"enc_content.model.3.model.{b}.model.1.conv"))
    codes = []
    for k in range(8):
        xi = image * parsing[:, k : k + 1]
        taps, y = {}, xi
        for i, c in enumerate(VGG_CONVS[:9]):
            if i in (2, 4, 8):  # max pools before conv2_1, conv3_1, conv4_1
                y = F.max_pool2d(y, 2)
            y = F.relu(
                F.conv2d(
                    y, sd[f"enc_style.vgg.{c}.weight"], sd[f"enc_style.vgg.{c}.bias"], padding=1
                )
            )
            taps[c] = y
        s = F.relu(conv(xi, "enc_style.conv1.conv"))
        s = torch.cat([s, taps[0]], 1)
        for n, tap in ((2, 5), (3, 10), (4, 19)):
            s = torch.cat([F.relu(conv(s, f"enc_style.conv{n}.conv", 2)), taps[tap]], 1)
        s = F.conv2d(
            s.mean(dim=(2, 3), keepdim=True),
            sd["enc_style.model.1.weight"],
            sd["enc_style.model.1.bias"],
        )
        codes.append(s.flatten(1))
    style = F.relu(F.linear(torch.cat(codes, 1), sd["fc.fc.weight"], sd["fc.fc.bias"]))
    p = F.relu(F.linear(style, sd["mlp.model.0.fc.weight"], sd["mlp.model.0.fc.bias"]))
    p = F.relu(F.linear(p, sd["mlp.model.1.fc.weight"], sd["mlp.model.1.fc.bias"]))
    p = F.linear(p, sd["mlp.model.2.fc.weight"], sd["mlp.model.2.fc.bias"])
    offset = 0
    for b in range(8):
        y = x
        for j in range(2):
            y = conv(y, f"dec.model.0.model.{b}.model.{j}.conv")
            bias, scale = p[:, offset : offset + 256], p[:, offset + 256 : offset + 512]
            offset += 512
            y = F.instance_norm(y) * scale[:, :, None, None] + bias[:, :, None, None]
            if j == 0:
                y = F.relu(y)
        x = x + y
    for i in (2, 4):
        x = conv(F.interpolate(x, scale_factor=2, mode="nearest"), f"dec.model.{i}.conv")
        flat = x.flatten(1)
        x = (x - flat.mean(1).view(-1, 1, 1, 1)) / (flat.std(1).view(-1, 1, 1, 1) + 1e-5)
        x = F.relu(
            x * sd[f"dec.model.{i}.norm.gamma"].view(1, -1, 1, 1)
            + sd[f"dec.model.{i}.norm.beta"].view(1, -1, 1, 1)
        )
    return torch.tanh(conv(x, "dec.model.5.conv"))


@pytest.mark.slow
def test_official_checkpoint_imports_and_matches_its_forward():
    sd = {f"module.{k}": v for k, v in official_state_dict().items()}  # DataParallel save
    gen = Generator(official_config(image_size=(32, 24)))
    gen.load_state_dict(convert_official(sd, gen))
    gen.eval()
    pose, image, parsing = random_inputs(2, 32, 24, seed=3)
    with torch.no_grad():
        ours = from_maps(gen, pose, image, parsing)
        theirs = reference_forward(
            {k.removeprefix("module."): v for k, v in sd.items()}, pose, image, parsing
        )
    assert ours.std() > 0.05  # not a saturated or constant picture
    assert torch.allclose(ours, theirs, atol=1e-4)


def test_importer_names_what_does_not_fit():
    sd = official_state_dict()
    gen = Generator(official_config(image_size=(32, 24)))
    broken = dict(sd)
    broken["mlp.model.2.fc.weight"] = torch.zeros(4096, 256)  # a 4-block decoder's MLP
    broken["enc_style.extra.weight"] = torch.zeros(1)
    del broken["fc.fc.bias"]
    with pytest.raises(ImportMismatch) as err:
        convert_official(broken, gen)
    text = str(err.value)
    assert "mlp.model.2.fc.weight (4096, 256) -> mlp.4.weight (8192, 256)" in text
    assert "enc_style.extra.weight" in text and "fuse.0.bias" in text


def test_ssim_loss_is_fp32_under_bf16_autocast():
    """Its variances are differences of near-equal means: in bf16 they are noise."""
    torch.manual_seed(0)
    target = F.avg_pool2d(torch.rand(2, 3, 64, 44) * 2 - 1, 9, 1, 4)  # smooth, photo-like
    generated = (target + 0.02 * torch.randn_like(target)).requires_grad_()
    plain = ssim_loss(generated, target)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half = ssim_loss(generated, target)
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, plain)
    half.backward()
    assert torch.isfinite(generated.grad).all()
