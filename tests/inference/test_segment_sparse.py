"""Sparse inputs: a huge VRT with one small source is segmented at the cost of its data."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import rasterio
from _inference_helpers import NUM_CLASSES, IdentityModel, make_metadata, write_raster
from rasterio.errors import RasterBlockError
from rasterio.windows import Window

import s5geo.inference.segment as segment_module
from s5geo.inference.segment import output_tile_size, segment_raster, vrt_data_regions

ROW, COL = 9_001, 11_003  # where the source sits in the VRT


def _source(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """A 3-band 70 x 90 GeoTIFF whose band 1 holds class ids (the identity model's classes)."""
    rng = np.random.default_rng(0)
    classes = rng.integers(0, NUM_CLASSES, size=(70, 90)).astype(np.uint8)
    stack = np.stack([classes, rng.integers(0, 250, classes.shape), rng.integers(0, 250, classes.shape)])
    return write_raster(tmp_path / "source.tif", stack.astype(np.uint8)), classes


def _sparse_vrt(tmp_path: Path, source: Path, size: int, nodata: int | None = 255) -> Path:
    """A ``size`` x ``size`` VRT holding ``source`` at (ROW, COL) and nodata everywhere else."""
    with rasterio.open(source) as src:
        h, w, srs = src.height, src.width, src.crs.to_wkt()
        gt = src.transform @ src.transform.translation(-COL, -ROW)
    bands = "".join(
        f'<VRTRasterBand dataType="Byte" band="{b}">'
        + (f"<NoDataValue>{nodata}</NoDataValue>" if nodata is not None else "")
        + f'<SimpleSource><SourceFilename relativeToVRT="1">{source.name}</SourceFilename>'
        f'<SourceBand>{b}</SourceBand><SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>'
        f'<DstRect xOff="{COL}" yOff="{ROW}" xSize="{w}" ySize="{h}"/></SimpleSource></VRTRasterBand>'
        for b in (1, 2, 3)
    )
    vrt = tmp_path / f"sparse_{size}_{nodata}.vrt"
    vrt.write_text(
        f'<VRTDataset rasterXSize="{size}" rasterYSize="{size}"><SRS>{srs}</SRS>'
        f"<GeoTransform>{', '.join(map(str, gt.to_gdal()))}</GeoTransform>{bands}</VRTDataset>"
    )
    return vrt


def test_sparse_vrt_segments_only_its_source(tmp_path, monkeypatch) -> None:
    source, classes = _source(tmp_path)
    vrt = _sparse_vrt(tmp_path, source, 20_000)
    reads = []
    real_read = segment_module._Job._read

    def counting_read(self, window, out):
        reads.append(window)
        return real_read(self, window, out)

    monkeypatch.setattr(segment_module._Job, "_read", counting_read)
    meta = make_metadata(64, 0.25, bands=3)
    model = IdentityModel()
    out = segment_raster(
        vrt,
        model,
        tmp_path / "map.tif",
        metadata=meta,
        probabilities="float16",
        confidence=True,
        batch_size=1,
        progress=False,
    )
    # 20,000 px at a 48 px stride is 417 x 417 windows; the 70 x 90 source touches 2 x 4 of them.
    assert len(reads) == 8 and model.calls == 8
    alone = segment_raster(source, IdentityModel(), tmp_path / "alone.tif", metadata=meta, progress=False)
    with rasterio.open(alone) as dst:
        np.testing.assert_array_equal(dst.read(1), classes)

    inside = Window(COL, ROW, 90, 70)
    around = Window(COL - 300, ROW - 300, 690, 670)
    with rasterio.open(out) as dst:
        assert dst.profile["tiled"] and dst.profile["compress"] == "deflate"
        assert dst.nodata == 255
        np.testing.assert_array_equal(dst.read(1, window=inside), classes)
        ring = dst.read(1, window=around)
        ring[300:370, 300:390] = 255
        assert (ring == 255).all()
        assert (dst.read(1, window=Window(0, 0, 512, 512)) == 255).all()
        assert dst.block_size(1, ROW // 256, COL // 256) > 0
        with pytest.raises(RasterBlockError):
            dst.block_size(1, 0, 0)  # never written: the file is sparse
    assert out.stat().st_size < 2_000_000
    with rasterio.open(tmp_path / "map_confidence.tif") as dst:
        assert (dst.read(1, window=inside) > 0).all()
        assert (dst.read(1, window=Window(0, 0, 300, 300)) == 0).all()
    with rasterio.open(tmp_path / "map_probabilities.tif") as dst:
        np.testing.assert_array_equal(dst.read(window=inside).argmax(0), classes)
        assert np.isnan(dst.read(window=Window(19_700, 19_700, 300, 300))).all()


def test_vrt_regions_need_a_nodata_value(tmp_path) -> None:
    source, _ = _source(tmp_path)
    with rasterio.open(_sparse_vrt(tmp_path, source, 20_000)) as src:
        assert vrt_data_regions(src, [1, 2, 3]) == [(ROW, COL, 70, 90)]
    with rasterio.open(_sparse_vrt(tmp_path, source, 20_000, nodata=None)) as src:
        # Without nodata the pixels outside the source read as valid zeros: nothing to skip.
        assert vrt_data_regions(src, [1, 2, 3]) is None
    with rasterio.open(source) as src:
        assert vrt_data_regions(src, [1]) is None


def test_huge_raster_gets_larger_tiles_and_no_cog(tmp_path, caplog) -> None:
    assert output_tile_size(4096, 4096) == 256
    assert output_tile_size(2_000_000, 2_000_000) == 2048
    source, classes = _source(tmp_path)
    vrt = _sparse_vrt(tmp_path, source, 600_000)
    with caplog.at_level(logging.WARNING, logger="s5geo.inference"):
        out = segment_raster(
            vrt,
            IdentityModel(),
            tmp_path / "map.tif",
            metadata=make_metadata(256, 0.25, 3),
            cog=True,
            progress=False,
        )
    assert any("too large for a Cloud Optimized GeoTIFF" in r.getMessage() for r in caplog.records)
    with rasterio.open(out) as dst:
        assert dst.block_shapes[0] == (1024, 1024)
        assert dst.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") != "COG"
        np.testing.assert_array_equal(dst.read(1, window=Window(COL, ROW, 90, 70)), classes)
        assert (dst.read(1, window=Window(COL - 50, ROW - 50, 40, 40)) == 255).all()
    assert out.stat().st_size < 20_000_000
