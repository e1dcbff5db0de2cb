import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from _inference_helpers import NUM_CLASSES, IdentityModel, make_metadata, write_raster
from rasterio.transform import from_origin
from torch import nn

from s5geo.errors import OutputExistsError, S5GeoError
from s5geo.inference.segment import segment_raster

BLENDS = ["none", "linear", "cosine"]


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


@pytest.mark.parametrize("blend", BLENDS)
def test_identity_model_reproduces_class_map_exactly(tmp_path, class_map, blend) -> None:
    src = write_raster(tmp_path / "in.tif", class_map)
    out = segment_raster(
        src,
        IdentityModel(),
        tmp_path / "out.tif",
        metadata=make_metadata(32, 0.3),
        blend=blend,
        batch_size=3,
        progress=False,
    )
    np.testing.assert_array_equal(_read(out), class_map)


@pytest.mark.parametrize(
    ("crs", "transform"),
    [
        ("EPSG:32119", from_origin(630_000.0, 230_000.0, 28.5, 28.5)),
        ("EPSG:4326", from_origin(-78.8, 35.9, 0.00025, 0.00025)),
    ],
)
def test_output_is_georeferenced_like_input(tmp_path, class_map, crs, transform) -> None:
    src = write_raster(tmp_path / "in.tif", class_map, crs=crs, transform=transform)
    out = segment_raster(
        src,
        IdentityModel(),
        tmp_path / "out.tif",
        metadata=make_metadata(),
        probabilities="uint8",
        confidence=True,
        progress=False,
    )
    meta = make_metadata()
    for path in [out, tmp_path / "out_probabilities.tif", tmp_path / "out_confidence.tif"]:
        with rasterio.open(path) as dst:
            assert dst.crs == rasterio.crs.CRS.from_string(crs)
            assert dst.transform == transform
            assert (dst.width, dst.height) == (class_map.shape[1], class_map.shape[0])
    with rasterio.open(out) as dst:
        assert dst.dtypes[0] == "uint8" and dst.nodata == 255
        assert dst.profile["tiled"] or dst.width < 256
        colormap = dst.colormap(1)
        for i, color in enumerate(meta.colors):
            assert colormap[i][:3] == color
        assert dst.tags(1)["CLASS_2"] == meta.classes[2]
    with rasterio.open(tmp_path / "out_probabilities.tif") as dst:
        probs = dst.read().astype(int)
        assert dst.descriptions == tuple(meta.classes)
    # Near-one-hot probabilities: the argmax of the probability raster is the class map.
    np.testing.assert_array_equal(probs.argmax(0), class_map)
    assert np.all(np.abs(probs.sum(0) - 255) <= NUM_CLASSES)


def test_raster_smaller_than_window(tmp_path, class_map) -> None:
    small = class_map[:13, :21]
    src = write_raster(tmp_path / "in.tif", small)
    out = segment_raster(
        src, IdentityModel(), tmp_path / "out.tif", metadata=make_metadata(64), progress=False
    )
    np.testing.assert_array_equal(_read(out), small)


def test_nodata_stays_nodata(tmp_path, class_map) -> None:
    data = class_map.astype(np.float32)
    data[:40, :40] = -99999.0  # covers a whole window: that window is not even predicted
    data[60:, 90:] = -99999.0
    data[50, 50] = np.nan
    src = write_raster(tmp_path / "in.tif", data, nodata=-99999.0)
    model = IdentityModel()
    out = segment_raster(
        src,
        model,
        tmp_path / "out.tif",
        metadata=make_metadata(32, 0.0),
        confidence=True,
        progress=False,
        batch_size=1,
    )
    classes = _read(out)
    invalid = (data == -99999.0) | np.isnan(data)
    assert (classes[invalid] == 255).all()
    np.testing.assert_array_equal(classes[~invalid], class_map[~invalid])
    confidence = _read(tmp_path / "out_confidence.tif")
    assert (confidence[invalid] == 0).all() and (confidence[~invalid] > 0).all()
    n_windows = 3 * 4
    assert model.calls == n_windows - 1  # the all-nodata window was skipped


class Conv3x3(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, NUM_CLASSES, 3, padding=1)

    def forward(self, x):
        return self.conv(x) * 3


def test_blend_modes_agree_in_the_interior(tmp_path) -> None:
    image = np.random.default_rng(2).normal(size=(90, 110)).astype(np.float32)
    src = write_raster(tmp_path / "in.tif", image)
    model = Conv3x3()
    # Reference: the model applied to the whole raster at once (no seams).
    with torch.no_grad():
        ref = model(torch.from_numpy(image)[None, None])[0].argmax(0).numpy()
    maps = {
        blend: _read(
            segment_raster(
                src,
                model,
                tmp_path / f"{blend}.tif",
                blend=blend,
                metadata=make_metadata(32, 0.5),
                progress=False,
            )
        )
        for blend in BLENDS
    }
    # Nearest-centre ownership never uses a window's border pixels, where zero padding differs.
    np.testing.assert_array_equal(maps["none"], ref)
    for blend in ("linear", "cosine"):
        assert (maps[blend] == ref).mean() > 0.99
    # Away from the window seams, all modes agree exactly.
    interior = np.ones_like(ref, dtype=bool)
    for edge in range(0, 110, 16):
        interior[:, max(edge - 1, 0) : edge + 2] = False
    for edge in range(0, 90, 16):
        interior[max(edge - 1, 0) : edge + 2, :] = False
    for blend in BLENDS:
        assert (maps[blend][interior] == ref[interior]).mean() > 0.995


