"""The demo and the Dubai benchmark keep the options of their recorded runs (RESULTS.md).

The tasks and datamodules are built exactly as the demo builds them, with training replaced by a
recorder, so nothing is trained here.
"""

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import torch

from s5geo.datamodules._collate import CropPadCollate
from s5geo.demo import dubai, landsat, sample_data_root

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "semi_supervised_real.py"


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, Any]]:
    runs: list[tuple[Any, Any]] = []

    def record(task: Any, datamodule: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        runs.append((task, datamodule))
        return {}

    monkeypatch.setattr(dubai, "fit_and_save", record)
    monkeypatch.setattr(landsat, "fit_and_save", record)
    monkeypatch.setattr(dubai, "evaluate", lambda *args, **kwargs: {"mIoU": 0.0})
    return runs


def _assert_recorded_views(datamodule: Any, crop: int, loader_crop: int, rescale: tuple) -> None:
    assert datamodule.crop_order == "crop_then_rescale" and datamodule.partner_batch is None
    assert datamodule.loader_crop_size == loader_crop
    assert datamodule.train_augmentation.scale == rescale
    assert datamodule.train_augmentation.crop_size == crop
    collates = datamodule._collates()
    assert all(isinstance(c, CropPadCollate) and c.size == loader_crop for c in collates)


def _assert_recorded_method(task: Any) -> None:
    assert task.hparams.cutmix_partner == "flip" and task.hparams.teacher_mode == "eval"


@pytest.mark.parametrize("method", ["fixmatch", "unimatch"])
def test_dubai_benchmark_runs_keep_their_recorded_options(captured, method: str, tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("semi_supervised_real", BENCHMARK)
    assert spec is not None and spec.loader is not None
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    dataset = dubai.dubai_dataset(sample_data_root() / "dubai_aerial")
    config = dubai.DubaiConfig()
    benchmark.run_one(dataset, config, method, list(dubai.HELD_OUT_TILES), [], cache=tmp_path)
    (supervised, sup_data), (task, data) = captured
    assert type(supervised).__name__ == "SupervisedSegmentation" and sup_data is data
    assert type(task) is dubai.METHODS[method]
    _assert_recorded_method(task)
    assert method != "fixmatch" or task.hparams.joint_forward is False
    _assert_recorded_views(data, config.crop_size, 2 * config.crop_size, (0.5, 2.0))
    data.setup("fit")
    torch.manual_seed(0)
    assert set(next(iter(data.train_dataloader()))) == {"labeled", "unlabeled"}


class _Scene:
    """Stands in for the Landsat rasters and vectors: reading chips is not what is checked here."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __and__(self, other: Any) -> "_Scene":
        return self


def test_landsat_demo_keeps_its_recorded_options(captured, tmp_path: Path, monkeypatch) -> None:
    for name in ("LandsatScene", "RasterLabels", "VectorLabels", "RandomGeoSampler"):
        monkeypatch.setattr(landsat, name, _Scene)
    monkeypatch.setattr(landsat, "GeoChips", lambda *args, **kwargs: [])
    config = landsat.LandsatConfig()
    landsat.train(sample_data_root() / "nc_landsat", config, tmp_path / "landsat.ckpt", progress=False)
    ((task, data),) = captured
    _assert_recorded_method(task)
    assert task.hparams.joint_forward is True
    _assert_recorded_views(data, config.chip_size, config.chip_size, (0.75, 1.5))
