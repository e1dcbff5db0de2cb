"""Lightning prediction writer for georeferenced datasets (``s5geo predict --config ...``).

Works with batches of georeferenced windows (``image``, ``crs``, ``bounds``), e.g. from
:class:`s5geo.datamodules.GeoPredictionDataModule` or a TorchGeo ``GeoDataset`` sampled by a
``GridGeoSampler``, and with predictions that are class indices ``B x H x W`` (the s5geo tasks'
``predict_step``) or scores ``B x K x H x W``. Every window is written as a small georeferenced GeoTIFF
tile holding only the pixels it owns: the batch's ``keep`` rows/columns when present (the
datamodule's nearest-window-centre rule, so tiles never overlap), else the window cropped by
``crop`` pixels on the sides that do not touch the dataset's bounds; always clipped to those
bounds. Pixels where the batch's ``valid`` is False get ``nodata``.

Under DDP each rank writes only its own windows, to ``tiles/rank<r>/``; after prediction, rank 0
builds one VRT mosaic over all tiles (``<name>.vrt``), which GDAL, QGIS and ``s5geo vectorize`` open
as a single raster. Tiles are named by their pixel position in the dataset, and where tiles overlap
(``crop`` smaller than half the overlap) the one sorted last wins, so the mosaic does not depend on
which rank wrote what.
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

from s5geo.inference.loading import read_checkpoint_metadata
from s5geo.inference.tiling import argmax
from s5geo.metadata import CHECKPOINT_METADATA_KEY, class_name_tags


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
        classes: class names (band tags); default: the checkpoint's ``s5geo_metadata``, else the
            datamodule's ``classes``.
        colors: one ``(r, g, b)`` per class for the colour table; default as for ``classes``.
        crop: pixels dropped on each inner side of a window when the batch has no ``keep``;
            default: half the datamodule's ``overlap`` (0 without one).
        name: file name of the mosaic, without ``.vrt``.
        nodata: value of pixels outside windows and of masked predictions.
        return_predictions: let ``trainer.predict`` also collect every prediction in memory (off
            by default: on a large raster that grows with the raster; the tiles hold the result).
    """

    def __init__(
        self,
        output_dir: str | Path,
        classes: Sequence[str] | None = None,
        colors: Sequence[Sequence[int]] | None = None,
        crop: int | None = None,
        name: str = "prediction",
        nodata: int = 255,
        return_predictions: bool = False,
    ) -> None:
        super().__init__(write_interval="batch")
        if not 0 <= int(nodata) <= 255:
            raise ValueError(f"nodata must be in [0, 255], got {nodata}")
        self.output_dir = Path(output_dir)
        self.classes = list(classes) if classes else None
        self.colors = [tuple(int(v) for v in c) for c in colors] if colors else None
        self.crop_arg = None if crop is None else int(crop)
        self.crop = self.crop_arg or 0
        self.name = name
        self.nodata = int(nodata)
        self._extent: tuple[float, float, float, float] | None = None
        self._res: tuple[float, float] | None = None
        self._checkpoint_metadata: dict[str, Any] | None = None
        self.return_predictions = return_predictions

    # Lightning hooks ---------------------------------------------------------------------------

    def on_load_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Remember the model metadata of the checkpoint given as ``ckpt_path``."""
        metadata = checkpoint.get(CHECKPOINT_METADATA_KEY)
        if isinstance(metadata, dict):
            self._checkpoint_metadata = metadata

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Find the dataset bounds, resolution, crop and class metadata; clear old tiles."""
        loaders = trainer.predict_dataloaders
        loader = loaders[0] if isinstance(loaders, (list, tuple)) else loaders
        dataset = getattr(loader, "dataset", None)
        if dataset is not None and hasattr(dataset, "bounds"):
            self._extent = _box(dataset.bounds)
            res = dataset.res
            self._res = (res, res) if isinstance(res, (int, float)) else (res[0], res[1])
        if not self.return_predictions:
            trainer.predict_loop.return_predictions = False
        datamodule = getattr(trainer, "datamodule", None)
        if self.crop_arg is None:
            self.crop = int(getattr(datamodule, "overlap", 0) or 0) // 2
        self._resolve_classes(trainer, datamodule)
        # Rank 0 clears every rank's tiles: a previous run with more ranks must not leak into the VRT.
        if trainer.is_global_zero:
            for old in (self.output_dir / "tiles").glob("rank*/*.tif"):
                old.unlink()
        trainer.strategy.barrier()
        self._rank_dir(trainer.global_rank).mkdir(parents=True, exist_ok=True)

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
        pred = _to_numpy(prediction)
        crs_list = batch["crs"]
        if not isinstance(crs_list, (list, tuple)):
            crs_list = [crs_list] * len(pred)
        keeps = _to_numpy(batch["keep"]) if "keep" in batch else [None] * len(pred)
        valids = _to_numpy(batch["valid"]) if "valid" in batch else [None] * len(pred)
        samples = zip(pred, batch["bounds"], crs_list, keeps, valids, strict=True)
        for k, (scores, bounds, crs, keep, valid) in enumerate(samples):
            if scores.ndim == 3:
                classes = argmax(scores.astype(np.float32, copy=False))
            else:
                if scores.size and (scores.min() < 0 or scores.max() > 255):
                    raise ValueError("class indices must fit uint8 (0..255)")
                classes = scores.astype(np.uint8)
            if valid is not None:
                classes = np.where(valid.astype(bool), classes, np.uint8(self.nodata))
            fallback = f"b{batch_idx:07d}_{k:03d}_r{trainer.global_rank}"
            self._write_tile(self._rank_dir(trainer.global_rank), fallback, classes, bounds, crs, keep)

    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Wait for all ranks, then let rank 0 build the VRT mosaic."""
        trainer.strategy.barrier()
        if trainer.is_global_zero:
            tiles = sorted((self.output_dir / "tiles").glob("rank*/*.tif"), key=lambda p: p.name)
            if tiles:
                build_vrt(tiles, self.output_dir / f"{self.name}.vrt", nodata=self.nodata)
        trainer.strategy.barrier()

    # Helpers -----------------------------------------------------------------------------------

    def _resolve_classes(self, trainer: Trainer, datamodule: Any) -> None:
        """Fill missing class names/colours from the checkpoint, else from the datamodule."""
        if self.classes and self.colors:
            return
        metadata = self._checkpoint_metadata
        if metadata is None and getattr(trainer, "ckpt_path", None):
            metadata = read_checkpoint_metadata(Path(trainer.ckpt_path))
        for source in (metadata or {}, datamodule):
            get = source.get if isinstance(source, dict) else lambda k, s=source: getattr(s, k, None)
            if not self.classes and get("classes"):
                self.classes = [str(c) for c in get("classes")]
            if not self.colors and get("colors"):
                self.colors = [tuple(int(v) for v in c) for c in get("colors")]
        if self.classes and self.nodata < len(self.classes):
            raise ValueError(f"nodata {self.nodata} is a class id ({len(self.classes)} classes)")

    def _rank_dir(self, rank: int) -> Path:
        return self.output_dir / "tiles" / f"rank{rank}"

    def _write_tile(
        self,
        folder: Path,
        fallback_name: str,
        classes: np.ndarray,
        bounds: Any,
        crs: Any,
        keep: np.ndarray | None = None,
    ) -> None:
        minx, miny, maxx, maxy = _box(bounds)
        height, width = classes.shape
        xres, yres = (maxx - minx) / width, (maxy - miny) / height
        # Pixel rows/cols to keep: the owned part or the cropped inner sides, clipped to the extent.
        top = left = 0
        bottom, right = height, width
        ext = self._extent
        if keep is not None:
            top, bottom, left, right = (int(v) for v in keep)
        elif self.crop:
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
        if ext is not None:
            # Named by pixel position in the dataset: deterministic whatever rank wrote the tile.
            row = round((ext[3] - (maxy - top * yres)) / yres)
            col = round((minx + left * xres - ext[0]) / xres)
            path = folder / f"r{row:08d}_c{col:08d}.tif"
        else:
            path = folder / f"{fallback_name}.tif"
        tmp = path.with_name(f".{path.name}.part")
        with rasterio.open(
            tmp,
            "w",
            driver="GTiff",
            width=data.shape[1],
            height=data.shape[0],
            count=1,
            dtype="uint8",
            crs=crs,
            transform=transform,
            nodata=self.nodata,
            compress="deflate",
        ) as dst:
            dst.write(data, 1)
            if self.colors:
                cmap = {i: (*c, 255) for i, c in enumerate(self.colors)}
                cmap[self.nodata] = (0, 0, 0, 0)
                dst.write_colormap(1, cmap)
            if self.classes:
                dst.update_tags(1, **class_name_tags(list(self.classes)))
        tmp.replace(path)


def _to_numpy(value: Any) -> np.ndarray:
    if torch.is_tensor(value):
        value = value.detach().cpu()
        if value.dtype in (torch.bfloat16, torch.float16):
            value = value.float()
        return value.numpy()
    return np.asarray(value)


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
    meta_xml = "".join(f'<MDI key="{html.escape(k)}">{html.escape(v)}</MDI>' for k, v in tags.items())
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
