"""The public-checkpoint path, whole: the three public files (CMU OpenPose, SCHP LIP, the
official ADGAN generator) in their public layouts -> one command -> a bundle -> infer.py."""

import gc

import cv2
import pytest
import torch

import infer
import keypoints.openpose as openpose
from common.checkpoint import CheckpointError, read_config
from common.image_io import load_image, save_image
from parsing.schp import SCHPNet
from parsing.schp import main as schp_main
from studio.bundle import load_bundle
from studio.public_bundle import main, make_public_bundle
from tests.test_adgan_core import official_state_dict
from tests.test_openpose import public_state_dict as openpose_state_dict
from tests.test_openpose import standing_people
from tests.test_schp import RESNET101, write_public
from tests.test_schp import public_state_dict as schp_state_dict


@pytest.fixture(scope="module")
def public_files(tmp_path_factory):
    """The three files as a user downloads them (random values), one built at a time."""
    folder = tmp_path_factory.mktemp("downloads")
    files = {
        "openpose": folder / "body_pose_model.pth",
        "schp": folder / "exp-schp-201908261155-lip.pth",
        "adgan": folder / "latest_net_netG.pth",
    }
    torch.save(openpose_state_dict(), files["openpose"])
    write_public(files["schp"], schp_state_dict(RESNET101))
    torch.save({f"module.{k}": v for k, v in official_state_dict().items()}, files["adgan"])
    gc.collect()
    return files


def test_a_missing_or_wrong_public_file_is_named(public_files, tmp_path, capsys):
    argv = [f"--{k}={v}" for k, v in public_files.items()]
    wrong = [*argv[:1], f"--schp={public_files['adgan']}", *argv[2:]]  # ADGAN's file as SCHP
    assert main([*wrong, "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert (
        "latest_net_netG.pth (SCHP LIP model) does not fit" in err
        and "unexpected: dec.model.0" in err
    )
    assert not (tmp_path / "b").exists()
    with pytest.raises(CheckpointError, match=r"nope\.pth: no such file"):
        make_public_bundle(public_files["openpose"], tmp_path / "nope.pth", "x", tmp_path / "c")


@pytest.mark.slow
def test_public_files_make_a_bundle_that_runs_through_infer(
    public_files, synth_dataset, tmp_path, monkeypatch, capsys
):
    # the SCHP importer alone, on the published layout (ResNet-101)
    assert schp_main(["import", str(public_files["schp"]), "--out", str(tmp_path / "s")]) == 0
    assert read_config(tmp_path / "s")["modules"]["model"]["class"] == "SCHPNet"

    out = tmp_path / "public"
    argv = [f"--{k}={v}" for k, v in public_files.items()]
    assert main([*argv, "--out", str(out), "--dtype", "float16"]) == 0
    info = read_config(out)
    assert info["keypoint_backend"] == "openpose" and not info["synthetic_only"]
    assert info["modules"]["parser"]["class"] == "SCHPNet"
    assert info["modules"]["parser"]["config"]["input_size"] == [473, 473]
    assert info["sources"]["parser"].startswith("exp-schp-201908261155-lip.pth: ")
    assert "latest_net_netG.pth" in info["notes"] and "Self-Correction" in info["notes"]
    assert not any(p.name.startswith(".public-imports") for p in tmp_path.iterdir())
    bundle = load_bundle(out)
    assert isinstance(bundle.parser, SCHPNet) and bundle.parser.config.label_set == "adgan8"
    assert bundle.image_size == (256, 176)
    del bundle
    gc.collect()

    calls = []
    real_maps = openpose.OpenPoseEstimator.maps

    def maps(self, image):
        calls.append(image.shape)
        return real_maps(self, image)

    monkeypatch.setattr(openpose.OpenPoseEstimator, "maps", maps)
    monkeypatch.setattr(openpose, "group_people", standing_people)
    # a 256x176 photo (a SynthFashion render, scaled): the generator's size, a person tall
    # enough for it
    small = load_image(next((synth_dataset / "fashion_resize" / "test").iterdir()))
    photo = tmp_path / "photo.png"
    save_image(photo, cv2.resize(small, (176, 256), interpolation=cv2.INTER_CUBIC))
    card = tmp_path / "card.png"
    capsys.readouterr()
    argv = ["--source", str(photo), "--pose", str(photo), "--bundle", str(out)]
    assert infer.main([*argv, "--out", str(card)]) == 0
    assert calls, "the OpenPose network never ran"
    assert "warning" not in capsys.readouterr().err  # real-world networks: no synthetic warning
    assert load_image(card).shape[:2] == (256, 176)
