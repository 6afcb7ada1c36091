"""BlazePose on torch: the TFLite-graph executor op by op, the converted graphs, the 33 -> 18
mapping, and the estimator on photos (no mediapipe or TFLite needed)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from common.image_io import load_image
from keypoints.blazepose import (
    BLAZEPOSE_TO_OURS,
    DEFAULT_WEIGHTS,
    BlazePose,
    Detection,
    brightened,
    faces_away,
    hand_outlines,
    refine_from_heatmaps,
    ssd_anchors,
    to_openpose18,
)
from keypoints.metrics import pckh_counts
from keypoints.roi import Roi
from keypoints.tflite_graph import GraphError, TfliteGraph, same_padding

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="module")
def blazepose() -> BlazePose:
    torch.manual_seed(0)
    return BlazePose.from_folder()


def one_op_graph(
    op: str,
    options: dict,
    in_shape: list[int],
    out_shape: list[int],
    constants: dict[int, torch.Tensor] | None = None,
    extra_inputs: tuple[int, ...] = (),
) -> TfliteGraph:
    """Tensor 0 (input) -> op -> tensor 1 (output); constants as tensors 2, 3, ..."""
    constants = constants or {}
    description = {
        "format": "tflite-graph/1",
        "inputs": [{"id": 0, "name": "x", "shape": in_shape}],
        "outputs": [{"id": 1, "name": "y", "shape": out_shape}],
        "constants": {str(t): list(v.shape) for t, v in constants.items()},
        "shapes": {"0": in_shape, "1": out_shape},
        "ops": [{"op": op, "inputs": [0, *extra_inputs], "outputs": [1], "options": options}],
    }
    return TfliteGraph(description, {f"t{t}": v for t, v in constants.items()}, name=op)


def nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1)


def nchw(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 1, 2)


def test_same_padding_puts_the_odd_pixel_after():
    assert same_padding(5, 3, 2, 1) == (1, 1)  # out 3: (3-1)*2+3-5 = 2
    assert same_padding(6, 3, 2, 1) == (0, 1)  # out 3: 1 pixel, after
    assert same_padding(224, 5, 2, 1) == (1, 2)
    assert same_padding(8, 1, 1, 1) == (0, 0)


@pytest.mark.parametrize(
    "size, stride",
    [((6, 7), 2), ((5, 8), 2), ((5, 7), 2), ((6, 7), 1)],  # uneven, mixed, even, stride 1
)
def test_conv_same_matches_explicit_padding(size, stride):
    torch.manual_seed(0)
    h, w = size
    x = torch.randn(2, h, w, 3)
    weight = torch.randn(4, 3, 3, 3)  # OHWI, as TFLite
    bias = torch.randn(4)
    oh, ow = -(-h // stride), -(-w // stride)
    graph = one_op_graph(
        "CONV_2D",
        {
            "padding": "SAME",
            "stride": [stride, stride],
            "dilation": [1, 1],
            "activation": "RELU6",
        },
        [1, h, w, 3],
        [1, oh, ow, 4],
        {2: weight, 3: bias},
        (2, 3),
    )
    top, bottom = same_padding(h, 3, stride, 1)
    left, right = same_padding(w, 3, stride, 1)
    padded = F.pad(nchw(x), (left, right, top, bottom))
    expected = F.conv2d(padded, weight.permute(0, 3, 1, 2), bias, stride=stride).clamp(0, 6)
    torch.testing.assert_close(graph(x)["y"], nhwc(expected), atol=1e-5, rtol=1e-5)


def test_depthwise_conv_and_valid_padding():
    torch.manual_seed(1)
    x = torch.randn(1, 6, 6, 5)
    weight = torch.randn(1, 3, 3, 5)  # 1HWC, as TFLite
    bias = torch.randn(5)
    graph = one_op_graph(
        "DEPTHWISE_CONV_2D",
        {
            "padding": "VALID",
            "stride": [1, 1],
            "dilation": [1, 1],
            "depth_multiplier": 1,
            "activation": None,
        },
        [1, 6, 6, 5],
        [1, 4, 4, 5],
        {2: weight, 3: bias},
        (2, 3),
    )
    ref = np.zeros((1, 4, 4, 5), np.float32)  # the definition, in NHWC loops
    xn, wn = x.numpy(), weight.numpy()[0]
    for i in range(4):
        for j in range(4):
            ref[0, i, j] = (xn[0, i : i + 3, j : j + 3] * wn).sum((0, 1)) + bias.numpy()
    np.testing.assert_allclose(graph(x)["y"].numpy(), ref, atol=1e-5)


def test_depth_to_space_follows_tflite_channel_order():
    x = torch.arange(2 * 2 * 3 * 8, dtype=torch.float32).reshape(2, 2, 3, 8)
    graph = one_op_graph("DEPTH_TO_SPACE", {"block_size": 2}, [1, 2, 3, 8], [1, 4, 6, 2])
    # TF: out[h*r+i, w*r+j, c] = in[h, w, (i*r+j)*C + c]
    ref = x.reshape(2, 2, 3, 2, 2, 2).permute(0, 1, 3, 2, 4, 5).reshape(2, 4, 6, 2)
    torch.testing.assert_close(graph(x)["y"], ref)


def test_resize_bilinear_half_pixel_and_max_pool_and_pad():
    torch.manual_seed(2)
    x = torch.randn(1, 4, 4, 2)
    resize = one_op_graph(
        "RESIZE_BILINEAR",
        {"size": [8, 8], "align_corners": False, "half_pixel_centers": True},
        [1, 4, 4, 2],
        [1, 8, 8, 2],
    )
    # half-pixel centres: output pixel 1 samples input 0.25 -> 0.75*x0 + 0.25*x1
    y = resize(x)["y"]
    torch.testing.assert_close(y[0, 0, 1], 0.75 * x[0, 0, 0] + 0.25 * x[0, 0, 1])
    pool = one_op_graph(
        "MAX_POOL_2D",
        {"padding": "VALID", "stride": [2, 2], "filter": [2, 2], "activation": None},
        [1, 4, 4, 2],
        [1, 2, 2, 2],
    )
    torch.testing.assert_close(pool(x)["y"][0, 1, 0], x[0, 2:4, 0:2].amax((0, 1)))
    pad = one_op_graph(
        "PAD", {"paddings": [[0, 0], [1, 2], [0, 1], [0, 0]]}, [1, 4, 4, 2], [1, 7, 5, 2]
    )
    torch.testing.assert_close(pad(x)["y"], F.pad(x, (0, 0, 0, 1, 1, 2)))


def test_reshape_flattens_in_nhwc_order_and_logistic():
    x = torch.randn(3, 2, 2, 3)
    graph = one_op_graph("RESHAPE", {"shape": [1, 12]}, [1, 2, 2, 3], [1, 12])
    torch.testing.assert_close(graph(x)["y"], x.reshape(3, 12))
    sig = one_op_graph("LOGISTIC", {}, [1, 2, 2, 3], [1, 2, 2, 3])
    torch.testing.assert_close(sig(x)["y"], torch.sigmoid(x))


def test_executor_refuses_what_it_cannot_run():
    with pytest.raises(GraphError, match="does not run"):
        one_op_graph("SOFTMAX", {}, [1, 2, 2, 3], [1, 2, 2, 3])
    with pytest.raises(GraphError, match="before it is made"):
        one_op_graph("ADD", {"activation": None}, [1, 2, 2, 3], [1, 2, 2, 3], extra_inputs=(7,))
    declared = graph_description(one_op_graph("LOGISTIC", {}, [1, 2, 2, 3], [1, 2, 2, 3]))
    declared["constants"] = {"2": [3]}  # a constant the weights do not hold
    with pytest.raises(GraphError, match="lack"):
        TfliteGraph(declared, {}, name="x")
    with pytest.raises(GraphError, match="shape"):
        TfliteGraph(declared, {"t2": torch.zeros(4)}, name="x")
    sig = one_op_graph("LOGISTIC", {}, [1, 2, 2, 3], [1, 2, 2, 3])
    with pytest.raises(GraphError, match="NHWC"):
        sig(torch.zeros(1, 3, 2, 2))
    wrong = one_op_graph("LOGISTIC", {}, [1, 2, 2, 3], [1, 2, 2, 4])
    with pytest.raises(GraphError, match="the graph says"):
        wrong(torch.zeros(1, 2, 2, 3))


def graph_description(graph: TfliteGraph) -> dict:
    return {
        "format": "tflite-graph/1",
        "inputs": [{"id": graph.input_id, "name": "x", "shape": list(graph.input_shape)}],
        "outputs": [{"id": t, "name": n, "shape": list(graph.shapes[t])} for t, n in graph.outputs],
        "constants": {},
        "shapes": {str(k): list(v) for k, v in graph.shapes.items()},
        "ops": graph.ops,
    }


def test_converted_graphs_run_batched(blazepose):
    with torch.no_grad():
        det = blazepose.detector(torch.zeros(2, 224, 224, 3))
        lm = blazepose.landmark(torch.rand(2, 256, 256, 3))
    assert det["Identity"].shape == (2, 2254, 12) and det["Identity_1"].shape == (2, 2254, 1)
    assert lm["Identity"].shape == (2, 195) and lm["Identity_1"].shape == (2, 1)
    assert lm["Identity_2"].shape == (2, 256, 256, 1) and lm["Identity_3"].shape == (2, 64, 64, 39)
    assert len(ssd_anchors()) == 2254
    np.testing.assert_allclose(ssd_anchors()[0], [0.5 / 28, 0.5 / 28])
    assert (DEFAULT_WEIGHTS / "LICENSE").read_text().count("Apache License") >= 1


def synthetic_frontal_person() -> tuple[np.ndarray, np.ndarray]:
    """33 landmarks of a person facing the camera: their right side on the image's left."""
    pts = np.zeros((33, 2), np.float32)
    right = {5: 45, 8: 40, 12: 30, 14: 25, 16: 20, 24: 40, 26: 40, 28: 40}  # x on the left
    left = {2: 55, 7: 60, 11: 70, 13: 75, 15: 80, 23: 60, 25: 60, 27: 60}
    ys = {0: 20, 2: 18, 5: 18, 7: 20, 8: 20, 11: 40, 12: 40, 13: 60, 14: 60, 15: 80, 16: 80}
    ys.update({23: 90, 24: 90, 25: 120, 26: 120, 27: 150, 28: 150})
    pts[0] = (50, 20)
    for i, x in {**right, **left}.items():
        pts[i] = (x, ys[i])
    return pts, np.ones(33, np.float32)


