"""The SCHP LIP importer: public key names and shapes, the public forward, the merge to the
8 ADGAN classes, and the parser registry."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from common.checkpoint import CheckpointError, save_checkpoint
from parsing.labels import LIP_TO_ADGAN
from parsing.model import parser_from_checkpoint
from parsing.predict import DensePredictor
from parsing.schp import SCHPConfig, SCHPNet, import_public, main, public_name

RESNET101 = (3, 4, 23, 3)
TINY = (2, 1, 2, 2)  # every kind of block, few of them


def public_shapes(blocks=RESNET101) -> dict[str, tuple[int, ...]]:
    """Key names and shapes of `exp-schp-201908261155-lip.pth`'s state dict (without its
    `module.` prefix), written out from the public `networks/AugmentCE2P.py` (ResNet with a
    deep stem, PSP, edge, decoder and `fushion` branches; InPlace-ABN batch norms with weight,
    bias, running_mean, running_var), independently of our module."""
    sd: dict[str, tuple[int, ...]] = {}

    def conv(name, cin, cout, k, bias=False):
        sd[f"{name}.weight"] = (cout, cin, k, k)
        if bias:
            sd[f"{name}.bias"] = (cout,)

    def bn(name, c):
        for p in ("weight", "bias", "running_mean", "running_var"):
            sd[f"{name}.{p}"] = (c,)

    for i, (cin, cout) in enumerate(((3, 64), (64, 64), (64, 128)), 1):
        conv(f"conv{i}", cin, cout, 3)
        bn(f"bn{i}", cout)
    inplanes = 128
    for layer, (planes, n) in enumerate(zip((64, 128, 256, 512), blocks, strict=True), 1):
        for b in range(n):
            p = f"layer{layer}.{b}"
            conv(f"{p}.conv1", inplanes, planes, 1)
            bn(f"{p}.bn1", planes)
            conv(f"{p}.conv2", planes, planes, 3)
            bn(f"{p}.bn2", planes)
            conv(f"{p}.conv3", planes, planes * 4, 1)
            bn(f"{p}.bn3", planes * 4)
            if b == 0:
                conv(f"{p}.downsample.0", inplanes, planes * 4, 1)
                bn(f"{p}.downsample.1", planes * 4)
            inplanes = planes * 4
    for s in range(4):
        conv(f"context_encoding.stages.{s}.1", 2048, 512, 1)
        bn(f"context_encoding.stages.{s}.2", 512)
    conv("context_encoding.bottleneck.0", 2048 + 4 * 512, 512, 3)
    bn("context_encoding.bottleneck.1", 512)
    for i, cin in enumerate((256, 512, 1024), 1):
        conv(f"edge.conv{i}.0", cin, 256, 1)
        bn(f"edge.conv{i}.1", 256)
    conv("edge.conv4", 256, 2, 3, bias=True)
    conv("edge.conv5", 6, 2, 1, bias=True)
    conv("decoder.conv1.0", 512, 256, 1)
    bn("decoder.conv1.1", 256)
    conv("decoder.conv2.0", 256, 48, 1)
    bn("decoder.conv2.1", 48)
    conv("decoder.conv3.0", 304, 256, 1)
    bn("decoder.conv3.1", 256)
    conv("decoder.conv3.2", 256, 256, 1)
    bn("decoder.conv3.3", 256)
    conv("decoder.conv4", 256, 20, 1, bias=True)
    conv("fushion.0", 1024, 256, 1)
    bn("fushion.1", 256)
    conv("fushion.3", 256, 20, 1, bias=True)
    return sd


def public_state_dict(blocks=RESNET101, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random values in the public layout: convolutions scaled by their fan-in, batch-norm
    weights of both signs (InPlace-ABN scales by their absolute value)."""
    gen = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape in public_shapes(blocks).items():
        if len(shape) == 4:
            value = torch.randn(shape, generator=gen) / (shape[1] * shape[2] * shape[3]) ** 0.5
        elif key.endswith("running_var"):
            value = torch.rand(shape, generator=gen) + 0.5
        elif key.endswith("running_mean") or key.endswith("bias"):
            value = torch.randn(shape, generator=gen) * 0.1
        else:  # a batch norm's weight
            value = torch.randn(shape, generator=gen) * 0.6
        sd[key] = value
    return sd


def write_public(path, sd) -> None:
    """As the release stores it: a checkpoint dict, DataParallel's `module.` prefix."""
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}}, path)


