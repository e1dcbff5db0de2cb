"""Georeferenced S5 on the NC Landsat sample: sparse labels in, a land-cover GeoTIFF and polygons out.

Labeled chips are drawn around the sparse labelled pixels and the training polygons (TorchGeo
``RasterDataset``/``VectorDataset`` + ``RandomGeoSampler``), unlabeled chips anywhere in the scene. A
FixMatch model trained on them segments the whole scene with ``segment_raster``; the map is compared with
the dense 1996 land-cover map (``strata.tif``) and turned into polygons.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from lightning.pytorch import seed_everything
from rasterio.warp import Resampling, reproject
from torch.utils.data import ConcatDataset
from torchgeo.samplers import RandomGeoSampler

from s5geo.datamodules import SemiSupervisedDataModule
from s5geo.datasets import GeoChips, LandsatScene, RasterLabels, VectorLabels
from s5geo.datasets.geo import NC_LANDSAT_CLASSES, NC_LANDSAT_COLORS
from s5geo.datasets.geo_chips import has_labels
from s5geo.demo.steps import atomic_path, publish
from s5geo.demo.training import fit_and_save
from s5geo.tasks import FixMatch
from s5geo.tasks.metrics import SegmentationMetrics

BAND_FILES = tuple(f"lsat7_2000_{b}.tif" for b in (10, 20, 30, 40, 50, 70))
NODATA = -99999.0


@dataclass
class LandsatConfig:
    """Settings of the Landsat experiment (defaults: the demo's CPU budget)."""

    model: str = "deeplabv3plus_resnet18"
    chip_size: int = 32
    labeled_chips: int = 400
    unlabeled_chips: int = 800
    batch_size: int = 8
    steps: int = 200
    lr: float = 1e-3
    tau: float = 0.9
    window_size: int = 64
    overlap: float = 0.5
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return asdict(self)


def make_datamodule(root: Path, config: LandsatConfig) -> SemiSupervisedDataModule:
    """Labeled chips (sparse pixels + polygons) and unlabeled chips of the scene."""
    torch.manual_seed(config.seed)
    # TorchGeo prints every CRS and resolution conversion, whole WKT strings included.
    with contextlib.redirect_stdout(io.StringIO()):
        image = LandsatScene(root)
        pixels = image & RasterLabels(root / "landsat96_labelled_pixels.tif")
        polygons = image & VectorLabels(root / "landsat96_polygons.shp", label_name="id")
    labeled = ConcatDataset(
        [
            GeoChips(
                source,
                RandomGeoSampler(source, config.chip_size, config.labeled_chips // 2),
                keep_if=has_labels,
                cache=True,
            )
            for source in (pixels, polygons)
        ]
    )
    unlabeled = GeoChips(
        image, RandomGeoSampler(image, config.chip_size, config.unlabeled_chips), keys=("image",), cache=True
    )
    return SemiSupervisedDataModule(
        labeled=labeled,
        unlabeled=unlabeled,
        batch_size_labeled=config.batch_size,
        batch_size_unlabeled=config.batch_size,
        crop_size=config.chip_size,
        rescale=(0.75, 1.5),
        crop_order="crop_then_rescale",
        partner_batch=None,
        seed=config.seed,
        scale=255.0,
        classes=list(NC_LANDSAT_CLASSES),
        colors=[tuple(c) for c in NC_LANDSAT_COLORS],
        in_channels=len(BAND_FILES),
    )


def train(root: Path, config: LandsatConfig, checkpoint: Path, progress: bool = True) -> None:
    """Train FixMatch on the scene's chips and save the checkpoint."""
    seed_everything(config.seed, verbose=False)
    datamodule = make_datamodule(root, config)
    task = FixMatch(
        model=config.model,
        num_classes=len(NC_LANDSAT_CLASSES),
        in_channels=len(BAND_FILES),
        lr=config.lr,
        warmup_steps=10,
        tau=config.tau,
        cutmix_partner="flip",
    )
    fit_and_save(task, datamodule, config.steps, checkpoint, progress)


def stack_bands(root: Path, output: Path) -> Path:
    """Write the six band files as one 6-band float32 GeoTIFF (nodata -99999)."""
    arrays = []
    for name in BAND_FILES:
        with rasterio.open(root / name) as src:
            band = src.read(1).astype(np.float32)
            if src.nodata is not None:
                band[band == src.nodata] = NODATA
            arrays.append(band)
            profile = src.profile
    profile.update(count=len(arrays), dtype="float32", nodata=NODATA, compress="deflate")
    tmp = atomic_path(output)
    with rasterio.open(tmp, "w", **profile) as dst:
        dst.write(np.stack(arrays))
        dst.descriptions = tuple(name.removesuffix(".tif") for name in BAND_FILES)
    return publish(tmp, output)


def reference_on_grid(strata: Path, classmap: Path) -> np.ndarray:
    """The dense land-cover map as class indices 0..6 on the class map's grid (255 = no label)."""
    with rasterio.open(classmap) as dst_grid:
        out = np.full((dst_grid.height, dst_grid.width), 255, dtype=np.uint8)
        with rasterio.open(strata) as src:
            data = src.read(1)
            valid = (data >= 1) & (data <= len(NC_LANDSAT_CLASSES))
            labels = np.where(valid, data - 1, 255).astype(np.uint8)
            reproject(
                labels,
                out,
                src_transform=src.transform,
                src_crs=src.crs,
                src_nodata=255,
                dst_transform=dst_grid.transform,
                dst_crs=dst_grid.crs,
                dst_nodata=255,
                resampling=Resampling.nearest,
            )
    return out


def score(prediction: np.ndarray, reference: np.ndarray, num_classes: int) -> dict[str, Any]:
    """mIoU, mF1, OA and per-class IoU of a class map against a reference (255 ignored in both)."""
    metrics = SegmentationMetrics(num_classes)
    keep = prediction != 255
    target = np.where(keep, reference, 255)
    metrics.update(
        torch.from_numpy(prediction.astype(np.int64))[None], torch.from_numpy(target.astype(np.int64))[None]
    )
    values = metrics.compute()
    return {
        "mIoU": float(values["miou"]),
        "mF1": float(values["mf1"]),
        "OA": float(values["oa"]),
        "IoU": {name: float(v) for name, v in zip(NC_LANDSAT_CLASSES, values["iou"].tolist(), strict=True)},
        "pixels": int((target != 255).sum()),
    }