def test_mapping_keeps_the_persons_left_and_right():
    pts, vis = synthetic_frontal_person()
    kp, scores = to_openpose18(pts, vis, (200, 100))
    right_side = [2, 3, 4, 8, 9, 10, 14, 16]
    left_side = [5, 6, 7, 11, 12, 13, 15, 17]
    assert (kp[right_side, 0] < 50).all() and (kp[left_side, 0] > 50).all()
    np.testing.assert_allclose(kp[1], (pts[11] + pts[12]) / 2)  # neck: mid-shoulder
    for ours, theirs in enumerate(BLAZEPOSE_TO_OURS):
        if theirs >= 0:
            np.testing.assert_allclose(kp[ours], pts[theirs])
    assert scores.shape == (18,)


def test_mapping_drops_unsure_and_outside_points():
    pts, vis = synthetic_frontal_person()
    vis[16] = 0.4  # right wrist, unsure
    vis[11] = 0.2  # left shoulder: the neck goes too
    pts[27] = (500, 150)  # left ankle outside the 100-wide photo
    kp, _ = to_openpose18(pts, vis, (200, 100), threshold=0.5)
    assert (kp[[4, 5, 1, 13]] == -1).all()
    kp, _ = to_openpose18(pts, vis, (200, 100), threshold=0.3)
    assert (kp[4] >= 0).all() and (kp[[5, 1, 13]] == -1).all()