def reference_forward(sd, rgb, blocks):
    """The public forward (AugmentCE2P `ResNet.forward`, after `simple_extractor.py`'s BGR
    read and Normalize) written directly on its state dict: (decoder parsing, fusion
    parsing, edge), each at a quarter of the input's resolution."""

    def abn(x, name, act):  # InPlace-ABN: |weight| + eps, then leaky ReLU 0.01 or none
        x = F.batch_norm(
            x,
            sd[f"{name}.running_mean"],
            sd[f"{name}.running_var"],
            sd[f"{name}.weight"].abs() + 1e-5,
            sd[f"{name}.bias"],
            False,
            0.0,
            1e-5,
        )
        return {"leaky": lambda t: F.leaky_relu(t, 0.01), "relu": F.relu, "none": lambda t: t}[act](
            x
        )

    def conv(x, name, stride=1, dilation=1):
        w = sd[f"{name}.weight"]
        pad = dilation * (w.shape[-1] // 2)
        return F.conv2d(x, w, sd.get(f"{name}.bias"), stride, pad, dilation)

    def up(x, size):
        return F.interpolate(x, size=size, mode="bilinear", align_corners=True)

    mean = torch.tensor([0.406, 0.456, 0.485]).view(1, 3, 1, 1)
    std = torch.tensor([0.225, 0.224, 0.229]).view(1, 3, 1, 1)
    x = (rgb[:, [2, 1, 0]] - mean) / std
    x = abn(conv(x, "conv1", 2), "bn1", "relu")
    x = abn(conv(x, "conv2"), "bn2", "relu")
    x = abn(conv(x, "conv3"), "bn3", "relu")
    x = F.max_pool2d(x, 3, 2, 1)
    feats = []
    for layer, n in enumerate(blocks, 1):
        stride = 2 if layer in (2, 3) else 1
        dilation = 2 if layer == 4 else 1
        for b in range(n):
            p = f"layer{layer}.{b}"
            s = stride if b == 0 else 1
            y = abn(conv(x, f"{p}.conv1"), f"{p}.bn1", "relu")
            y = abn(conv(y, f"{p}.conv2", s, dilation), f"{p}.bn2", "relu")
            y = abn(conv(y, f"{p}.conv3"), f"{p}.bn3", "none")
            if b == 0:
                x = abn(conv(x, f"{p}.downsample.0", s), f"{p}.downsample.1", "none")
            x = F.relu(y + x)
        feats.append(x)
    x2, x3, x4, x5 = feats
    size5 = x5.shape[-2:]
    priors = []
    for s, bins in enumerate((1, 2, 3, 6)):
        q = F.adaptive_avg_pool2d(x5, bins)
        q = abn(
            conv(q, f"context_encoding.stages.{s}.1"), f"context_encoding.stages.{s}.2", "leaky"
        )
        priors.append(up(q, size5))
    ctx = conv(torch.cat([*priors, x5], 1), "context_encoding.bottleneck.0")
    ctx = abn(ctx, "context_encoding.bottleneck.1", "leaky")
    size2 = x2.shape[-2:]
    xt = up(abn(conv(ctx, "decoder.conv1.0"), "decoder.conv1.1", "leaky"), size2)
    xl = abn(conv(x2, "decoder.conv2.0"), "decoder.conv2.1", "leaky")
    d = abn(conv(torch.cat([xt, xl], 1), "decoder.conv3.0"), "decoder.conv3.1", "leaky")
    d = abn(conv(d, "decoder.conv3.2"), "decoder.conv3.3", "leaky")
    parsing = conv(d, "decoder.conv4")
    edge_feats = [
        abn(conv(f, f"edge.conv{i}.0"), f"edge.conv{i}.1", "leaky")
        for i, f in enumerate((x2, x3, x4), 1)
    ]
    edges = [up(conv(f, "edge.conv4"), size2) for f in edge_feats]
    edge = conv(torch.cat(edges, 1), "edge.conv5")
    edge_fea = torch.cat([up(f, size2) for f in edge_feats], 1)
    f = abn(conv(torch.cat([d, edge_fea], 1), "fushion.0"), "fushion.1", "leaky")
    fusion = conv(f, "fushion.3")  # fushion.2 is a dropout: nothing at inference
    return parsing, fusion, edge


@pytest.fixture(scope="module")
def public(tmp_path_factory):
    sd = public_state_dict(TINY)
    path = tmp_path_factory.mktemp("schp") / "exp-schp-201908261155-lip.pth"
    write_public(path, sd)
    return sd, path


def test_the_published_layout_is_resnet101_with_every_public_key():
    shapes = public_shapes(RESNET101)
    with torch.device("meta"):  # shapes only: no 66M random numbers
        ours = SCHPNet().state_dict()
    assert {public_name(k) for k in ours} == set(shapes)
    assert all(tuple(ours[k].shape) == shapes[public_name(k)] for k in ours)
    n = sum(v.numel() for v in ours.values())
    assert 66e6 < n < 68e6, n  # the published ResNet-101 SCHP


def test_public_checkpoint_imports_and_matches_the_public_forward(public):
    sd, path = public
    model = import_public(path, SCHPConfig(blocks=TINY, label_set="lip20", parsing_classes=20))
    rgb = torch.rand(2, 3, 61, 45, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = model.public_outputs(rgb)
        theirs = reference_forward(sd, rgb, TINY)
        logits = model(rgb)["parsing"]
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape
        assert b.std() > 0.01  # not a constant map
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    # the parsing: the fusion output upsampled to the input (bilinear, align_corners=True)
    expected = F.interpolate(theirs[1], size=(61, 45), mode="bilinear", align_corners=True)
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=1e-4)


def test_merged_output_sums_lip_probabilities_per_adgan_class(public):
    _, path = public
    lip = import_public(path, SCHPConfig(blocks=TINY, label_set="lip20", parsing_classes=20))
    merged = import_public(path, SCHPConfig(blocks=TINY))
    assert merged.config.label_set == "adgan8" and merged.config.parsing_classes == 8
    rgb = torch.rand(1, 3, 49, 33, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        p20 = torch.softmax(lip(rgb)["parsing"], 1)
        p8 = merged.parsing_probabilities(rgb)
        flipped = merged.parsing_probabilities(rgb, flip_test=True)
    table = torch.tensor(LIP_TO_ADGAN)
    summed = torch.zeros_like(p8).index_add_(1, table, p20)
    torch.testing.assert_close(p8, summed, atol=1e-5, rtol=1e-5)
    assert torch.equal(p8.argmax(1), summed.argmax(1))
    torch.testing.assert_close(flipped.sum(1), torch.ones(1, 49, 33))
    # the one parser signature every caller uses (evaluation, the predictor): no guides
    with torch.no_grad():
        torch.testing.assert_close(merged(rgb, None)["parsing"], merged(rgb)["parsing"])
    with pytest.raises(ValueError, match="reads no guides"):
        merged(rgb, torch.zeros(1, 19, 49, 33))


def test_importer_names_what_does_not_fit(tmp_path, public):
    sd, _ = public
    broken = dict(sd)
    broken["fushion.3.weight"] = torch.zeros(18, 256, 1, 1)  # an ATR model's 18 classes
    broken["edge.conv6.weight"] = torch.zeros(1)
    del broken["layer3.1.bn2.running_var"]
    write_public(tmp_path / "broken.pth", broken)
    with pytest.raises(CheckpointError) as err:
        import_public(tmp_path / "broken.pth", SCHPConfig(blocks=TINY))
    text = str(err.value)
    assert "missing: layer3.1.bn2.running_var" in text
    assert "unexpected: edge.conv6.weight" in text
    assert "fushion.3.weight: file (18, 256, 1, 1) vs model (20, 256, 1, 1)" in text
    # the published layout against a shallower file: the blocks it lacks are named
    with pytest.raises(CheckpointError, match=r"missing: layer1\.2\.bn1\.bias"):
        import_public(tmp_path / "broken.pth")


def test_importer_refuses_what_is_not_a_tensor_dict(tmp_path):
    torch.save({"state_dict": {"module.conv1.weight": torch.zeros(1), "epoch": 3}}, tmp_path / "a")
    with pytest.raises(CheckpointError, match=r"not a state dict of tensors: epoch \(int\)"):
        import_public(tmp_path / "a")
    torch.save([torch.zeros(1)], tmp_path / "b")
    with pytest.raises(CheckpointError, match="expected a dict of tensors, found list"):
        import_public(tmp_path / "b")
    torch.save({"state_dict": SCHPConfig()}, tmp_path / "c")  # pickled code: refused
    with pytest.raises(CheckpointError, match="not a plain PyTorch checkpoint"):
        import_public(tmp_path / "c")
    with pytest.raises(CheckpointError, match="no such file"):
        import_public(tmp_path / "missing.pth")


def test_config_is_checked():
    with pytest.raises(ValueError, match="label set 'lip20' has 20"):
        SCHPConfig(label_set="lip20")
    with pytest.raises(ValueError, match="must be one of adgan8, lip20"):
        SCHPConfig(label_set="atr18")
    with pytest.raises(ValueError, match="four stages"):
        SCHPConfig(blocks=(3, 4, 23))


def test_cli_import_round_trips_through_the_parser_registry(tmp_path, public, capsys):
    _, path = public
    # the CLI imports the published layout: a tiny file is refused, with its problems named
    assert main(["import", str(path), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "missing: layer1.2.bn1.bias" in err
    assert "its ResNet has 2/1/2/2 blocks per stage, this model 3/4/23/3" in err
    model = import_public(path, SCHPConfig(blocks=TINY))
    folder = save_checkpoint(
        tmp_path / "schp", {"model": model}, {"modules": {"model": model.describe()}}
    )
    loaded = parser_from_checkpoint(folder)
    assert isinstance(loaded, SCHPNet) and loaded.config == model.config
    rgb = torch.rand(1, 3, 33, 25)
    with torch.no_grad():
        torch.testing.assert_close(loaded(rgb)["parsing"], model(rgb)["parsing"])
    # DensePredictor reads it like our parser (at a small input size here)
    predictor = DensePredictor.from_checkpoints([folder])
    predictor.models[0].config.input_size = (41, 41)
    photo = np.full((60, 40, 3), 200, np.uint8)
    result = predictor.predict(photo)
    assert result.labels.shape == (60, 40) and result.labels.max() < 8
