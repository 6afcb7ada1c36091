"""The model bundle: assembled from three checkpoints, loaded with every shape checked."""

import json
import shutil

import pytest
import torch

from adgan.generators import build_generator
from common.checkpoint import CheckpointError
from common.config import ConfigError
from studio import bundle
from studio.bundle import load_bundle, make_bundle
from studio.stub import save_part

pytestmark = pytest.mark.filterwarnings("ignore:.*no VGG-19 weights")


def test_bundle_round_trip_in_fp16(parts, tmp_path, capsys):
    out = tmp_path / "bundle"
    assert (
        bundle.main(
            [
                "--keypoints",
                str(parts["keypoints"]),
                "--parser",
                str(parts["parser"]),
                "--generator",
                str(parts["generator"]),
                "--out",
                str(out),
                "--notes",
                "test",
            ]
        )
        == 0
    )
    assert "MB" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json",
        "generator.safetensors",
        "keypoints.safetensors",
        "parser.safetensors",
    ]  # no pickles anywhere
    from safetensors.torch import load_file

    assert load_file(out / "generator.safetensors")["mlp.0.weight"].dtype == torch.float16
    loaded = load_bundle(out)
    assert loaded.info["notes"] == "test" and loaded.info["conventions"]["image_size"] == [32, 24]
    original = parts["generator_module"].state_dict()
    for key, value in loaded.generator.state_dict().items():  # fp16 round trip, back in fp32
        assert value.dtype == torch.float32
        assert torch.allclose(value, original[key].float(), rtol=1e-3, atol=1e-4), key
    x = torch.rand(1, 3, 64, 44)
    assert loaded.keypoints(x).shape == (1, 18, 16, 11)
    assert loaded.parser(x)["parsing"].shape == (1, 8, 64, 44)