def test_a_head_seen_from_behind_has_no_nose_or_eyes():
    pts, vis = synthetic_frontal_person()
    torso = 50.0  # mid-shoulders (50, 40) to mid-hips (50, 90)
    depth = np.zeros((33, 1), np.float32)
    for nose_behind, dropped in ((-0.8, False), (0.3, False), (0.8, True)):
        depth[0] = nose_behind * torso  # BlazePose's z: larger is further from the camera
        with_z = np.concatenate([pts, depth], 1)
        assert faces_away(with_z, 0.5) is dropped
        kp, scores = to_openpose18(with_z, vis, (200, 100), back_view_depth=0.5)
        assert bool((kp[[0, 14, 15]] == -1).all()) == dropped
        assert bool((scores[[0, 14, 15]] == 0).all()) == dropped
        assert (kp[[1, 16, 17]] >= 0).all()  # the neck and the ears stay
    kp, _ = to_openpose18(with_z, vis, (200, 100))  # without a depth rule: as before
    assert (kp[[0, 14, 15]] >= 0).all()
    assert not faces_away(pts, 0.5)  # landmarks without depths say nothing


def test_each_seen_hand_is_outlined_past_its_points():
    points = np.zeros((33, 3), np.float32)
    visibility = np.ones(33, np.float32)
    # the left hand: wrist, pinky, index, thumb, a 10 px hand pointing down
    points[[15, 17, 19, 21], :2] = [(20, 20), (16, 30), (20, 30), (25, 27)]
    visibility[[16, 18, 20, 22]] = 0.1  # the right hand is not seen
    points[[16, 18, 20, 22], :2] = [(70, 20), (66, 30), (70, 30), (75, 27)]
    mask = hand_outlines(points, visibility, (60, 100))
    assert mask is not None and mask.shape == (60, 100) and mask.dtype == np.float32
    assert mask[25, 20] == 1 and mask[20, 20] == 1  # inside, and on the wrist
    # the fingertips: a palm's length past the knuckles (18, 30), and 0.4 of it further
    assert mask[39, 17] == 1 and mask[43, 16] == 1
    assert mask[47, 16] == 0 and mask[25, 40] == 0  # not further
    assert mask[:, 50:].max() == 0  # the unseen hand is not drawn
    visibility[17] = 0.1  # a hand with one point unseen is not outlined either
    assert hand_outlines(points, visibility, (60, 100)) is None


