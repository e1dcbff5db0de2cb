import pytest
import torch
from torch import nn

from s5geo.errors import S5GeoError
from s5geo.models import SegmentationModel, build_model, list_models, register_model
from s5geo.models.vit import ViTEncoder

EXPECTED = {
    "upernet_vit_b",
    "upernet_vit_l",
    "upernet_vit_h",
    "upernet_vit_tiny",
    "upernet_swin_t",
    "upernet_resnet18",
    "upernet_resnet50",
    "upernet_resnet101",
    "deeplabv3plus_resnet18",
    "deeplabv3plus_resnet101",
}


def test_expected_models_registered() -> None:
    assert set(list_models()) >= EXPECTED
    assert list_models() == sorted(list_models())


def test_unknown_model_lists_known_names() -> None:
    with pytest.raises(S5GeoError) as info:
        build_model("upernet_vit_xxl", num_classes=3)
    message = str(info.value)
    assert "upernet_vit_xxl" in message
    assert "upernet_vit_b" in message and "deeplabv3plus_resnet101" in message


def test_register_model_rejects_duplicates() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_model("upernet_vit_b")(lambda **kw: None)


def test_register_and_build_custom_model() -> None:
    calls = {}

    @register_model("_test_custom_model")
    def factory(num_classes: int, in_channels: int = 3, **kwargs) -> SegmentationModel:
        calls.update(num_classes=num_classes, in_channels=in_channels, **kwargs)
        return build_model("upernet_vit_tiny", num_classes, in_channels)

    model = build_model("_test_custom_model", 4, in_channels=5, foo=1)
    assert calls == {"num_classes": 4, "in_channels": 5, "foo": 1}
    assert model.model_name == "_test_custom_model"
    assert "_test_custom_model" in list_models()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_model_builds_on_meta(name: str) -> None:
    with torch.device("meta"):
        model = build_model(name, num_classes=7, in_channels=4)
        out = model(torch.empty(2, 4, 512, 256))
    assert isinstance(model, SegmentationModel)
    assert out.shape == (2, 7, 512, 256)
    assert all(p.device.type == "meta" for p in model.parameters())
    assert isinstance(model.classifier, nn.Conv2d) and model.classifier.out_channels == 7
    assert model.encoder.num_layers + 1 == model.num_layers


@pytest.mark.parametrize(
    ("name", "dim", "blocks", "indices"),
    [
        ("upernet_vit_b", 768, 12, [3, 5, 7, 11]),
        ("upernet_vit_l", 1024, 24, [7, 11, 15, 23]),
        ("upernet_vit_h", 1280, 32, [15, 23, 27, 31]),
    ],
)
def test_vit_sizes_match_s5(name: str, dim: int, blocks: int, indices: list[int]) -> None:
    with torch.device("meta"):
        model = build_model(name, num_classes=2)
    encoder = model.encoder
    assert isinstance(encoder, ViTEncoder)
    assert encoder.vit.embed_dim == dim
    assert len(encoder.vit.blocks) == blocks
    assert list(encoder.out_indices) == indices
    assert encoder.patch_size == 16
    assert encoder.vit.pos_embed.shape == (1, (512 // 16) ** 2, dim)  # no class-token slot
    assert model.decoder.channels == 256
    assert [m[0].output_size for m in model.decoder.psp_modules] == [1, 2, 3, 6]
    assert model.dropout.p == 0.1
