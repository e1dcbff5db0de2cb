import pytest
import torch
from torch import nn

from s5geo.models import build_model

TINY = ["upernet_vit_tiny", "upernet_resnet18", "deeplabv3plus_resnet18"]


def _make(name: str, num_classes: int = 5, in_channels: int = 3, **kwargs) -> nn.Module:
    torch.manual_seed(0)
    return build_model(name, num_classes, in_channels=in_channels, **kwargs).eval()


@pytest.mark.parametrize("name", TINY)
@pytest.mark.parametrize("in_channels", [3, 4, 6])
def test_tiny_forward_shapes(name: str, in_channels: int) -> None:
    model = _make(name, num_classes=5, in_channels=in_channels)
    sizes = [(64, 96), (96, 96), (64, 64)] if in_channels == 3 else [(64, 96)]
    with torch.no_grad():
        for h, w in sizes:
            out = model(torch.randn(1, in_channels, h, w))
            assert out.shape == (1, 5, h, w)
            assert torch.isfinite(out).all()


def test_swin_forward_small() -> None:
    model = _make("upernet_swin_t", num_classes=3, in_channels=4, img_size=64)
    with torch.no_grad():
        out = model(torch.randn(1, 4, 64, 64))
    assert out.shape == (1, 3, 64, 64)


@pytest.mark.parametrize("name", TINY)
def test_features_then_decode_equals_forward(name: str) -> None:
    model = _make(name)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        feats = model.forward_features(x)
        composed = model.forward_decode(feats, x.shape[-2:])
        direct = model(x)
        # the decoder really uses the features: perturbing them changes the logits
        perturbed = model.forward_decode([f * 0.5 for f in feats], x.shape[-2:])
    assert isinstance(feats, list) and all(isinstance(f, torch.Tensor) for f in feats)
    torch.testing.assert_close(composed, direct)
    assert not torch.allclose(perturbed, direct)


def test_vit_pyramid_strides() -> None:
    model = _make("upernet_vit_tiny")
    feats = model.forward_features(torch.randn(1, 3, 64, 128))
    assert [tuple(f.shape[-2:]) for f in feats] == [(16, 32), (8, 16), (4, 8), (2, 4)]


def test_deeplab_features_are_low_and_high() -> None:
    model = _make("deeplabv3plus_resnet18")
    low, high = model.forward_features(torch.randn(2, 3, 64, 64))
    assert low.shape == (2, 64, 16, 16)  # layer1, stride 4
    assert high.shape == (2, 512, 4, 4)  # layer4, stride 16 (dilated)