def test_a_dim_photo_is_brightened_and_a_well_exposed_one_left_alone():
    rng = np.random.default_rng(0)
    bright = rng.integers(0, 256, (60, 40, 3), dtype=np.uint8)
    assert brightened(bright, 140.0) is bright
    dim = (bright * 0.3).astype(np.uint8)  # 0-76
    lifted = brightened(dim, 140.0)
    assert lifted.shape == dim.shape and lifted.dtype == np.uint8
    luminance = lifted.mean(-1)
    assert np.percentile(dim.mean(-1), 99) < 80 and np.percentile(luminance, 99) > 230
    assert np.percentile(luminance, 1) < 10
    assert brightened(dim, None) is dim
    black = np.full((20, 20, 3), 3, np.uint8)
    black[0, 0] = 10  # all but black: the gain stops at 8, noise is not made a picture
    assert brightened(black, 140.0).max() <= 8 * 10


def test_the_person_of_a_photo_taken_in_a_dim_room_is_read_as_in_daylight(blazepose):
    """The shopper of examples/ at a third of the exposure: as mediapipe reads it, the person
    is lost; brightened first (`dim_level`), the keypoints are the daylight photo's."""
    photo = load_image(EXAMPLES / "shopper.jpg")
    daylight = blazepose.predict(photo).keypoints
    dim = (photo * 0.35).round().astype(np.uint8)
    read, as_is = (
        BlazePose.from_folder(dim_level=level).predict(dim).keypoints for level in (140.0, None)
    )
    ok, total, _ = pckh_counts([read], [daylight])
    assert total >= 12 and ok / total >= 0.9, (ok, total)
    ok_as_is, _, _ = pckh_counts([as_is], [daylight])
    assert ok_as_is < ok


def test_roi_from_an_upright_detection():
    det = Detection((0, 0, 1, 1), 0.9, np.array([[100, 200], [100, 100], [0, 0], [0, 0]], float))
    roi = BlazePose.roi_from_detection(det)
    assert roi.center == (100, 200) and roi.size == pytest.approx(250) and roi.rotation == 0
    tilted = Detection((0, 0, 1, 1), 0.9, np.array([[0, 0], [100, 0], [0, 0], [0, 0]], float))
    assert BlazePose.roi_from_detection(tilted).rotation == pytest.approx(np.pi / 2)


def test_heatmap_refinement_moves_to_the_peak():
    heat = np.full((1, 64, 64, 1), -20.0, np.float32)
    heat[0, 10, 12, 0] = 20.0  # row 10, column 12
    xy = np.array([[[13.4 / 64, 11.2 / 64]]], np.float32)
    np.testing.assert_allclose(refine_from_heatmaps(xy, heat)[0, 0], [12 / 64, 10 / 64], atol=1e-6)
    weak = np.full((1, 64, 64, 1), -20.0, np.float32)  # no peak >= 0.5: unchanged
    np.testing.assert_allclose(refine_from_heatmaps(xy, weak), xy)


def test_blank_photo_has_no_person(blazepose):
    blank = np.full((240, 320, 3), 128, np.uint8)
    assert blazepose.detect([blank]) == [[]]
    result = blazepose.predict(blank)
    assert (result.keypoints == -1).all() and result.person_score == 0.0
    assert result.box is None and result.mask.shape == (240, 320) and result.mask.max() == 0


def test_batch_equals_one_at_a_time(blazepose):
    photos = [load_image(EXAMPLES / "model.jpg"), load_image(EXAMPLES / "shopper.jpg")]
    together = blazepose.predict_many(photos)
    for photo, batched in zip(photos, together, strict=True):
        alone = blazepose.predict(photo)
        assert batched.person_score > 0.5 and (batched.keypoints >= 0).all(1).sum() >= 12
        np.testing.assert_allclose(batched.keypoints, alone.keypoints, atol=1e-2)
        np.testing.assert_allclose(batched.mask, alone.mask, atol=1e-3)
        assert batched.mask.shape == photo.shape[:2] and batched.mask.dtype == np.float32
    json = together[0].to_json()
    assert len(json["keypoints"]) == 18 and len(json["box"]) == 4


def test_bad_input_says_what_it_wants(blazepose):
    with pytest.raises(ValueError, match="uint8 RGB"):
        blazepose.predict(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match="boxes"):
        blazepose.detect([np.zeros((10, 10, 3), np.uint8)], [None, None])
    with pytest.raises(GraphError, match="convert_mediapipe"):
        BlazePose.from_folder(ROOT / "no-such-folder")


