from s5geo.metadata import ModelMetadata, class_name_tags, classes_from_tags


def test_class_name_tags_round_trip() -> None:
    tags = class_name_tags(["water", "road"])
    assert classes_from_tags(tags) == {0: "water", 1: "road"}
    numbered = {k: v for k, v in tags.items() if k != "CLASS_NAMES"}
    assert classes_from_tags(numbered) == {0: "water", 1: "road"}


def test_classes_from_tags_order_and_formats() -> None:
    meta = ModelMetadata(classes=["a", "b"], colors=[(0, 0, 0), (1, 1, 1)])
    assert classes_from_tags({}, {"s5geo": meta.to_json()}) == {0: "a", 1: "b"}
    assert classes_from_tags({"classes": '{"3": "x"}'}, {"CLASS_NAMES": '["y"]'}) == {3: "x"}
    assert classes_from_tags({"classes": "not json"}, {}) is None


def test_metadata_json_round_trip_and_validation() -> None:
    meta = ModelMetadata(classes=["a"], colors=[(1, 2, 3)], bands=[4], mean=[10.0], std=[2.0], gsd=0.5)
    again = ModelMetadata.from_json(meta.to_json())
    assert again == meta and again.num_classes == 1 and again.in_channels == 1
    import pytest

    with pytest.raises(ValueError, match="colours"):
        ModelMetadata(classes=["a", "b"], colors=[(0, 0, 0)])
    with pytest.raises(ValueError, match="positive"):
        ModelMetadata(classes=["a"], colors=[(0, 0, 0)], bands=[1], mean=[0.0], std=[0.0])


def test_band_names_round_trip_and_validation() -> None:
    import pytest

    named = ModelMetadata(classes=["a"], colors=[(1, 2, 3)], band_names=("Red", "green", "blue"))
    again = ModelMetadata.from_json(named.to_json())
    assert again == named and again.band_names == ["Red", "green", "blue"]
    plain = ModelMetadata(classes=["a"], colors=[(1, 2, 3)])
    older = plain.to_dict()
    del older["band_names"]  # written before the field existed
    assert ModelMetadata.from_dict(older).band_names is None
    assert ModelMetadata.from_json(plain.to_json()) == plain
    with pytest.raises(ValueError, match="3 bands but 2 band names"):
        ModelMetadata(classes=["a"], colors=[(0, 0, 0)], band_names=["red", "green"])
