import numpy as np
import pytest

from common.image_io import ImageError, read_semantic_map, write_semantic_map
from parsing.formats import celebamask_mask_path, read_celebamask_masks, write_celebamask_masks


def test_semantic_map_round_trip_and_checks(tmp_path):
    labels = np.random.default_rng(0).integers(0, 8, (256, 176)).astype(np.uint8)
    write_semantic_map(tmp_path / "a" / "m.npy", labels)
    np.testing.assert_array_equal(read_semantic_map(tmp_path / "a" / "m.npy"), labels)
    np.save(tmp_path / "f.npy", labels.astype(np.float32))  # float maps with ids are fine
    np.testing.assert_array_equal(read_semantic_map(tmp_path / "f.npy"), labels)
    np.save(tmp_path / "bad.npy", np.full((4, 4), 9, np.int64))
    with pytest.raises(ImageError, match=r"bad\.npy: label values 9 are outside 0\.\.7"):
        read_semantic_map(tmp_path / "bad.npy")
    np.save(tmp_path / "3d.npy", np.zeros((8, 4, 4)))
    with pytest.raises(ImageError, match="2-D"):
        read_semantic_map(tmp_path / "3d.npy")
    (tmp_path / "junk.npy").write_bytes(b"nope")
    with pytest.raises(ImageError, match="not a readable"):
        read_semantic_map(tmp_path / "junk.npy")
    with pytest.raises(ImageError, match="no such"):
        read_semantic_map(tmp_path / "none.npy")
    with pytest.raises(ImageError):
        write_semantic_map(tmp_path / "w.npy", np.full((2, 2), 8))


def test_celebamask_attribute_masks_round_trip(tmp_path):
    labels = np.zeros((32, 32), np.uint8)
    labels[4:28, 6:26] = 1  # skin
    labels[10:12, 9:13] = 5  # r_eye
    labels[10:12, 19:23] = 4  # l_eye
    labels[:4] = 13  # hair
    labels[28:] = 18  # cloth
    written = write_celebamask_masks(tmp_path, 2001, labels)
    assert written == ["skin", "l_eye", "r_eye", "hair", "cloth"]
    assert celebamask_mask_path(tmp_path, 2001, "hair").parent.name == "1"
    assert celebamask_mask_path(tmp_path, 2001, "hair").name == "02001_hair.png"
    np.testing.assert_array_equal(read_celebamask_masks(tmp_path, 2001), labels)
    with pytest.raises(ImageError, match="no attribute mask for face 7"):
        read_celebamask_masks(tmp_path, 7)
    with pytest.raises(KeyError, match="valid:"):
        celebamask_mask_path(tmp_path, 0, "beard")