@pytest.mark.real_data
@pytest.mark.parametrize("threshold", [0.5, 0.3])
def test_pckh_on_coco_people(shared_data, blazepose, threshold):
    """Measured: PCKh@0.5 0.782 (vis >= 0.5) and 0.798 (vis >= 0.3), 193 points of 12 people
    (mediapipe's own landmarks agree with ours within ~1 px on these photos); 0.731 with one
    landmark look, the floor here."""
    from keypoints.data import coco_items
    from keypoints.metrics import pckh_counts

    folder = shared_data / "real-formats" / "coco-keypoints"
    items = coco_items(folder / "test_coco.json", folder, aspect=1.0)
    estimator = BlazePose(blazepose.detector, blazepose.landmark, visibility_threshold=threshold)
    results = estimator.predict_many(
        [load_image(it.path) for it in items], [it.box for it in items], with_mask=False
    )
    correct, total, _ = pckh_counts([r.keypoints for r in results], [it.keypoints for it in items])
    assert len(items) == 12 and total > 150
    assert correct / total > 0.75


# -- the `blazepose` keypoint backend: one module, in a bundle like any network ---------------


@pytest.fixture(scope="module")
def blazepose_bundles(parts, tmp_path_factory):
    """Bundles whose keypoints are the built-in BlazePose, stored fp16 and 'int8'."""
    from studio.bundle import make_bundle

    root = tmp_path_factory.mktemp("blazepose-bundles")
    return {
        dtype: make_bundle(
            "blazepose", parts["parser"], parts["generator"], root / dtype, dtype=dtype
        )
        for dtype in ("float16", "int8")
    }


def test_the_backend_is_registered_with_built_in_weights():
    from keypoints.blazepose import BlazePoseNets
    from keypoints.estimators import backends, builtin_backend

    backend = backends()["BlazePoseNets"]
    assert backend.name == "blazepose" and builtin_backend("blazepose") is backend
    assert builtin_backend("posenet") is None  # needs a checkpoint
    nets = backend.builtin()
    assert isinstance(nets, BlazePoseNets) and nets.describe()["class"] == "BlazePoseNets"
    assert set(k.split(".")[0] for k in nets.state_dict()) == {"detector", "landmark", "face"}


def test_a_config_for_other_graphs_is_refused():
    from common.config import ConfigError
    from keypoints.blazepose import BlazePoseNets

    with pytest.raises(GraphError, match="sha256"):
        BlazePoseNets.from_config({"landmark_sha256": "0" * 64})
    with pytest.raises(ConfigError, match="valid keys"):
        BlazePoseNets.from_config({"model_complexity": 2})


@pytest.mark.parametrize("dtype", ["float16", "int8"])
def test_a_blazepose_bundle_gives_the_package_keypoints(blazepose_bundles, blazepose, dtype):
    """fp16 is BlazePose's own precision (exact); an int8 bundle keeps it in fp16, since
    int8 weights moved landmarks by up to 240 px on real photos (bench/real_photos.py)."""
    import json

    from safetensors.torch import load_file

    from keypoints.estimators import estimator_from_checkpoint
    from studio.bundle import load_bundle

    folder = blazepose_bundles[dtype]
    info = json.loads((folder / "config.json").read_text())
    assert info["keypoint_backend"] == "blazepose" and "mediapipe" in info["sources"]["keypoints"]
    assert info["storage"]["keypoints"] == "float16" and info["storage"]["parser"] == dtype
    stored = load_file(folder / "keypoints.safetensors")
    assert {v.dtype for v in stored.values()} == {torch.float16}
    bundle = load_bundle(folder)
    assert bundle.keypoint_backend.name == "blazepose"
    for estimator in (
        bundle.keypoint_estimator("cpu"),
        estimator_from_checkpoint(folder, name="keypoints"),
    ):
        assert isinstance(estimator, BlazePose)
        photo = load_image(EXAMPLES / "shopper.jpg")
        got, want = estimator.predict(photo), blazepose.predict(photo)
        assert (want.keypoints >= 0).all(1).sum() >= 12
        np.testing.assert_array_equal(got.keypoints, want.keypoints)


def test_the_quantizer_keeps_one_row_tensors_in_fp16():
    from common.checkpoint import quantize_state_dict

    stored = quantize_state_dict(
        {"depthwise_1hwc": torch.randn(1, 3, 3, 144), "conv": torch.randn(144, 3, 3, 3)}
    )
    assert stored["depthwise_1hwc"].dtype == torch.float16
    assert stored["conv"].dtype == torch.int8


