"""The multi-dataset ViT-MoE UperNet: the authors' checkpoint layout, routing, one dataset's network."""

from __future__ import annotations

import pytest
import torch
from s5_moe_layout import CLASSES, DECODERS, HEADS, fake_moe_checkpoint
from torch import Tensor

from s5geo.models import build_model, list_models, load_pretrained
from s5geo.models.checkpoints import CheckpointError
from s5geo.models.upernet_mdf import MultiDatasetUPerNet, dataset_classes
from s5geo.models.vit_moe import S5_MDF_TASKS, MoEUPerNet


@pytest.fixture(scope="module")
def checkpoint() -> dict[str, dict[str, Tensor]]:
    return fake_moe_checkpoint(seed=0)


def _network(**kwargs) -> MultiDatasetUPerNet:
    torch.manual_seed(0)
    return build_model("upernet_mdf_vit_tiny_moe", num_classes=5, **kwargs)


def _plain_s4p(checkpoint: dict[str, dict[str, Tensor]]) -> dict[str, dict[str, Tensor]]:
    """An S4P-style checkpoint: plain-ViT FFNs (fc2 rows = shared + expert 0), one decoder, one head."""
    state = checkpoint["model"]
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if ".ffn.experts." in key or key.startswith(("module.semsegdecoder_", "module.semseghead_")):
            continue
        if ".ffn.layers.1." in key:
            expert = state[key.replace(".ffn.layers.1.", ".ffn.experts.0.")]
            value = torch.cat([value, expert])
        out[key] = value
    out["module.semseghead.1.weight"] = torch.randn(16, 64, 1, 1)
    out["module.semseghead.1.bias"] = torch.zeros(16)
    return {"model": out}


def test_registered_with_the_released_datasets() -> None:
    assert {"upernet_mdf_vit_b_moe", "upernet_mdf_vit_l_moe", "upernet_mdf_vit_tiny_moe"} <= set(
        list_models()
    )
    with torch.device("meta"):
        net = build_model("upernet_mdf_vit_b_moe", num_classes=5)
    assert isinstance(net, MultiDatasetUPerNet)
    assert net.datasets == list(S5_MDF_TASKS) and net.num_classes == CLASSES
    assert net.encoder.tasks == list(S5_MDF_TASKS) and net.single_model_name() == "upernet_vit_b_moe"
    keys = net.state_dict()
    assert tuple(keys["encoder.vit.blocks.11.mlp.experts.3.weight"].shape) == (256, 3072)
    assert tuple(keys["classifiers.openearthmap.weight"].shape) == (9, 256, 1, 1)


def test_dataset_option_forms_and_errors() -> None:
    assert dataset_classes(["Potsdam", "udd6"], 6) == {"potsdam": 6, "udd6": 6}
    assert dataset_classes({"loveda": 7}, 1) == {"loveda": 7}
    for bad in ([], ["a.b"], ["x", "X"], {"x": 0}):
        with pytest.raises(ValueError):
            dataset_classes(bad, 3)
    with pytest.raises(ValueError, match="datasets option"):
        build_model("upernet_mdf_vit_tiny_moe", num_classes=3, tasks=["a"])


def test_authors_checkpoint_loads_every_tensor(checkpoint) -> None:
    net = _network()
    report = net.load_pretrained(checkpoint, strict=True)
    assert report.kind == "s5" and report.ok and not report.adapted
    assert not report.missing and not report.unexpected and not report.mismatched
    assert set(report.loaded) == set(net.state_dict())
    # only the class token and the decoders' unused 1-class heads are left
    assert all(k.endswith("cls_token") or ".conv_seg." in k for k in report.dropped)
    assert len(report.loaded) + len(report.dropped) == len(checkpoint["model"])
    state = checkpoint["model"]
    for dataset in S5_MDF_TASKS:
        head = state[f"module.{HEADS[dataset]}.1.weight"]
        bottleneck = state[f"module.{DECODERS[dataset]}.decode_head.bottleneck.conv.weight"]
        assert torch.equal(net.classifiers[dataset].weight, head)
        assert torch.equal(net.decoders[dataset].bottleneck.conv.weight, bottleneck)
        expert = state[f"module.encoder.layers.2.ffn.experts.{S5_MDF_TASKS.index(dataset)}.weight"]
        index = net.encoder.expert_index(dataset)
        assert torch.equal(net.encoder.vit.blocks[2].mlp.experts[index].weight, expert)
    assert net.dataset == "vaihingen"  # loading leaves the default route alone


@pytest.mark.parametrize("dataset", S5_MDF_TASKS)
def test_one_dataset_network_gives_the_same_logits(checkpoint, dataset: str) -> None:
    net = _network().eval()
    net.load_pretrained(checkpoint, strict=True)
    single = build_model("upernet_vit_tiny_moe", num_classes=CLASSES[dataset]).eval()
    load_pretrained(single, checkpoint, dataset=dataset, strict=True)
    extracted = net.dataset_model(dataset)
    assert isinstance(extracted, MoEUPerNet) and extracted.dataset == dataset
    assert extracted.model_name == "upernet_vit_tiny_moe"
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = single(x)
        torch.testing.assert_close(net(x, dataset), expected)
        torch.testing.assert_close(extracted.eval()(x), expected)
    # its state dict is that of the registered single-dataset network
    fresh = build_model("upernet_vit_tiny_moe", num_classes=CLASSES[dataset], dataset=dataset)
    assert load_pretrained(fresh, net.dataset_state_dict(dataset), kind="s5geo", strict=True).ok


def test_extracted_network_is_a_copy_and_the_view_is_not(checkpoint) -> None:
    net = _network()
    copy = net.dataset_model("potsdam")
    copy.classifier.weight.data.zero_()
    assert net.classifiers["potsdam"].weight.abs().sum() > 0
    view = net.dataset_model("loveda", share=True)
    assert view.classifier is net.classifiers["loveda"] and view.encoder is net.encoder
    assert net.dataset == "loveda"