@pytest.mark.parametrize("name", TINY)
def test_reset_classifier(name: str) -> None:
    model = _make(name, num_classes=5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.reset_classifier(9)
    after = model.state_dict()
    assert model.classifier.out_channels == 9 and model.num_classes == 9
    assert after["classifier.weight"].shape[0] == 9
    for key, value in before.items():
        if not key.startswith("classifier."):
            torch.testing.assert_close(after[key], value, rtol=0, atol=0)
    with torch.no_grad():
        assert model(torch.randn(2, 3, 64, 64)).shape == (2, 9, 64, 64)


@pytest.mark.parametrize("name", TINY)
def test_grad_checkpointing_same_output_and_grads(name: str) -> None:
    torch.manual_seed(1)
    x = torch.randn(1, 3, 64, 64)
    ref = _make(name)
    ckpt = _make(name, grad_checkpointing=True)
    ckpt.load_state_dict(ref.state_dict())

    # a checkpointed block is entered again during backward (recomputation)
    block = ckpt.encoder.vit.blocks[0] if name.startswith("upernet_vit") else None
    if block is None:
        block = ckpt.encoder.model.layer1
    calls = []
    block.register_forward_pre_hook(lambda *_: calls.append(1))

    outs, grads = [], []
    for model in (ref, ckpt):
        xi = x.clone().requires_grad_(True)
        out = model(xi)
        out.square().mean().backward()
        outs.append(out.detach())
        grads.append(xi.grad)
    torch.testing.assert_close(outs[0], outs[1])
    torch.testing.assert_close(grads[0], grads[1])
    assert len(calls) == 2


@pytest.mark.parametrize("name", ["upernet_vit_tiny", "upernet_resnet18"])
def test_channels_last(name: str) -> None:
    ref = _make(name)
    cl = _make(name, channels_last=True)
    cl.load_state_dict(ref.state_dict())
    assert cl.classifier.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(cl(x), ref(x), rtol=1e-4, atol=1e-5)


def test_vit_other_input_size_interpolates_pos_embed() -> None:
    model = _make("upernet_vit_tiny", img_size=64)  # 4x4 position grid
    grid = model.encoder.vit.pos_embed.shape[1]
    x = torch.randn(1, 3, 96, 160)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (1, 5, 96, 160)
    assert model.encoder.vit.pos_embed.shape[1] == grid == 16
    # the position embedding matters: zeroing it changes the output at the new size
    with torch.no_grad():
        model.encoder.vit.pos_embed.mul_(0)
        assert not torch.allclose(model(x), out)


def test_vit_rejects_size_not_multiple_of_patch() -> None:
    model = _make("upernet_vit_tiny")
    with pytest.raises(ValueError, match="multiple of the patch size"):
        model(torch.randn(1, 3, 70, 64))


def test_no_weight_decay_vit() -> None:
    model = _make("upernet_vit_tiny")
    names = model.no_weight_decay()
    params = dict(model.named_parameters())
    assert names <= set(params)
    assert "encoder.vit.pos_embed" in names
    assert "encoder.vit.blocks.0.norm1.weight" in names
    assert "encoder.vit.blocks.3.norm2.bias" in names
    assert "encoder.neck.fpn1.1.weight" in names  # neck LayerNorm
    assert "decoder.bottleneck.bn.weight" in names
    assert "encoder.vit.blocks.0.attn.qkv.weight" not in names
    assert "decoder.bottleneck.conv.weight" not in names
    assert "classifier.weight" not in names


def test_no_weight_decay_swin_bias_tables() -> None:
    with torch.device("meta"):
        model = build_model("upernet_swin_t", 3)
    names = model.no_weight_decay()
    assert any("relative_position_bias_table" in n for n in names)
    assert any(n.endswith("norm1.weight") for n in names)


def test_layer_id_vit() -> None:
    model = _make("upernet_vit_tiny")
    ids = [model.layer_id(n) for n, _ in model.named_parameters()]
    depth = len(model.encoder.vit.blocks)
    assert model.num_layers == depth + 2
    assert model.layer_id("encoder.vit.pos_embed") == 0
    assert model.layer_id("encoder.vit.patch_embed.proj.weight") == 0
    for i in range(depth):
        assert model.layer_id(f"encoder.vit.blocks.{i}.attn.qkv.weight") == i + 1
    assert model.layer_id("encoder.neck.fpn1.0.weight") == depth + 1
    assert model.layer_id("classifier.weight") == depth + 1
    vit_ids = [model.layer_id(n) for n, _ in model.named_parameters() if n.startswith("encoder.vit.")]
    assert vit_ids == sorted(vit_ids)
    assert min(ids) == 0 and max(ids) == model.num_layers - 1


def test_layer_id_resnet() -> None:
    model = _make("upernet_resnet18")
    assert model.layer_id("encoder.model.conv1.weight") == 0
    assert model.layer_id("encoder.model.layer1.0.conv1.weight") == 1
    assert model.layer_id("encoder.model.layer4.1.bn2.bias") == 4
    assert model.layer_id("decoder.fpn_bottleneck.conv.weight") == 5 == model.num_layers - 1
    ids = [model.layer_id(n) for n, _ in model.named_parameters()]
    assert ids == sorted(ids)


def test_drop_path_rate_option() -> None:
    model = _make("upernet_vit_tiny", drop_path_rate=0.2)
    blocks = model.encoder.vit.blocks
    assert isinstance(blocks[0].drop_path1, nn.Identity)  # rate 0 for the first block
    assert blocks[-1].drop_path1.drop_prob == pytest.approx(0.2)
    assert 0 < blocks[1].drop_path1.drop_prob < 0.2


@pytest.mark.parametrize("name", TINY)
def test_every_parameter_gets_a_gradient(name: str) -> None:
    # DDP without find_unused_parameters needs every parameter in the graph
    model = _make(name).train()
    model(torch.randn(2, 3, 64, 64)).mean().backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert unused == []


def test_layer_id_swin() -> None:
    with torch.device("meta"):
        model = build_model("upernet_swin_t", 3)
    ids = {model.layer_id(n) for n, _ in model.named_parameters() if n.startswith("encoder.")}
    assert ids == {0, 1, 2, 3, 4}
    assert model.layer_id("encoder.model.layers_2.blocks.0.attn.qkv.weight") == 3
    assert model.layer_id("decoder.bottleneck.conv.weight") == model.num_layers - 1 == 5