def test_several_people_are_reported_and_the_largest_is_used(blazepose):
    """Two photos side by side: two people; the larger one gets the landmarks, the other's
    body box is in `others`."""
    big = load_image(EXAMPLES / "model.jpg")
    small = cv2.resize(big, (big.shape[1] * 3 // 4, big.shape[0] * 3 // 4))
    canvas = np.full((big.shape[0], big.shape[1] + small.shape[1], 3), 255, np.uint8)
    canvas[:, : big.shape[1]] = big
    canvas[big.shape[0] - small.shape[0] :, big.shape[1] :] = small
    result = blazepose.predict(canvas)
    shown = result.keypoints[(result.keypoints >= 0).all(1)]
    assert len(shown) >= 12 and len(result.others) == 1
    assert shown[:, 0].max() < big.shape[1] + 10  # the big one, on the left
    x, _, w, _ = result.others[0]
    assert x + w / 2 > big.shape[1]  # the other person: the small one on the right
    surest = BlazePose(blazepose.detector, blazepose.landmark, pick="surest")
    assert len(surest.predict(canvas).others) == 1
    with pytest.raises(ValueError, match="pick must be one of"):
        BlazePose(blazepose.detector, blazepose.landmark, pick="nearest")


@pytest.mark.real_data
def test_the_largest_body_is_used_and_the_others_boxed_by_their_keypoints(shared_data, blazepose):
    """In the COCO photo of a batter with a catcher crouching behind him, the catcher's ROI
    (from the detector's body points) was the larger, and he was used; the landmarks of
    both say the batter is half as tall again. The catcher is offered in the box of his own
    keypoints, which holds none of the batter's; in the CIHP graduation photo the detector's
    square around the woman beside the graduate had taken in the whole photo."""
    from keypoints.skeleton import visible

    folder = shared_data / "real-formats"
    photo = load_image(folder / "coco-keypoints" / "000000196141.jpg")
    found = blazepose.finder().predict(photo)
    batter = found.keypoints[visible(found.keypoints)]
    assert batter[:, 0].max() < 450 and np.ptp(batter[:, 1]) > 200  # standing, on the left
    (catcher,) = found.others
    x, _, _, h = catcher
    assert x > batter[:, 0].max() - 10 and h < np.ptp(batter[:, 1])  # beside him, smaller
    photo = load_image(folder / "cihp-lip-labels" / "cihp_images" / "0032190.jpg")
    (beside,) = blazepose.finder().predict(photo).others
    assert beside[2] < 0.6 * photo.shape[1]  # not the whole width: one woman


def test_a_box_picks_the_person_in_it_not_the_larger_neighbour(blazepose):
    """The detector reads a square around a tall box, where the larger neighbour is seen
    too: the person whose face is in the box gets the landmarks."""
    big = load_image(EXAMPLES / "model.jpg")
    small = cv2.resize(big, (big.shape[1] * 3 // 4, big.shape[0] * 3 // 4))
    canvas = np.full((big.shape[0], big.shape[1] + small.shape[1], 3), 255, np.uint8)
    canvas[:, : big.shape[1]] = big
    canvas[big.shape[0] - small.shape[0] :, big.shape[1] :] = small
    box = (big.shape[1], big.shape[0] - small.shape[0], small.shape[1], small.shape[0])
    result = blazepose.predict(canvas, box)
    shown = result.keypoints[(result.keypoints >= 0).all(1)]
    assert len(shown) >= 12
    assert shown[:, 0].min() > big.shape[1] - 10  # the small one, on the right
    assert blazepose.predict(canvas).keypoints[0, 0] < big.shape[1]  # unboxed: the big one


def test_a_box_where_the_detector_sees_nobody_takes_the_whole_photos_person_inside_it(
    blazepose, monkeypatch
):
    """Read in a box's square, the detector may miss a person it finds in the whole photo
    (a face larger than it finds well): then the whole photo's people whose face lies in
    the box, rows and columns, are the box's; a box that found its person asks nothing more."""
    inside = Detection((40.0, 40.0, 20.0, 20.0), 0.9, np.zeros((4, 2)))
    beside = Detection((40.0, 200.0, 20.0, 20.0), 0.95, np.zeros((4, 2)))  # the same columns
    asked = []

    def detect(images, boxes=None):
        asked.append(boxes)
        return [[inside, beside] for _ in images]

    monkeypatch.setattr(blazepose, "detect", detect)
    photos = [np.zeros((300, 200, 3), np.uint8)] * 3
    boxes = [(20.0, 20.0, 80.0, 120.0), None, (20.0, 20.0, 80.0, 120.0)]
    found = [[], [beside], [inside]]
    seen = blazepose._seen_whole(photos, boxes, found)
    assert [[id(d) for d in people] for people in seen] == [
        [id(inside)],
        [id(beside)],
        [id(inside)],
    ]
    assert asked == [None]  # one whole-photo look, for the first photo only


@pytest.mark.real_data
def test_a_person_in_a_hard_compressed_photo_is_found_in_a_users_box(shared_data, blazepose):
    """The seated man of a COCO photo saved at JPEG quality 10: his box's square showed
    the detector nobody, and the box's fallback neither (the landmark model on that box
    finds him or not as its edges move by half a pixel); the whole photo shows him."""
    photo = load_image(shared_data / "real-formats" / "coco-keypoints" / "000000040083.jpg")
    _, data = cv2.imencode(".jpg", photo[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 10])
    squeezed = np.ascontiguousarray(cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1])
    box = (60.54, 111.48, 123.32, 171.97)  # bench/pose_robustness.py's box around him
    result = blazepose.predict(squeezed, box)
    shown = result.keypoints[(result.keypoints >= 0).all(1)]
    assert result.person_score > 0.5 and len(shown) >= 12
    assert (shown[:, 0] > box[0] - 10).all() and (shown[:, 0] < box[0] + box[2] + 10).all()


def test_a_second_look_starts_from_the_landmarks_own_roi(blazepose):
    """looks=2 runs the landmark model again on the ROI of its own alignment points (mediapipe's
    next-frame ROI); the mask stays the detector's look's, and the finder looks once."""
    photo = load_image(EXAMPLES / "model.jpg")
    once = BlazePose.from_folder(looks=1).predict(photo)
    twice = blazepose.predict(photo)
    assert blazepose.looks == 2 and blazepose.finder().looks == 1
    first = once.landmarks
    assert first.alignment.shape == (2, 2)
    assert twice.landmarks.roi == BlazePose.roi_from_landmarks(first)
    np.testing.assert_array_equal(twice.mask, once.mask)
    moved = np.linalg.norm(twice.keypoints - once.keypoints, axis=1)
    assert np.median(moved) < 0.05 * photo.shape[0]  # a clean photo: the same person
    with pytest.raises(ValueError, match="looks"):
        BlazePose.from_folder(looks=0)


def test_an_roi_moved_into_another_frame_reads_the_same_pixels():
    """`Roi.transformed` under a similarity (scale, quarter turn, shift): the crop matrix
    of the moved ROI, after the move, is the original's."""
    roi = Roi((120.0, 200.0), 180.0, 0.3)
    turn = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 400.0]])  # a quarter turn, then a shift
    move = np.vstack([0.6 * turn, [0.0, 0.0, 1.0]])
    move[:2, 2] += (10.0, -30.0)
    moved = roi.transformed(move[:2])
    np.testing.assert_allclose(
        np.vstack([moved.matrix(256), [0, 0, 1]]) @ move,
        np.vstack([roi.matrix(256), [0, 0, 1]]),
        atol=1e-9,
    )


