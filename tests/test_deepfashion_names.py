import pytest

from common.deepfashion import parse_flat, parse_raw


def test_flat_raw_and_semantic_paths():
    name = parse_flat("fashionWOMENTees_Tanksid0000508545_1front.jpg")
    assert (name.gender, name.category, name.item, name.outfit, name.view_no, name.view) == (
        "WOMEN",
        "Tees_Tanks",
        "00005085",
        "45",
        1,
        "front",
    )
    assert name.raw == "WOMEN/Tees_Tanks/id_00005085/45_1_front.jpg"
    # ADGAN's split_name layout for semantic maps
    assert name.semantic_path() == "semantic_merge3/WOMEN/Tees_Tanks/id_00005085/45_1_front.npy"
    assert parse_raw("img/" + name.raw) == name
    assert name.identity == "WOMENTees_Tanksid0000508545"


def test_bad_names_are_refused():
    with pytest.raises(ValueError, match="not a DeepFashion pose-transfer name"):
        parse_flat("photo.jpg")
    with pytest.raises(ValueError, match="raw In-shop path"):
        parse_raw("WOMEN/Tees/45_1_front.jpg")


@pytest.mark.real_data
def test_every_published_name_parses(shared_data):
    for split in ("train", "test"):
        names = (shared_data / "deepfashion" / f"{split}.lst").read_text().split()
        assert len(names) == {"train": 48674, "test": 4038}[split]
        for n in names:
            assert parse_flat(n).flat == n
