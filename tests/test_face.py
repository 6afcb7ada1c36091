"""The face landmark model (`keypoints.face`): its ROIs, the converted graph against mediapipe's
own numbers, and what BlazePose returns with it (no mediapipe or TFLite needed)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from common.image_io import load_image
from keypoints.blazepose import DEFAULT_WEIGHTS, SOURCE_SHA256, BlazePose, BlazePoseNets
from keypoints.face import FACE_OVAL, NUM_FACE_LANDMARKS, load_face_landmarks, roi_around
from keypoints.skeleton import KEYPOINT_NAMES
from tests.test_blazepose import one_op_graph

ROOT = Path(__file__).resolve().parent.parent
# mediapipe 0.10.14's FaceMesh (refine_landmarks=False) run twice in video mode on the real
# photo below: `first` is the first frame's 468 points (photo pixels), `second` the next
# frame's, which mediapipe reads from the ROI made from the first (its tracking).
REFERENCE = ROOT / "tests" / "data" / "face_mesh_mediapipe.npz"
REFERENCE_PHOTO = (
    Path("real-formats") / "densepose-iuv-fashion"
    / "fashionWOMENBlouses_Shirtsid0000635004_1front.png"
)  # fmt: skip


@pytest.fixture(scope="module")
def blazepose() -> BlazePose:
    return BlazePose.from_folder()


@pytest.fixture(scope="module")
def model_photo() -> np.ndarray:
    return load_image(ROOT / "examples" / "model.jpg")


def test_prelu_has_one_slope_per_channel():
    slopes = torch.tensor([0.1, -0.5, 2.0])
    graph = one_op_graph("PRELU", {}, [1, 4, 5, 3], [1, 4, 5, 3], {2: slopes.view(1, 1, 3)}, (2,))
    x = torch.randn(2, 4, 5, 3)
    expected = F.prelu(x.permute(0, 3, 1, 2), slopes).permute(0, 2, 3, 1)
    torch.testing.assert_close(graph(x)["y"], expected)


def test_roi_turns_with_the_eye_line():
    points = np.array([[0.0, 0.0], [10.0, 0.0], [5.0, 8.0]])
    upright = roi_around(points, points[0], points[1], 1.5)
    assert upright.rotation == pytest.approx(0.0)
    assert upright.center == pytest.approx((5.0, 4.0))
    assert upright.size == pytest.approx(15.0)
    turn = np.array([[math.cos(0.3), -math.sin(0.3)], [math.sin(0.3), math.cos(0.3)]])
    tilted = points @ turn.T + 50.0  # the same face, turned 0.3 rad clockwise (y down)
    roi = roi_around(tilted, tilted[0], tilted[1], 1.5)
    assert roi.rotation == pytest.approx(0.3)
    assert roi.size == pytest.approx(15.0)
    # The ROI's crop puts the eyes on one row again.
    m = roi.matrix(100)
    eyes = tilted[:2] @ m[:, :2].T + m[:, 2]
    assert eyes[0, 1] == pytest.approx(eyes[1, 1])


def test_the_converted_model_agrees_with_mediapipe(shared_data):
    """Looking from the ROI mediapipe makes of its first frame, our points are mediapipe's
    second frame's (the photo's face is 80 px tall)."""
    reference = np.load(REFERENCE)
    photo = load_image(shared_data / REFERENCE_PHOTO)
    faces = load_face_landmarks(DEFAULT_WEIGHTS)
    face = faces.look([photo], [faces.roi_from_face(reference["first"])])[0]
    assert face is not None and face.score > 0.9
    error = np.linalg.norm(face.points - reference["second"], axis=1)
    assert error.mean() < 0.5 and error.max() < 1.5


def test_blazepose_outlines_the_face(blazepose, model_photo):
    result = blazepose.predict(model_photo)
    assert result.face is not None and result.face.points.shape == (NUM_FACE_LANDMARKS, 2)
    mask = result.face_mask
    assert mask.shape == model_photo.shape[:2] and mask.dtype == np.float32
    nose, neck = (result.keypoints[KEYPOINT_NAMES.index(n)] for n in ("nose", "neck"))
    assert mask[round(nose[1]), round(nose[0])] == 1.0  # the nose is inside the face
    assert not mask[round(neck[1]) :].any()  # and nothing from the neck down
    ears = [result.keypoints[KEYPOINT_NAMES.index(n)] for n in ("r_ear", "l_ear")]
    width = np.ptp(result.face.oval()[:, 0])
    assert 0.5 < width / abs(ears[0][0] - ears[1][0]) < 1.5


def test_a_mirrored_photo_has_the_mirrored_outline(blazepose, model_photo):
    mask = blazepose.predict(model_photo).face_mask
    mirrored = blazepose.predict(np.ascontiguousarray(model_photo[:, ::-1])).face_mask
    both = (mask[:, ::-1] > 0) & (mirrored > 0)
    either = (mask[:, ::-1] > 0) | (mirrored > 0)
    assert both.sum() / either.sum() > 0.85
    assert len(FACE_OVAL) == len(set(FACE_OVAL)) == 36


def test_no_person_no_face_and_faces_batch(blazepose, model_photo):
    blank = np.full((240, 320, 3), 127, np.uint8)
    results = blazepose.predict_many([blank, model_photo, blank])
    assert results[0].face is None and results[0].face_mask is None
    alone = blazepose.predict(model_photo).face
    np.testing.assert_allclose(results[1].face.points, alone.points, atol=0.05)
    assert results[2].face is None


def test_a_module_stored_before_the_face_model_still_loads():
    old = {
        "detector_sha256": SOURCE_SHA256["detector"],
        "landmark_sha256": SOURCE_SHA256["landmark"],
        "visibility_threshold": 0.5,
    }
    nets = BlazePoseNets.from_config(old)
    assert nets.face is None and not any(k.startswith("face.") for k in nets.state_dict())
    assert BlazePose.from_nets(nets).face is None
    assert any(k.startswith("face.") for k in BlazePoseNets().state_dict())


def test_the_finder_is_one_look_without_the_face_model_or_mask(blazepose, model_photo):
    finder = blazepose.finder()
    assert finder.face is None and blazepose.face is not None
    one_look = BlazePose.from_folder(looks=1)
    quick, full = finder.predict(model_photo), one_look.predict(model_photo)
    assert quick.face is None and full.face is not None
    assert quick.mask is None and full.mask.shape == model_photo.shape[:2]
    np.testing.assert_array_equal(quick.keypoints, full.keypoints)
    # the hands' outline needs no mask: the photo's size is in the result
    assert quick.image_size == model_photo.shape[:2]
    np.testing.assert_array_equal(quick.hands_mask, full.hands_mask)