def test_following_a_person_into_a_crop_is_the_second_look_there(blazepose):
    """`follow_many`: the first look's person, moved into a crop of the photo, looked at again
    from the landmarks' own ROI with no detector: the keypoints the two looks give on the
    photo itself, moved into the crop; the mask from the first look's ROI; `pose_only`
    leaves out the mask and the face outline and keeps the keypoints."""
    photo = load_image(EXAMPLES / "model.jpg")
    first = blazepose.finder().predict(photo)
    twice = blazepose.predict(photo)
    h, w = photo.shape[:2]
    to_crop = np.array([[1.6, 0.0, -0.1 * w], [0.0, 1.6, -0.05 * h]])  # a closer look
    size = (int(1.5 * h), int(1.4 * w))
    crop = cv2.warpAffine(photo, to_crop, size[::-1], flags=cv2.INTER_LINEAR)
    full, pose_only = blazepose.follow_many(
        [crop, crop], [first, first], [to_crop, to_crop], pose_only=[False, True]
    )
    expected = twice.keypoints @ to_crop[:, :2].T + to_crop[:, 2]
    seen = (twice.keypoints >= 0).all(1) & (full.keypoints >= 0).all(1)
    assert seen.sum() >= 12
    moved = np.linalg.norm(full.keypoints[seen] - expected[seen], axis=1)
    assert np.median(moved) < 0.01 * size[0]
    np.testing.assert_array_equal(pose_only.keypoints, full.keypoints)
    assert full.landmarks.roi == BlazePose.roi_from_landmarks(first.landmarks.transformed(to_crop))
    # the mask: the first look's ROI, read in the crop
    once = BlazePose.from_folder(looks=1).predict(photo).mask
    in_crop = cv2.warpAffine(once, to_crop, size[::-1], flags=cv2.INTER_LINEAR) > 0.5
    got = full.mask > 0.5
    assert (got & in_crop).sum() / (got | in_crop).sum() > 0.95
    assert full.face is not None and full.face_mask.max() == 1.0
    assert pose_only.mask is None and pose_only.face is None
    with pytest.raises(ValueError, match="landmarks"):
        blazepose.follow_many(
            [crop], [blazepose.predict(np.full((64, 64, 3), 128, np.uint8))], [to_crop]
        )


