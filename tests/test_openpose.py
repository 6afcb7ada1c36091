"""The OpenPose importer (public key names and shapes) and PAF grouping."""

import numpy as np
import pytest
import torch

from common.checkpoint import CheckpointError
from keypoints.openpose import (
    PAF_CHANNELS,
    OpenPoseEstimator,
    Person,
    find_peaks,
    group_people,
    import_public,
    main,
)
from keypoints.skeleton import LIMBS
from studio.stub import STANDING


def public_state_dict() -> dict[str, torch.Tensor]:
    """Key names and shapes of `body_pose_model.pth`, written out from the published layer
    table (pytorch-openpose `bodypose_model`), independently of our module."""
    shapes = {}

    def conv(name, cin, cout, k):
        shapes[f"{name}.weight"] = (cout, cin, k, k)
        shapes[f"{name}.bias"] = (cout,)

    for name, cin, cout in (
        ("conv1_1", 3, 64),
        ("conv1_2", 64, 64),
        ("conv2_1", 64, 128),
        ("conv2_2", 128, 128),
        ("conv3_1", 128, 256),
        ("conv3_2", 256, 256),
        ("conv3_3", 256, 256),
        ("conv3_4", 256, 256),
        ("conv4_1", 256, 512),
        ("conv4_2", 512, 512),
        ("conv4_3_CPM", 512, 256),
        ("conv4_4_CPM", 256, 128),
    ):
        conv(name, cin, cout, 3)
    for branch, out in ((1, 38), (2, 19)):
        for i in (1, 2, 3):
            conv(f"conv5_{i}_CPM_L{branch}", 128, 128, 3)
        conv(f"conv5_4_CPM_L{branch}", 128, 512, 1)
        conv(f"conv5_5_CPM_L{branch}", 512, out, 1)
        for stage in range(2, 7):
            conv(f"Mconv1_stage{stage}_L{branch}", 185, 128, 7)
            for i in range(2, 6):
                conv(f"Mconv{i}_stage{stage}_L{branch}", 128, 128, 7)
            conv(f"Mconv6_stage{stage}_L{branch}", 128, 128, 1)
            conv(f"Mconv7_stage{stage}_L{branch}", 128, out, 1)
    gen = torch.Generator().manual_seed(0)
    return {k: torch.randn(s, generator=gen) * 0.01 for k, s in shapes.items()}


def test_public_checkpoint_imports_and_runs_end_to_end(tmp_path):
    weights = public_state_dict()
    assert len(weights) == 2 * (12 + 2 * (5 + 5 * 7))  # 184 tensors, as in the public file
    torch.save(weights, tmp_path / "body_pose_model.pth")
    model = import_public(tmp_path / "body_pose_model.pth")
    assert torch.equal(model.heat[3][0].weight, weights["Mconv1_stage4_L2.weight"])
    image = (np.random.default_rng(0).random((96, 72, 3)) * 255).astype(np.uint8)
    estimator = OpenPoseEstimator(model, box_size=96)
    pafs, heat = estimator.maps(image)
    assert pafs.shape == (38, 96, 72) and heat.shape == (19, 96, 72)
    assert isinstance(estimator(image), list)
    assert (
        main(["import", str(tmp_path / "body_pose_model.pth"), "--out", str(tmp_path / "op")]) == 0
    )
    again = OpenPoseEstimator.from_folder(tmp_path / "op")
    assert torch.equal(again.model.paf[0][0].weight, weights["conv5_1_CPM_L1.weight"])


def test_importer_names_what_does_not_fit(tmp_path):
    weights = public_state_dict()
    del weights["conv3_3.bias"]
    weights["Mconv7_stage6_L2.weight"] = torch.zeros(20, 128, 1, 1)
    torch.save(weights, tmp_path / "bad.pth")
    with pytest.raises(
        CheckpointError,
        match=r"missing: stem\.conv3_3\.bias.*shape: "
        r"heat\.5\.Mconv7_stage6_L2\.weight",
    ):
        import_public(tmp_path / "bad.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a plain PyTorch state dict"):
        import_public(tmp_path / "junk.pth")


def _maps_for(people: list[np.ndarray], shape=(120, 100)):
    """Heatmaps and PAFs an ideal network would give for these people."""
    h, w = shape
    heat = np.zeros((19, h, w), np.float32)
    pafs = np.zeros((38, h, w), np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    for kp in people:
        for part, (x, y) in enumerate(kp):
            if x >= 0:
                heat[part] = np.maximum(heat[part], np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 8))
        for (a, b), (cx, cy) in zip(LIMBS, PAF_CHANNELS, strict=True):
            if kp[a, 0] < 0 or kp[b, 0] < 0:
                continue
            v = kp[b] - kp[a]
            length = np.linalg.norm(v)
            u = v / length
            rel = np.stack([xx - kp[a, 0], yy - kp[a, 1]], -1)
            along = rel @ u
            across = np.abs(rel @ np.array([-u[1], u[0]]))
            on = (
                (along >= -1) & (along <= length + 1) & (across <= 2)
            )  # fields spread past the joints
            pafs[cx][on], pafs[cy][on] = u[0], u[1]
    return heat, pafs


def test_grouping_separates_two_people():
    base = np.array(
        [
            [30, 20],
            [30, 35],
            [22, 36],
            [20, 50],
            [19, 62],
            [38, 36],
            [40, 50],
            [41, 62],
            [25, 65],
            [25, 85],
            [25, 105],
            [35, 65],
            [35, 85],
            [35, 105],
            [27, 17],
            [33, 17],
            [24, 19],
            [36, 19],
        ],
        np.float32,
    )
    other = base + np.array([45, 3], np.float32)
    other[10] = -1  # this one's right ankle is not seen
    heat, pafs = _maps_for([base, other])
    people = group_people(find_peaks(heat, sigma=1.0), pafs, image_height=120)
    assert len(people) == 2
    found = sorted(people, key=lambda p: p.keypoints[1, 0])
    np.testing.assert_allclose(found[0].keypoints, base, atol=1.0)
    expected = other.copy()
    np.testing.assert_allclose(found[1].keypoints, expected, atol=1.0)


def standing_people(peaks, pafs, height: int) -> list:
    """In place of OpenPose's grouping: one standing person (`studio.stub.STANDING`) in a
    photo of `height` rows at a 3:4 aspect, so random weights still give a person."""
    kp = STANDING * np.array([height * 3 / 4, height], np.float32)
    return [Person(kp, np.full(len(kp), 0.9, np.float32), 10.0)]
