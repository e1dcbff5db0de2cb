import numpy as np
import rasterio
from _inference_helpers import NUM_CLASSES, make_metadata, write_raster
from lightning.pytorch import LightningModule
from rasterio.transform import from_origin
from torch import nn
from torch.utils.data import DataLoader
from torchgeo.datasets import RasterDataset, stack_samples
from torchgeo.samplers import GridGeoSampler
from trainer_helpers import quiet_trainer

from s5geo.inference.writer import GeoTiffPredictionWriter


class IdentityTask(LightningModule):
    def predict_step(self, batch, batch_idx):
        classes = batch["image"][:, 0].round().long().clamp(0, NUM_CLASSES - 1)
        return nn.functional.one_hot(classes, NUM_CLASSES).permute(0, 3, 1, 2).float()


def test_writer_mosaic_reproduces_class_map(tmp_path, class_map) -> None:
    transform = from_origin(630_000.0, 230_000.0, 10.0, 10.0)
    (tmp_path / "data").mkdir()
    write_raster(tmp_path / "data" / "scene.tif", class_map.astype(np.float32), transform=transform)
    dataset = RasterDataset(paths=str(tmp_path / "data"))
    sampler = GridGeoSampler(dataset, size=32, stride=24)
    loader = DataLoader(dataset, sampler=sampler, batch_size=3, collate_fn=stack_samples)
    meta = make_metadata()
    writer = GeoTiffPredictionWriter(tmp_path / "out", classes=meta.classes, colors=meta.colors, crop=4)
    trainer = quiet_trainer(devices=1, callbacks=[writer])
    trainer.predict(IdentityTask(), dataloaders=loader, return_predictions=False)

    tiles = sorted((tmp_path / "out" / "tiles" / "rank0").glob("*.tif"))
    assert len(tiles) == len(sampler)
    with rasterio.open(tmp_path / "out" / "prediction.vrt") as vrt:
        assert vrt.crs == rasterio.crs.CRS.from_epsg(32119)
        assert vrt.transform == transform
        assert (vrt.height, vrt.width) == class_map.shape
        np.testing.assert_array_equal(vrt.read(1), class_map)
        assert vrt.colormap(1)[2][:3] == meta.colors[2]
    # Cropped tiles of a stride-24 grid with crop 4 only overlap where the last window is
    # aligned to the raster edge: the total tile area is close to the raster area.
    area = 0
    for tile in tiles:
        with rasterio.open(tile) as src:
            area += src.width * src.height
    assert class_map.size <= area < 1.5 * class_map.size


class ClassIndexTask(LightningModule):
    """Like the s5geo tasks: ``predict_step`` returns class indices ``B x H x W`` of [0, 1] images."""

    def predict_step(self, batch, batch_idx):
        return (batch["image"][:, 0] * 255).round().long().clamp(0, NUM_CLASSES - 1)


def test_writer_with_prediction_datamodule_and_class_indices(tmp_path, class_map) -> None:
    from s5geo.datamodules import GeoPredictionDataModule

    transform = from_origin(630_000.0, 230_000.0, 10.0, 10.0)
    write_raster(tmp_path / "scene.tif", class_map, transform=transform)
    meta = make_metadata()
    data = GeoPredictionDataModule(
        paths=str(tmp_path / "scene.tif"),
        window_size=32,
        overlap=8,
        batch_size=4,
        classes=meta.classes,
        colors=meta.colors,
    )
    writer = GeoTiffPredictionWriter(tmp_path / "out")  # names/colours from the datamodule
    trainer = quiet_trainer(devices=1, callbacks=[writer])
    assert trainer.predict(ClassIndexTask(), datamodule=data) is None  # not kept in memory
    assert writer.crop == 4  # half the datamodule's overlap
    with rasterio.open(tmp_path / "out" / "prediction.vrt") as vrt:
        assert vrt.transform == transform
        np.testing.assert_array_equal(vrt.read(1), class_map)
        assert vrt.colormap(1)[3][:3] == meta.colors[3]
        assert vrt.tags(1)["CLASS_1"] == meta.classes[1]
