import numpy as np
import pytest
import rasterio
import torch
from _inference_helpers import NUM_CLASSES, make_metadata, write_raster
from torch import nn

from s5geo.cli.main import main as s5geo_main
from s5geo.errors import S5GeoError
from s5geo.inference import loading
from s5geo.inference.loading import load_model


class TinyNet(nn.Module):
    def __init__(self, num_classes: int, in_channels: int, hidden: int = 5) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 3, padding=1), nn.ReLU(), nn.Conv2d(hidden, num_classes, 1)
        )

    def forward(self, x):
        return self.body(x)


@pytest.fixture
def checkpoint(tmp_path, monkeypatch):
    built = []

    def fake_build(name, num_classes, in_channels, **kwargs):
        assert name == "tiny"
        built.append(kwargs)
        return TinyNet(num_classes, in_channels, **kwargs)

    monkeypatch.setattr(loading, "_build_model", fake_build)
    torch.manual_seed(0)
    net = TinyNet(NUM_CLASSES, 1, hidden=7)
    path = tmp_path / "model.ckpt"
    torch.save(
        {
            "state_dict": {f"model.{k}": v for k, v in net.state_dict().items()} | {"mean": torch.zeros(1)},
            "hyper_parameters": {
                "model": "tiny",
                "model_kwargs": {"hidden": 7},
                "num_classes": NUM_CLASSES,
                "in_channels": 1,
            },
            "s5geo_metadata": make_metadata(16).to_dict(),
        },
        path,
    )
    return path, net, built


def test_load_model_restores_weights_and_metadata(checkpoint) -> None:
    path, net, built = checkpoint
    module, metadata = load_model(path)
    assert built == [{"hidden": 7}]
    assert metadata == make_metadata(16)
    x = torch.randn(2, 1, 8, 8)
    torch.testing.assert_close(module(x), net(x))
    assert not module.training


def test_load_model_errors(tmp_path) -> None:
    with pytest.raises(S5GeoError, match="not found"):
        load_model(tmp_path / "nope.ckpt")
    bad = tmp_path / "bad.ckpt"
    torch.save({"state_dict": {}}, bad)
    with pytest.raises(S5GeoError, match="metadata"):
        load_model(bad)
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(S5GeoError, match=r"junk\.ckpt"):
        load_model(junk)


def test_cli_segment_with_checkpoint(tmp_path, checkpoint, capsys) -> None:
    path, net, _ = checkpoint
    image = np.random.default_rng(0).normal(size=(40, 50)).astype(np.float32)
    src = write_raster(tmp_path / "in.tif", image)
    out = tmp_path / "map.tif"
    argv = [
        "segment",
        str(src),
        "--model",
        str(path),
        "--output",
        str(out),
        "--blend",
        "none",
        "--window",
        "16",
        "--overlap",
        "0.5",
        "--device",
        "auto",
        "--no-progress",
    ]
    assert s5geo_main(argv) == 0
    assert "cpu" in capsys.readouterr().err  # says which device it used
    with torch.no_grad():
        expected = net(torch.from_numpy(image)[None, None])[0].argmax(0).numpy()
    with rasterio.open(out) as dst:
        np.testing.assert_array_equal(dst.read(1), expected)
    # A second run without --overwrite refuses, with a one-line error.
    assert s5geo_main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert "exists" in err and len(err.splitlines()) == 1


def test_cli_segment_missing_input_is_one_line_error(tmp_path, capsys) -> None:
    code = s5geo_main(
        ["segment", str(tmp_path / "missing.tif"), "--model", "m.ckpt", "--output", str(tmp_path / "o.tif")]
    )
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert len(err.splitlines()) == 1 and "missing.tif" in err and err.startswith("s5geo segment")
