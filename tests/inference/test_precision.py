"""``--precision``: bf16/fp16 autocast for PyTorch models, refused for models whose precision is fixed."""

import numpy as np
import pytest
import rasterio
import torch
from _inference_helpers import NUM_CLASSES, make_metadata, write_raster
from test_loading_cli import TinyNet, checkpoint  # noqa: F401  (the checkpoint fixture)
from torch import nn

from s5geo.cli.main import main as s5geo_main
from s5geo.errors import S5GeoError
from s5geo.inference.predictor import TorchPredictor, make_predictor
from s5geo.inference.segment import segment_raster


class DtypeProbe(nn.Module):
    """TinyNet that records the dtype its first convolution computed in."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = TinyNet(NUM_CLASSES, 1, hidden=6)
        self.dtypes: list[torch.dtype] = []
        self.net.body[0].register_forward_hook(lambda m, i, o: self.dtypes.append(o.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@pytest.mark.parametrize(("precision", "dtype"), [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_predictor_runs_in_the_precision_and_returns_float32(precision, dtype) -> None:
    probe = DtypeProbe()
    predictor = TorchPredictor(probe, make_metadata(16), device="cpu", precision=precision)
    x = np.random.default_rng(0).normal(size=(2, 1, 16, 16)).astype(np.float32)
    scores = predictor.predict(x)
    assert probe.dtypes == [dtype]
    assert scores.dtype == np.float32 and scores.shape == (2, NUM_CLASSES, 16, 16)
    with torch.no_grad():
        exact = probe.net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(scores, exact, atol=0.05)  # bf16 keeps ~3 significant digits
    assert precision in predictor.device_name or precision == "fp32"


def test_segment_in_bf16_matches_fp32_map(tmp_path) -> None:
    image = np.random.default_rng(1).normal(size=(40, 50)).astype(np.float32)
    src = write_raster(tmp_path / "in.tif", image)
    probe = DtypeProbe()
    maps = {}
    for precision in ("fp32", "bf16"):
        out = segment_raster(
            src,
            probe,
            tmp_path / f"{precision}.tif",
            metadata=make_metadata(16),
            device="cpu",
            precision=precision,
            progress=False,
        )
        with rasterio.open(out) as dst:
            maps[precision] = dst.read(1)
    assert torch.bfloat16 in probe.dtypes and torch.float32 in probe.dtypes
    # Pixels whose two best logits are within bf16's rounding may flip; nearly all must agree.
    assert (maps["fp32"] == maps["bf16"]).mean() > 0.98


def test_precision_is_refused_for_onnx_and_ready_predictors(tmp_path) -> None:
    src = write_raster(tmp_path / "in.tif", np.zeros((20, 20), np.float32))
    with pytest.raises(S5GeoError, match=r"precision bf16 .* ONNX model .*model\.onnx"):
        segment_raster(src, tmp_path / "model.onnx", tmp_path / "out.tif", precision="bf16")
    assert not list(tmp_path.glob("out*"))
    ready = TorchPredictor(DtypeProbe(), make_metadata(16), device="cpu")
    with pytest.raises(S5GeoError, match="ready TorchPredictor"):
        make_predictor(ready, precision="fp16")
    with pytest.raises(S5GeoError, match="unknown precision 'int8'"):
        make_predictor(DtypeProbe(), make_metadata(16), precision="int8")


def test_cli_precision_option(tmp_path, checkpoint, capsys) -> None:  # noqa: F811
    path, net, _ = checkpoint
    image = np.random.default_rng(2).normal(size=(30, 30)).astype(np.float32)
    src = write_raster(tmp_path / "in.tif", image)
    out = tmp_path / "map.tif"
    argv = ["segment", str(src), "-m", str(path), "-o", str(out), "--no-progress", "--device", "cpu"]
    assert s5geo_main([*argv, "--precision", "bf16"]) == 0
    assert "cpu, bf16" in capsys.readouterr().err  # the log says how it ran
    with torch.no_grad():
        expected = net(torch.from_numpy(image)[None, None])[0].argmax(0).numpy()
    with rasterio.open(out) as dst:
        assert (dst.read(1) == expected).mean() > 0.98
    with pytest.raises(SystemExit):
        s5geo_main([*argv, "--overwrite", "--precision", "int8"])
    assert "invalid choice: 'int8'" in capsys.readouterr().err