def test_a_photo_of_many_megapixels_shows_the_person_its_smaller_copy_shows(shared_data, blazepose):
    """The whole photo into the 224x224 detector is a 10-25x shrink for a phone photo:
    without averaging first, the samples alias and the detector found nobody in the
    DensePose street photo at 2x its size and more (upsampled, so no detail is added)."""
    photo = load_image(shared_data / "real-formats" / "densepose" / "demo_im.jpg")
    necks = []
    for k in (2, 8):  # 2232x1200 and 8928x4800
        big = cv2.resize(photo, None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC)
        found = blazepose.finder().predict(big)
        assert (found.keypoints[:, 0] >= 0).sum() >= 12 and found.person_score > 0.5
        necks.append(found.keypoints[1] / k)
    assert np.hypot(*(necks[0] - necks[1])) < 10  # the same person, in the same place


@pytest.mark.real_data
def test_the_window_search_finds_no_person_in_a_texture_atlas(shared_data, blazepose):
    """Told a window holds someone, the landmark model finds a person in a DensePose UV atlas
    and a sheet of hand textures (person flag 0.95): the search's own windows go through
    the searcher, which needs the detector to see someone. The street photo, whose people
    only the windows show, keeps its person."""
    from keypoints.search import find_people

    folder = shared_data / "real-formats" / "densepose"
    finder, searcher = blazepose.finder(), blazepose.searcher()
    assert finder.box_fallback and not searcher.box_fallback
    for name in ("texture_atlas_200.png", "texture_from_SURREAL.png"):
        atlas = load_image(folder / name)
        lenient = find_people(finder, [atlas], aspect=176 / 256)[0]
        assert lenient.person_score > 0.5, name  # what the fallback made of it
        strict = find_people(finder, [atlas], aspect=176 / 256, searcher=searcher)[0]
        assert strict.person_score < 0.5 and (strict.keypoints < 0).all(), name
    street = load_image(folder / "demo_im.jpg")
    assert finder.predict(street).person_score < 0.5  # whole, nobody: the search's case
    found = find_people(finder, [street], aspect=176 / 256, searcher=searcher)[0]
    assert found.person_score > 0.5 and (found.keypoints[:, 0] >= 0).sum() >= 12


@pytest.mark.real_data
def test_a_catalogue_photo_cut_at_the_shoulders_is_read_without_its_head(shared_data, blazepose):
    """The DeepFashion lace-top photo cut at the shoulders, as shops cut catalogue photos:
    the detector, which finds people by their faces, finds nobody in it, and the pipeline's
    window search once read a forearm there as a person upside down. `headless_many` finds
    her where the uncut photo has her: elbows, wrists and hips within a fifth of her
    shoulder width (the shoulders the cut runs through within two fifths), her nose above
    the photo's top edge. The uncut photo, whose head is
    inside, gets nobody from it."""
    from keypoints.search import find_people

    folder = shared_data / "real-formats" / "densepose-iuv-fashion"
    (path,) = folder.glob("*front.png")
    photo = load_image(path)
    whole = blazepose.predict(photo).keypoints
    cut = int(whole[1, 1])  # the neck: the middle of the shoulders
    shown = photo[cut:]
    assert (blazepose.predict(shown).keypoints < 0).all()  # the detector: nobody
    found = blazepose.headless_many([shown])[0]
    assert found.landmarks.headless and found.landmarks.points[0, 1] < 0
    truth = whole - [0, cut]
    width = float(np.linalg.norm(whole[2] - whole[5]))
    off = {k: np.linalg.norm(found.keypoints[k] - truth[k]) / width for k in range(18)}
    assert all(off[k] < 0.2 for k in (3, 6, 4, 7, 8, 11)), off  # elbows, wrists, hips
    assert off[2] < 0.4 and off[5] < 0.4, off  # shoulders the cut runs through: lower
    assert (found.keypoints[[0, 14, 15]] < 0).all()  # no face: it lies above the photo
    assert blazepose.headless_many([photo])[0].landmarks is None
    searched = find_people(blazepose.finder(), [shown], aspect=176 / 256)[0]
    assert searched.landmarks.headless
    assert np.linalg.norm(searched.keypoints[8] - truth[8]) < 0.2 * width
    # beside a blank half, picked by a box from the top edge down: her again; a box whose
    # top lies inside the photo gets nobody (the photo shows what the box cuts)
    h, w = shown.shape[:2]
    wide = np.concatenate([np.full_like(shown, 235), shown], axis=1)
    boxed = blazepose.headless_many([wide, wide], [(w, 0, w, h), (w, 10, w, h - 10)])
    assert boxed[0].landmarks.headless and boxed[1].landmarks is None
    assert np.linalg.norm(boxed[0].keypoints[8] - truth[8] - [w, 0]) < 0.2 * width