class Failing(IdentityModel):
    def __init__(self, after: int, error: type[BaseException]) -> None:
        super().__init__()
        self.after, self.error = after, error

    def forward(self, x):
        if self.calls >= self.after:
            raise self.error("boom")
        return super().forward(x)


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_interrupted_run_leaves_no_files(tmp_path, class_map, error) -> None:
    src = write_raster(tmp_path / "in.tif", class_map)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(error):
        segment_raster(
            src,
            Failing(3, error),
            out_dir / "map.tif",
            metadata=make_metadata(),
            probabilities="uint8",
            confidence=True,
            batch_size=1,
            progress=False,
        )
    assert os.listdir(out_dir) == []


def test_existing_output_is_kept_unless_overwrite(tmp_path, class_map) -> None:
    src = write_raster(tmp_path / "in.tif", class_map)
    out = tmp_path / "out.tif"
    out.write_bytes(b"precious")
    with pytest.raises(OutputExistsError, match=r"out\.tif"):
        segment_raster(src, IdentityModel(), out, metadata=make_metadata(), progress=False)
    assert out.read_bytes() == b"precious"
    segment_raster(src, IdentityModel(), out, metadata=make_metadata(), overwrite=True, progress=False)
    np.testing.assert_array_equal(_read(out), class_map)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif", "out.tif"]


def test_cog_and_float16_probabilities(tmp_path) -> None:
    class_map = np.random.default_rng(3).integers(0, NUM_CLASSES, (300, 280)).astype(np.uint8)
    src = write_raster(tmp_path / "in.tif", class_map)
    out = segment_raster(
        src,
        IdentityModel(),
        tmp_path / "out.tif",
        metadata=make_metadata(128),
        probabilities="float16",
        cog=True,
        progress=False,
    )
    with rasterio.open(out) as dst:
        assert dst.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        np.testing.assert_array_equal(dst.read(1), class_map)
        assert dst.colormap(1)[1][:3] == make_metadata().colors[1]
    with rasterio.open(tmp_path / "out_probabilities.tif") as dst:
        probs = dst.read()
        assert dst.tags(1, ns="IMAGE_STRUCTURE").get("NBITS") == "16"
    np.testing.assert_array_equal(probs.argmax(0), class_map)
    np.testing.assert_allclose(probs.sum(0), 1.0, atol=2e-3)


def test_band_selection_and_normalisation(tmp_path, class_map) -> None:
    # Band 3 holds the classes as 100 + 10 * class; mean 100 and std 10 bring them back.
    noise = np.random.default_rng(4).normal(size=class_map.shape).astype(np.float32)
    stack = np.stack([noise, noise, 100 + 10 * class_map.astype(np.float32)])
    src = write_raster(tmp_path / "in.tif", stack)
    meta = make_metadata()
    meta.mean, meta.std = [100.0], [10.0]
    out = segment_raster(src, IdentityModel(), tmp_path / "out.tif", metadata=meta, bands=[3], progress=False)
    np.testing.assert_array_equal(_read(out), class_map)
    with pytest.raises(S5GeoError, match="band"):
        segment_raster(src, IdentityModel(), tmp_path / "bad.tif", metadata=meta, bands=[4], progress=False)


def test_missing_input_raises_s5geo_error(tmp_path) -> None:
    with pytest.raises(S5GeoError, match=r"missing\.tif"):
        segment_raster(
            tmp_path / "missing.tif",
            IdentityModel(),
            tmp_path / "o.tif",
            metadata=make_metadata(),
            progress=False,
        )


class CacheProbe(IdentityModel):
    """Records GDAL's block cache size (bytes) while the model runs."""

    def forward(self, x):
        from rasterio.env import get_gdal_config

        self.cache = int(get_gdal_config("GDAL_CACHEMAX"))
        return super().forward(x)


def test_gdal_block_cache_is_not_tiny(tmp_path, class_map, monkeypatch) -> None:
    # rasterio.Env(GDAL_CACHEMAX=64) means 64 bytes: JPEG2000 then decodes every block per window.
    import s5geo.inference.segment as segment_module

    monkeypatch.delenv("GDAL_CACHEMAX", raising=False)
    passed = {}
    real_env = segment_module.rasterio.Env

    def recording_env(**options):
        passed.update(options)
        return real_env(**options)

    monkeypatch.setattr(segment_module.rasterio, "Env", recording_env)
    src = write_raster(tmp_path / "in.tif", class_map)
    model = CacheProbe()
    segment_raster(src, model, tmp_path / "out.tif", metadata=make_metadata(), progress=False)
    assert isinstance(passed["GDAL_CACHEMAX"], int) and passed["GDAL_CACHEMAX"] >= 256 * 2**20
    assert model.cache >= 256 * 2**20