def test_bad_bundles_are_named(parts, tmp_path):
    with pytest.raises(CheckpointError, match="parsing head on the 8 ADGAN classes"):
        make_bundle(parts["keypoints"], parts["densepose"], parts["generator"], tmp_path / "x")
    assert not (tmp_path / "x").exists()  # nothing half-written
    with pytest.raises(CheckpointError, match="not a keypoint checkpoint"):
        make_bundle(parts["parser"], parts["parser"], parts["generator"], tmp_path / "x")
    good = make_bundle(
        parts["keypoints"], parts["parser"], parts["generator"], tmp_path / "b", dtype="float32"
    )
    broken = tmp_path / "broken"
    shutil.copytree(good, broken)
    shutil.copy(parts["densepose"] / "model.safetensors", broken / "parser.safetensors")
    with pytest.raises(CheckpointError, match=r"parser\.safetensors does not fit"):
        load_bundle(broken)
    (broken / "parser.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"parser\.safetensors: no such weights file"):
        load_bundle(broken)
    newer = tmp_path / "newer"
    shutil.copytree(good, newer)
    info = json.loads((newer / "config.json").read_text())
    info["version"] = 99
    (newer / "config.json").write_text(json.dumps(info))
    with pytest.raises(CheckpointError, match="newer than this code"):
        load_bundle(newer)
    with pytest.raises(CheckpointError, match="not a model bundle"):
        load_bundle(parts["parser"])
    with pytest.raises(CheckpointError, match="no such bundle folder"):
        load_bundle(tmp_path / "nowhere")


def test_int8_bundle_is_smaller_and_generates_nearly_the_same(parts, tmp_path):
    half = make_bundle(parts["keypoints"], parts["parser"], parts["generator"], tmp_path / "h")
    q = make_bundle(
        parts["keypoints"], parts["parser"], parts["generator"], tmp_path / "q", dtype="int8"
    )
    size = {b: sum(f.stat().st_size for f in b.iterdir()) for b in (half, q)}
    assert size[q] < 0.7 * size[half]
    a, b = load_bundle(half).generator, load_bundle(q).generator
    assert json.loads((q / "config.json").read_text())["dtype"] == "int8"
    torch.manual_seed(1)
    image, keypoints = torch.rand(2, 3, 32, 24) * 2 - 1, torch.rand(2, 18, 2) * 24
    parsing = torch.nn.functional.one_hot(torch.randint(0, 8, (2, 32, 24)), 8)
    parsing = parsing.permute(0, 3, 1, 2).float()
    with torch.no_grad():
        ref = a(image, parsing, keypoints, keypoints)
        got = b(image, parsing, keypoints, keypoints)
    assert (got - ref).abs().mean() < 0.05 * ref.abs().mean() + 1e-3
    with pytest.raises(ValueError, match="dtype must be one of"):
        make_bundle(
            parts["keypoints"], parts["parser"], parts["generator"], tmp_path / "z", dtype="int4"
        )


def test_a_backend_with_built_in_weights_is_named_instead_of_a_folder(parts, tmp_path, capsys):
    out = tmp_path / "bp"
    args = ["--parser", str(parts["parser"]), "--generator", str(parts["generator"])]
    assert bundle.main(["--keypoints", "blazepose", *args, "--out", str(out)]) == 0
    info = json.loads((out / "config.json").read_text())
    assert info["keypoint_backend"] == "blazepose"
    assert info["modules"]["keypoints"]["class"] == "BlazePoseNets"
    assert load_bundle(out).keypoint_backend.name == "blazepose"
    capsys.readouterr()
    assert bundle.main(["--keypoints", "nosuchpose", *args, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "nosuchpose: no such keypoint run or checkpoint folder" in err and "blazepose" in err
    with pytest.raises(SystemExit):
        bundle.main(["--help"])
    assert "built-in" in capsys.readouterr().out
    info["keypoint_backend"] = "posenet"  # a config that contradicts its file is refused
    (out / "config.json").write_text(json.dumps(info))
    with pytest.raises(CheckpointError, match="names keypoint backend 'posenet'"):
        load_bundle(out)


def test_a_bundle_sets_only_the_generators_inference_settings(parts, tmp_path, capsys):
    partwarp = build_generator(
        {"arch": "partwarp", "image_size": [32, 24], "channels": [8, 16], "code_size": 8}
    )
    run = save_part(tmp_path / "run", "generator", partwarp, "adgan")
    kp, parser = parts["keypoints"], parts["parser"]
    args = ["--keypoints", str(kp), "--parser", str(parser), "--generator"]
    trusting = tmp_path / "trusting"
    setting = ["--generator-set", "warp_trust=1.0"]
    wider = ["--generator-set", "warp.background_dilation=3"]
    heads = ["--generator-set", "warp.head_support=1.3"]
    heads += ["--generator-set", "warp.head_outside_opacity=1.0"]
    heads += ["--generator-set", "warp.legs_past_the_edge=true"]
    heads += ["--generator-set", "warp.borrow_twin_limbs=true"]
    assert bundle.main([*args, str(run), "--out", str(trusting), *setting, *wider, *heads]) == 0
    trusted = load_bundle(trusting).generator.config
    assert trusted.warp_trust == 1.0 and trusted.warp.background_dilation == 3
    assert trusted.warp.head_support == 1.3 and trusted.warp.head_outside_opacity == 1.0
    assert trusted.warp.legs_past_the_edge is True and trusted.warp.borrow_twin_limbs is True
    assert trusted.warp.softness == partwarp.config.warp.softness
    as_trained = make_bundle(kp, parser, run, tmp_path / "as-trained")
    assert load_bundle(as_trained).generator.config.warp_trust == 0
    assert load_bundle(as_trained).generator.config.warp.head_outside_opacity is None
    assert load_bundle(as_trained).generator.config.warp.legs_past_the_edge is False
    assert load_bundle(as_trained).generator.config.warp.borrow_twin_limbs is False
    for shaping in ("channels=[4, 8]", "warp.softness=0.5", "warp=1"):
        with pytest.raises(ConfigError, match="inference settings are warp_trust"):
            make_bundle(kp, parser, run, tmp_path / "x", generator_settings=[shaping])
    with pytest.raises(ConfigError, match="warp_trust"):
        make_bundle(kp, parser, run, tmp_path / "x", generator_settings=["warp_trust=very"])
    capsys.readouterr()
    adgan = str(parts["generator"])
    assert bundle.main([*args, adgan, "--out", str(tmp_path / "y"), *setting]) == 2
    assert "inference settings are none" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_a_bundle_sets_the_size_its_parser_reads_a_crop_at(parts, tmp_path, capsys):
    kp, parser, generator = parts["keypoints"], parts["parser"], parts["generator"]
    args = ["--keypoints", str(kp), "--parser", str(parser), "--generator", str(generator)]
    smaller = tmp_path / "smaller"
    assert bundle.main([*args, "--out", str(smaller), "--parser-set", "input_size=[48,33]"]) == 0
    read = load_bundle(smaller).parser
    assert tuple(read.config.input_size) == (48, 33)
    as_trained = load_bundle(make_bundle(kp, parser, generator, tmp_path / "as-trained")).parser
    for name, weights in read.state_dict().items():  # the weights are the same
        torch.testing.assert_close(weights, as_trained.state_dict()[name])
    capsys.readouterr()
    out = tmp_path / "x"
    assert bundle.main([*args, "--out", str(out), "--parser-set", "parsing_classes=3"]) == 2
    assert "parser's inference settings are input_size" in capsys.readouterr().err
    assert not out.exists()


def test_a_bundle_rebuilt_from_a_bundle_keeps_where_its_parts_came_from(parts, tmp_path):
    first = make_bundle(parts["keypoints"], parts["parser"], parts["generator"], tmp_path / "a")
    again = make_bundle(parts["keypoints"], first, first, tmp_path / "b")
    sources = json.loads((again / "config.json").read_text())["sources"]
    assert sources["parser"] == f"{parts['parser']} (via {first})"
    assert sources["generator"] == f"{parts['generator']} (via {first})"