def test_one_encoder_pass_routes_each_dataset_through_its_expert(checkpoint) -> None:
    net = _network().eval()
    net.load_pretrained(checkpoint)
    torch.manual_seed(1)
    images = {d: torch.randn(n, 3, 64, 64) for d, n in zip(S5_MDF_TASKS, (2, 1, 3, 1), strict=True)}
    with torch.no_grad():
        joint = net.forward_datasets(images)
        for dataset, x in images.items():
            torch.testing.assert_close(joint[dataset], net(x, dataset))
        # batches of different sizes run one after the other
        mixed = net.forward_datasets({"potsdam": images["potsdam"], "loveda": torch.randn(1, 3, 32, 48)})
        assert mixed["loveda"].shape == (1, 7, 32, 48)
    net.set_grad_checkpointing(True)
    with pytest.raises(ValueError, match="one size"):
        net.forward_datasets({"potsdam": images["potsdam"], "loveda": torch.randn(1, 3, 32, 48)})


def test_activation_checkpointing_recomputes_with_each_dataset_expert(checkpoint) -> None:
    grads = []
    for checkpointing in (False, True):
        net = _network(drop_path_rate=0.0, dropout=0.0)
        net.load_pretrained(checkpoint)
        net.set_grad_checkpointing(checkpointing)
        torch.manual_seed(2)
        images = {"potsdam": torch.randn(2, 3, 64, 64), "loveda": torch.randn(2, 3, 64, 64)}
        logits = net.forward_datasets(images)
        (logits["potsdam"].square().mean() + logits["loveda"].mean()).backward()
        grads.append({n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, atol=1e-5, rtol=1e-4, msg=name)


def test_released_experts_are_matched_by_name(checkpoint) -> None:
    net = _network(datasets={"loveda": 7, "potsdam": 5, "udd6": 6})
    report = net.load_pretrained(checkpoint)
    state = checkpoint["model"]
    mlp = net.encoder.vit.blocks[1].mlp
    assert torch.equal(mlp.experts[0].weight, state["module.encoder.layers.1.ffn.experts.3.weight"])
    assert torch.equal(mlp.experts[1].weight, state["module.encoder.layers.1.ffn.experts.1.weight"])
    assert torch.equal(net.classifiers["loveda"].weight, state["module.semseghead_loveda.1.weight"])
    # UDD6 has no expert, decoder nor head in the checkpoint: only they are missing
    assert report.missing and all(
        k.startswith(("decoders.udd6.", "classifiers.udd6.")) or ".experts.2." in k for k in report.missing
    )
    assert not report.unexpected and not report.mismatched
    assert any(".ffn.experts.0." in k for k in report.dropped)  # Vaihingen's expert
    assert any(
        k.startswith("module.semsegdecoder.") or k.startswith("semsegdecoder.") for k in report.dropped
    )
    with pytest.raises(CheckpointError, match="strict"):
        net.load_pretrained(checkpoint, strict=True)


def test_single_decoder_checkpoint_starts_every_dataset(checkpoint) -> None:
    """S4P UperNet -> every dataset's decoder, FFN split into shared rows and experts (as the authors)."""
    s4p = _plain_s4p(checkpoint)
    net = _network()
    report = net.load_pretrained(s4p)
    assert not report.unexpected and not report.missing
    assert {k for k, _, _ in report.mismatched} == {
        f"classifiers.{d}.{p}" for d in CLASSES for p in ("weight", "bias")
    }
    decoder = s4p["model"]["module.semsegdecoder.decode_head.fpn_bottleneck.conv.weight"]
    fc2 = s4p["model"]["module.encoder.layers.0.ffn.layers.1.weight"]
    for dataset in S5_MDF_TASKS:
        assert torch.equal(net.decoders[dataset].fpn_bottleneck.conv.weight, decoder)
        assert torch.equal(
            net.encoder.vit.blocks[0].mlp.experts[net.encoder.expert_index(dataset)].weight, fc2[48:]
        )
    assert "encoder.vit.blocks.0.mlp.experts.3.weight" in report.adapted


def test_own_checkpoint_round_trip() -> None:
    source = _network(datasets={"potsdam": 5, "loveda": 7})
    lightning = {"state_dict": {f"model.{k}": v for k, v in source.state_dict().items()}}
    net = build_model("upernet_mdf_vit_tiny_moe", num_classes=5, datasets={"potsdam": 5, "loveda": 7})
    report = net.load_pretrained(lightning, strict=True)
    assert report.kind == "s5geo"
    assert all(torch.equal(v, source.state_dict()[k]) for k, v in net.state_dict().items())


def test_optimiser_helpers() -> None:
    net = _network().eval()
    top = net.num_layers - 1
    assert net.layer_id("decoders.potsdam.bottleneck.conv.weight") == top
    assert net.layer_id("classifiers.loveda.weight") == top
    assert net.layer_id("encoder.vit.blocks.0.mlp.experts.1.weight") == 1
    no_decay = net.no_weight_decay()
    assert "encoder.vit.pos_embed" in no_decay and "decoders.potsdam.bottleneck.bn.weight" in no_decay
    assert "classifiers.potsdam.weight" not in no_decay
    net.reset_classifier(3, "loveda")
    assert net.num_classes["loveda"] == 3 and net.classifiers["loveda"].out_channels == 3
    assert net(torch.randn(1, 3, 64, 64), "loveda").shape == (1, 3, 64, 64)
    with pytest.raises(ValueError, match="unknown dataset"):
        net(torch.randn(1, 3, 64, 64), "isaid")
