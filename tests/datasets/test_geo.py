import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from torch.utils.data import DataLoader
from torchgeo.datasets import IntersectionDataset, stack_samples
from torchgeo.samplers import GridGeoSampler, RandomGeoSampler

from s5geo.datasets.geo import (
    NC_LANDSAT_CLASSES,
    LandsatScene,
    RasterLabels,
    VectorLabels,
    nc_landsat,
    remap_labels,
)
from s5geo.errors import DatasetLayoutError, InvalidMaskError

ROOT = Path(__file__).resolve().parents[1] / "data" / "nc_landsat"
# The real NC Landsat sample shipped with s5geo.
REAL = Path(__file__).resolve().parents[2] / "s5geo" / "sample_data" / "nc_landsat"


def strata() -> np.ndarray:
    with rasterio.open(ROOT / "strata.tif") as src:
        return src.read(1)


def test_scene_reads_separate_band_files_and_fills_nodata() -> None:
    scene = LandsatScene(ROOT)
    assert len(scene.index) == 1 and scene.bands == LandsatScene.all_bands
    assert scene.res == (28.5, 28.5) and scene.crs.to_epsg() == 32119
    sample = scene[scene.bounds]
    image = sample["image"]
    assert image.dtype == torch.float32 and image.shape == (6, 56, 64)
    # nodata (-99999, and -32768 in the int16 band 70) becomes 0 in the triangular corner
    assert image.min() >= 0 and (image[:, 0, 0] == 0).all() and (image[:, -1, -1] > 0).all()
    with rasterio.open(ROOT / "lsat7_2000_30.tif") as src:
        assert torch.equal(image[2, 20:], torch.from_numpy(src.read(1)[20:]))
    two = LandsatScene(ROOT, bands=["40", "30"])
    assert torch.equal(two[two.bounds]["image"], image[[3, 2]])


def test_grid_chips_align_image_and_strata_labels() -> None:
    image, labels = nc_landsat(ROOT, "strata")
    data = IntersectionDataset(image, labels)
    sampler = GridGeoSampler(data, size=16, stride=16)
    chips = [data[q] for q in sampler]
    assert len(chips) >= 12
    valid_total = 0
    for chip in chips:
        assert chip["image"].shape == (6, 16, 16) and chip["mask"].shape == (16, 16)
        assert chip["mask"].dtype == torch.int64
        valid = chip["mask"] != 255
        # band 10 = 50 + 10 * stored class + noise, stored class = class index + 1
        expected = ((chip["image"][0] - 50) // 10).long() - 1
        assert torch.equal(chip["mask"][valid], expected[valid])
        # nodata of the labels is ignore, and it sits where the image is nodata (0)
        assert (chip["image"][0][~valid] == 0).all()
        valid_total += int(valid.sum())
    assert valid_total > 0.5 * 56 * 64
    assert set(torch.cat([c["mask"].flatten() for c in chips]).tolist()) <= {*range(7), 255}


def test_random_sampler_batches() -> None:
    image, labels = nc_landsat(ROOT, "strata")
    data = image & labels
    sampler = RandomGeoSampler(data, size=24, length=6, generator=torch.Generator().manual_seed(0))
    batch = next(iter(DataLoader(data, sampler=sampler, batch_size=3, collate_fn=stack_samples)))
    assert batch["image"].shape == (3, 6, 24, 24) and batch["mask"].shape == (3, 24, 24)
    assert batch["image"].min() >= 0
    assert ((batch["mask"] < 7) | (batch["mask"] == 255)).all()


def test_sparse_pixels_keep_every_label() -> None:
    image, labels = nc_landsat(ROOT, "pixels")
    chip = (image & labels)[image.bounds]
    with rasterio.open(ROOT / "landsat96_labelled_pixels.tif") as src:
        raw = src.read(1)
    labelled = raw != src.nodata
    assert int((chip["mask"] != 255).sum()) == int(labelled.sum()) == 40
    expected = torch.from_numpy(raw[labelled] - 1).long()
    assert torch.equal(chip["mask"][torch.from_numpy(labelled)], expected)


@pytest.mark.parametrize("field", ["id", "label"])
def test_polygons_rasterise_to_classes(field: str) -> None:
    scene = LandsatScene(ROOT)
    polygons = VectorLabels(ROOT / "landsat96_polygons.shp", label_name=field)
    chip = (scene & polygons)[scene.bounds]
    mask = chip["mask"]
    truth = strata()
    # boxes from the generator: rows 4:12 cols 30:40 forest(5), rows 20:28 cols 8:16 agriculture(2)
    assert (mask[4:12, 30:40] == 4).all() and (mask[20:28, 8:16] == 1).all()
    assert (mask[40:48, 44:56] == 5).all()
    inside = mask != 255
    assert int(inside.sum()) == 8 * 10 + 8 * 8 + 8 * 12
    assert torch.equal(mask[inside], torch.from_numpy(truth).long()[inside] - 1)


def test_folder_of_vectors_uses_shapefiles_only() -> None:
    polygons = VectorLabels(ROOT)
    assert [Path(p).name for p in polygons.index.filepath] == ["landsat96_polygons.shp"]
    with pytest.raises(DatasetLayoutError, match="no attribute field 'class'"):
        VectorLabels(ROOT, label_name="class")


def test_remap_labels_rules() -> None:
    raw = torch.tensor([[0.0, 1.0, 7.0], [8.0, -99999.0, 2.5]])
    invalid = raw == -99999
    with pytest.raises(InvalidMaskError, match=r"\[2\.5, 8\.0\]"):
        remap_labels(raw, 7, invalid=invalid)
    out = remap_labels(raw, 7, invalid=invalid, unknown="ignore")
    assert out.tolist() == [[255, 0, 6], [255, 255, 255]]
    assert remap_labels(torch.tensor([0, 3]), 4, offset=0, ignore_values=()).tolist() == [0, 3]


def test_label_raster_unknown_value_fails(tmp_path: Path) -> None:
    with rasterio.open(ROOT / "strata.tif") as src:
        profile, data = src.profile, src.read(1)
    data[30, 30] = 9
    with rasterio.open(tmp_path / "strata.tif", "w", **profile) as dst:
        dst.write(data[None])
    labels = RasterLabels(tmp_path / "strata.tif", NC_LANDSAT_CLASSES)
    with pytest.raises(InvalidMaskError, match=r"\[9\.0\]"):
        labels[labels.bounds]


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetLayoutError, match="Expected layout"):
        LandsatScene(tmp_path)
    for band in ("10", "20"):
        shutil.copy(ROOT / f"lsat7_2000_{band}.tif", tmp_path)
    with pytest.raises(DatasetLayoutError, match=r"lsat7_2000_30\.tif: band 30 file missing"):
        LandsatScene(tmp_path)
    assert LandsatScene(tmp_path, bands=["20", "10"]).bands == ("20", "10")
    with pytest.raises(DatasetLayoutError, match="no label raster"):
        RasterLabels(tmp_path / "none")


def test_plot() -> None:
    import matplotlib

    matplotlib.use("Agg")
    image, labels = nc_landsat(ROOT, "strata")
    chip = (image & labels)[image.bounds]
    assert len(labels.plot(chip).axes) == 2


def test_real_nc_landsat_chips() -> None:
    image, labels = nc_landsat(REAL, "pixels")
    data = image & labels
    masks = [data[q]["mask"] for q in GridGeoSampler(data, size=128, stride=128)]
    counts = torch.bincount(torch.cat([m.flatten() for m in masks]), minlength=256)
    assert counts[:7].all() and counts[7:255].sum() == 0
