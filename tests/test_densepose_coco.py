import contextlib
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO

from parsing.densepose import coarse_parts
from parsing.densepose_coco import (
    DensePoseFormatError,
    coarse_mask_to_image,
    decode_coarse_mask,
    encode_coarse_mask,
    make_annotation,
    read_densepose_coco,
    write_densepose_coco,
)


def _person(height=60, width=40):
    parts = np.zeros((height, width), np.uint8)
    parts[10:30, 12:28] = 2  # torso
    parts[30:55, 12:19] = 9  # right upper leg front
    parts[30:55, 21:28] = 10
    parts[3:10, 15:25] = 23
    u = np.tile(np.linspace(0, 1, width, dtype=np.float32), (height, 1))
    v = np.tile(np.linspace(0, 1, height, dtype=np.float32)[:, None], (1, width))
    return parts, u, v


def test_written_file_loads_in_pycocotools_and_reads_back(tmp_path):
    parts, u, v = _person()
    rows, cols = np.nonzero(parts)
    pick = np.random.default_rng(0).choice(rows.size, 50, replace=False)
    rows, cols = rows[pick], cols[pick]
    ann = make_annotation(
        annotation_id=7,
        image_id=3,
        person_mask=parts > 0,
        coarse_image=coarse_parts(parts),
        point_rows=rows,
        point_cols=cols,
        parts=parts[rows, cols],
        u=u[rows, cols],
        v=v[rows, cols],
    )
    path = tmp_path / "dp.json"
    write_densepose_coco(path, [{"id": 3, "file_name": "p.jpg", "height": 60, "width": 40}], [ann])
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(path))
    mask = coco.annToMask(coco.anns[7])
    np.testing.assert_array_equal(mask.astype(bool), parts > 0)
    assert coco.anns[7]["bbox"] == [12.0, 3.0, 16.0, 52.0]
    (person,) = read_densepose_coco(path)
    np.testing.assert_allclose(person.x, cols, atol=1e-3)
    np.testing.assert_allclose(person.y, rows, atol=1e-3)
    np.testing.assert_array_equal(person.parts, parts[rows, cols])
    np.testing.assert_allclose(person.u, u[rows, cols], atol=1e-5)
    pasted = coarse_mask_to_image(person.coarse_mask, person.bbox, 60, 40)
    truth = coarse_parts(parts)
    assert (pasted == truth).mean() > 0.97


def test_coarse_mask_rle_round_trip():
    coarse = np.random.default_rng(1).integers(0, 15, (256, 256)).astype(np.uint8)
    coarse[:, :100] = 0
    coarse[coarse == 7] = 0  # an absent part is written as []
    encoded = encode_coarse_mask(coarse)
    assert len(encoded) == 14 and encoded[6] == []
    json.dumps(encoded)  # JSON-ready
    np.testing.assert_array_equal(decode_coarse_mask(encoded), coarse)
    with pytest.raises(DensePoseFormatError, match="14 entries"):
        decode_coarse_mask(encoded[:3])


@pytest.mark.real_data
def test_real_densepose_annotation(shared_data):
    folder = shared_data / "real-formats" / "densepose"
    (person,) = read_densepose_coco(folder / "densepose_coco_style_single_ann.json")
    assert person.parts.size == 125 and person.coarse_mask is None
    assert person.parts.min() >= 1 and person.parts.max() <= 24
    x, y, w, h = person.bbox
    assert (person.x >= x - 1).all() and (person.x <= x + w).all()
    assert (person.y >= y - 1).all() and (person.y <= y + h).all()


@pytest.mark.real_data
def test_plain_coco_file_is_refused(shared_data):
    plain = shared_data / "real-formats" / "coco-keypoints" / "test_coco.json"
    with pytest.raises(DensePoseFormatError, match="none of its 14 annotations has DensePose"):
        read_densepose_coco(plain)


def test_broken_annotations_are_named(tmp_path):
    base = {
        "images": [{"id": 1, "file_name": "a.jpg", "height": 10, "width": 10}],
        "categories": [{"id": 1, "name": "person"}],
    }
    ann = {
        "id": 5,
        "image_id": 1,
        "category_id": 1,
        "bbox": [0, 0, 5, 5],
        "area": 25,
        "iscrowd": 0,
        "dp_x": [1.0],
        "dp_y": [1.0],
        "dp_I": [3.0],
        "dp_U": [0.5],
    }
    (tmp_path / "a.json").write_text(json.dumps({**base, "annotations": [ann]}))
    with pytest.raises(DensePoseFormatError, match="annotation 5 lacks dp_V"):
        read_densepose_coco(tmp_path / "a.json")
    ann.update(dp_V=[0.5], dp_I=[30.0])
    (tmp_path / "b.json").write_text(json.dumps({**base, "annotations": [ann]}))
    with pytest.raises(DensePoseFormatError, match=r"annotation 5: dp_I outside 1\.\.24"):
        read_densepose_coco(tmp_path / "b.json")
    (tmp_path / "c.json").write_text("[1, 2")
    with pytest.raises(DensePoseFormatError, match="not valid JSON"):
        read_densepose_coco(tmp_path / "c.json")
    with pytest.raises(DensePoseFormatError, match="no such"):
        read_densepose_coco(tmp_path / "missing.json")
