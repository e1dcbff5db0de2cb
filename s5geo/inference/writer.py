"""Lightning prediction writer for georeferenced datasets (``s5geo predict --config ...``).

Works with a TorchGeo ``GeoDataset`` sampled by a ``GridGeoSampler``: every predicted window is
written as a small georeferenced GeoTIFF tile, cropped by ``crop`` pixels on the sides that do not
touch the dataset's bounds (so tiles from a grid with overlap ``2 * crop`` do not overlap) and
clipped to those bounds. Under DDP each rank writes only its own windows, to
``tiles/rank<r>/``; after prediction, rank 0 builds one VRT mosaic over all tiles
(``<name>.vrt``), which GDAL, QGIS and ``s5geo vectorize`` open as a single raster. Where tiles
overlap (e.g. the last, edge-aligned window) the one sorted last wins, so the mosaic does not
depend on which rank wrote what.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter
from rasterio.transform import from_origin

from s5geo.inference.tiling import argmax


def _box(bounds: Any) -> tuple[float, float, float, float]:
    """Return ``(minx, miny, maxx, maxy)`` from TorchGeo bounds (slices or a BoundingBox)."""
    if hasattr(bounds, "minx"):
        return bounds.minx, bounds.miny, bounds.maxx, bounds.maxy
    x, y = bounds[0], bounds[1]
    if isinstance(x, slice):
        return x.start, y.start, x.stop, y.stop
    return tuple(float(v) for v in bounds[:4])  # type: ignore[return-value]


class GeoTiffPredictionWriter(BasePredictionWriter):
    """Write class maps of georeferenced windows as tiles plus a VRT mosaic.

    Args:
        output_dir: output folder (``tiles/`` and ``<name>.vrt`` go there).
        classes: class names (band tags); optional.
        colors: one ``(r, g, b)`` per class for the colour table; optional.
        crop: pixels dropped on each inner side of a window (half the sampler's overlap).
        name: file name of the mosaic, without ``.vrt``.
        nodata: value of pixels outside windows and of masked predictions.
    """

    def __init__(
        self,
        output_dir: str | Path,
        classes: Sequence[str] | None = None,
        colors: Sequence[Sequence[int]] | None = None,
        crop: int = 0,
        name: str = "prediction",
        nodata: int = 255,
    ) -> None:
        super().__init__(write_interval="batch")
        self.output_dir = Path(output_dir)
        self.classes = list(classes) if classes else None
        self.colors = [tuple(int(v) for v in c) for c in colors] if colors else None
        self.crop = int(crop)
        self.name = name
        self.nodata = int(nodata)
        self._extent: tuple[float, float, float, float] | None = None
        self._res: tuple[float, float] | None = None

    # Lightning hooks ---------------------------------------------------------------------------

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Find the dataset bounds and resolution; clear this rank's tile folder."""
        loaders = trainer.predict_dataloaders
        loader = loaders[0] if isinstance(loaders, (list, tuple)) else loaders
        dataset = getattr(loader, "dataset", None)
        if dataset is not None and hasattr(dataset, "bounds"):
            self._extent = _box(dataset.bounds)
            res = dataset.res
            self._res = (res, res) if isinstance(res, (int, float)) else (res[0], res[1])
        folder = self._rank_dir(trainer.global_rank)
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.tif"):
            old.unlink()

    def write_on_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        prediction: Any,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Write every window of the batch as a GeoTIFF tile of this rank."""
        if isinstance(prediction, dict):
            prediction = prediction.get("prediction", prediction.get("mask"))
        if torch.is_tensor(prediction):
            prediction = prediction.detach().float().cpu().numpy()
        pred = np.asarray(prediction)
        crs_list = batch["crs"]
        if not isinstance(crs_list, (list, tuple)):
            crs_list = [crs_list] * len(pred)
        samples = zip(pred, batch["bounds"], crs_list, strict=True)
        for k, (scores, bounds, crs) in enumerate(samples):
            classes = argmax(scores) if scores.ndim == 3 else scores.astype(np.uint8)
            name = f"b{batch_idx:07d}_{k:03d}_r{trainer.global_rank}.tif"
            self._write_tile(self._rank_dir(trainer.global_rank) / name, classes, bounds, crs)

    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Wait for all ranks, then let rank 0 build the VRT mosaic."""
        trainer.strategy.barrier()
        if trainer.is_global_zero:
            tiles = sorted((self.output_dir / "tiles").glob("rank*/*.tif"), key=lambda p: p.name)
            if tiles:
                build_vrt(tiles, self.output_dir / f"{self.name}.vrt", nodata=self.nodata)
        trainer.strategy.barrier()

    # Helpers -----------------------------------------------------------------------------------

    def _rank_dir(self, rank: int) -> Path:
        return self.output_dir / "tiles" / f"rank{rank}"

    def _write_tile(self, path: Path, classes: np.ndarray, bounds: Any, crs: Any) -> None:
        minx, miny, maxx, maxy = _box(bounds)
        height, width = classes.shape
        xres, yres = (maxx - minx) / width, (maxy - miny) / height
        # Pixel rows/cols to keep: crop inner sides, clip to the dataset extent.
        top = left = 0
        bottom, right = height, width
        ext = self._extent
        if self.crop:
            if ext is None or maxy < ext[3] - 1e-9 * abs(yres):
                top = self.crop
            if ext is None or miny > ext[1] + 1e-9 * abs(yres):
                bottom -= self.crop
            if ext is None or minx > ext[0] + 1e-9 * abs(xres):
                left = self.crop
            if ext is None or maxx < ext[2] - 1e-9 * abs(xres):
                right -= self.crop
        if ext is not None:
            top = max(top, math.ceil(round((maxy - ext[3]) / yres, 6)))
            bottom = min(bottom, height - math.ceil(round((ext[1] - miny) / yres, 6)))
            left = max(left, math.ceil(round((ext[0] - minx) / xres, 6)))
            right = min(right, width - math.ceil(round((maxx - ext[2]) / xres, 6)))
        if bottom <= top or right <= left:
            return
        data = classes[top:bottom, left:right]
        transform = from_origin(minx + left * xres, maxy - top * yres, xres, yres)
        tmp = path.with_name(f".{path.name}.part")
        with rasterio.open(
            tmp, "w", driver="GTiff", width=data.shape[1], height=data.shape[0], count=1,
            dtype="uint8", crs=crs, transform=transform, nodata=self.nodata, compress="deflate",
        ) as dst:
            dst.write(data, 1)
            if self.colors:
                cmap = {i: (*c, 255) for i, c in enumerate(self.colors)}
                cmap[self.nodata] = (0, 0, 0, 0)
                dst.write_colormap(1, cmap)
            if self.classes:
                dst.update_tags(1, **{f"CLASS_{i}": c for i, c in enumerate(self.classes)})
        tmp.replace(path)


def build_vrt(tiles: Sequence[Path], output: Path, nodata: int = 255) -> Path:
    """Write a VRT mosaic of single-band uint8 tiles sharing a CRS and pixel size.

    Tiles later in ``tiles`` are drawn over earlier ones. The colour table and band tags of the
    first tile are copied.
    """
    infos = []
    for tile in tiles:
        with rasterio.open(tile) as src:
            infos.append((tile, src.bounds, src.width, src.height, src.res, src.crs))
    first = tiles[0]
    with rasterio.open(first) as src:
        colormap = src.colormap(1) if src.colorinterp[0].name == "palette" else None
        tags = src.tags(1)
        crs = src.crs
    xres, yres = infos[0][4]
    minx = min(i[1].left for i in infos)
    maxy = max(i[1].top for i in infos)
    maxx = max(i[1].right for i in infos)
    miny = min(i[1].bottom for i in infos)
    width = round((maxx - minx) / xres)
    height = round((maxy - miny) / yres)
    sources = []
    for tile, bounds, w, h, _, _ in infos:
        rel = Path(*tile.resolve().parts).relative_to(output.parent.resolve())
        xoff = round((bounds.left - minx) / xres)
        yoff = round((maxy - bounds.top) / yres)
        sources.append(
            f'    <SimpleSource><SourceFilename relativeToVRT="1">{html.escape(rel.as_posix())}'
            f"</SourceFilename><SourceBand>1</SourceBand>"
            f'<SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>'
            f'<DstRect xOff="{xoff}" yOff="{yoff}" xSize="{w}" ySize="{h}"/></SimpleSource>'
        )
    color_xml = ""
    if colormap:
        entries = "".join(
            '<Entry c1="{}" c2="{}" c3="{}" c4="{}"/>'.format(*colormap.get(i, (0, 0, 0, 0)))
            for i in range(256)
        )
        color_xml = f"    <ColorInterp>Palette</ColorInterp><ColorTable>{entries}</ColorTable>\n"
    meta_xml = "".join(
        f'<MDI key="{html.escape(k)}">{html.escape(v)}</MDI>' for k, v in tags.items()
    )
    text = (
        f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">\n'
        f"  <SRS>{html.escape(crs.to_wkt()) if crs else ''}</SRS>\n"
        f"  <GeoTransform>{minx!r}, {xres!r}, 0.0, {maxy!r}, 0.0, {-yres!r}</GeoTransform>\n"
        f'  <VRTRasterBand dataType="Byte" band="1">\n'
        f"    <NoDataValue>{nodata}</NoDataValue>\n{color_xml}"
        f"    <Metadata>{meta_xml}</Metadata>\n" + "\n".join(sources) + "\n"
        "  </VRTRasterBand>\n</VRTDataset>\n"
    )
    tmp = output.with_name(f".{output.name}.part")
    tmp.write_text(text)
    tmp.replace(output)
    return output
