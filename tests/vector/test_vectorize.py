from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import rasterio
import shapely
from affine import Affine

from s5geo.errors import OutputExistsError, S5GeoError
from s5geo.vector import vectorize

PROJECTED = "EPSG:32119"  # NC State Plane, metres
GEOGRAPHIC = "EPSG:4326"
PX = 10.0


def from_origin(west: float, north: float, xsize: float, ysize: float) -> Affine:
    return Affine(xsize, 0.0, west, 0.0, -ysize, north)


def xy(transform: Affine, row: int, col: int) -> tuple[float, float]:
    """CRS coordinates of the upper-left corner of pixel (row, col)."""
    return transform.c + col * transform.a, transform.f + row * transform.e


TRANSFORM = from_origin(600_000.0, 200_000.0, PX, PX)


def blobby_map(height: int, width: int, n_classes: int, seed: int, noise: float = 0.6) -> np.ndarray:
    """Random land-cover-like map: argmax of smooth random fields plus a little fine noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.standard_normal((n_classes, height // 6 + 2, width // 6 + 2))
    fields = coarse.repeat(6, axis=1).repeat(6, axis=2)[:, :height, :width]
    fields = fields + noise * rng.standard_normal((n_classes, height, width))
    return fields.argmax(axis=0).astype(np.uint8)


def structured_map() -> np.ndarray:
    """41 x 37 map with a snake spanning many blocks, a ring with a hole cut by block lines,
    diagonal (corner-only) contacts across block lines, and noise."""
    m = np.zeros((41, 37), dtype=np.uint8)
    m[2:5, 1:35] = 1  # long bar across all block columns
    m[2:38, 32:35] = 1  # down the right side
    m[35:38, 3:35] = 1  # back along the bottom: one U-shaped region over many blocks
    m[10:22, 10:22] = 2  # square ring of class 2 ...
    m[13:19, 13:19] = 3  # ... around a class-3 hole, both cut by the 8-px block lines
    m[15, 15] = 0  # a hole inside the hole
    # corner-only contacts on block corners (8, 8) and (24, 24): must stay separate polygons
    m[7, 7] = 4
    m[8, 8] = 4
    m[23, 23] = 4
    m[24, 24] = 4
    rng = np.random.default_rng(3)
    noise = rng.choice(np.array([0, 3, 4], dtype=np.uint8), size=(8, 8))
    m[25:33, 5:13] = noise
    return m


def write_raster(path, array, *, crs=PROJECTED, transform=TRANSFORM, nodata=None, tags=None):
    profile = {
        "driver": "GTiff",
        "height": array.shape[0],
        "width": array.shape[1],
        "count": 1,
        "dtype": array.dtype,
        "crs": crs,
        "transform": transform,
        "tiled": True,
        "blockxsize": 16,
        "blockysize": 16,
        "nodata": nodata,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array, 1)
        if tags:
            dst.update_tags(**tags)
    return path


def assert_same_polygons(a: gpd.GeoDataFrame, b: gpd.GeoDataFrame) -> None:
    """Same polygons: equal counts per class and every polygon of ``a`` equals one of ``b``."""
    assert a.class_id.value_counts().to_dict() == b.class_id.value_counts().to_dict()
    tree = shapely.STRtree(b.geometry.values)
    probes = shapely.point_on_surface(a.geometry.values)
    probe_idx, b_idx = tree.query(probes, predicate="within")
    assert np.array_equal(np.sort(probe_idx), np.arange(len(a)))  # each probe in exactly one
    assert (a.class_id.values[probe_idx] == b.class_id.values[b_idx]).all()
    assert shapely.equals(a.geometry.values[probe_idx], b.geometry.values[b_idx]).all()
    assert shapely.symmetric_difference(
        shapely.union_all(a.geometry.values), shapely.union_all(b.geometry.values)
    ).area == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("block_size", [8, 13])
def test_blockwise_equals_whole_raster(block_size):
    m = structured_map()
    whole = vectorize(m, transform=TRANSFORM, crs=PROJECTED, block_size=4096, progress=False)
    blocks = vectorize(m, transform=TRANSFORM, crs=PROJECTED, block_size=block_size, progress=False)
    assert_same_polygons(whole, blocks)
    # the U-shaped class-1 region spans every block yet is one polygon
    u = blocks[blocks.class_id == 1]
    assert len(u) == 1 and u.area_m2.item() == pytest.approx((m == 1).sum() * PX * PX)
    # corner-only contacts stay separate (4-connectivity), as in whole-raster polygonising
    assert (blocks.class_id == 4).sum() >= 4


def test_blockwise_equals_rasterio_shapes_on_random_map():
    from rasterio.features import shapes

    m = blobby_map(70, 61, 5, seed=1)
    m[30:40, 20:45] = 255  # nodata strip
    valid = m != 255
    reference = [
        (shapely.geometry.shape(g), int(v))
        for g, v in shapes(m, mask=valid, connectivity=4, transform=TRANSFORM)
    ]
    ref = gpd.GeoDataFrame({"class_id": [v for _, v in reference]}, geometry=[g for g, _ in reference])
    got = vectorize(m, transform=TRANSFORM, crs=PROJECTED, nodata=255, block_size=9, progress=False)
    assert_same_polygons(ref, got.reset_index(drop=True))


def test_file_input_blockwise_with_nodata_matches_whole(tmp_path):
    m = blobby_map(50, 45, 4, seed=2)
    m[:, :5] = 9
    path = write_raster(tmp_path / "map.tif", m, nodata=9)
    whole = vectorize(path, block_size=1000, progress=False)
    blocks = vectorize(path, block_size=16, progress=False)
    assert_same_polygons(whole, blocks)
    assert 9 not in set(blocks.class_id)


def test_holes_kept():
    m = np.zeros((30, 30), dtype=np.uint8)
    m[5:25, 5:25] = 1
    m[10:20, 10:20] = 2  # hole of class 1, cut by the block lines at 8, 16
    gdf = vectorize(m, transform=TRANSFORM, crs=PROJECTED, block_size=8, progress=False)
    ring = gdf[gdf.class_id == 1].geometry.values
    assert len(ring) == 1
    assert shapely.get_num_interior_rings(ring[0]) == 1
    assert ring[0].area == pytest.approx((400 - 100) * PX * PX)
    outer = gdf[gdf.class_id == 0].geometry.values
    assert len(outer) == 1 and shapely.get_num_interior_rings(outer[0]) == 1


def test_area_projected_metres_and_feet():
    m = np.zeros((20, 20), dtype=np.uint8)
    m[3:8, 4:11] = 1  # 5 x 7 pixels
    gdf = vectorize(m, transform=TRANSFORM, crs=PROJECTED, block_size=6, progress=False)
    assert gdf[gdf.class_id == 1].area_m2.item() == pytest.approx(35 * PX * PX)
    assert gdf.area_m2.sum() == pytest.approx(400 * PX * PX)
    feet = vectorize(m, transform=TRANSFORM, crs="EPSG:2264", progress=False)  # NC, US survey ft
    ft_us = 1200 / 3937
    assert feet[feet.class_id == 1].area_m2.item() == pytest.approx(35 * (PX * ft_us) ** 2)


def test_area_geographic_within_half_percent():
    res = 0.001  # degrees, ~100 m
    transform = from_origin(-79.0, 36.0, res, res)
    m = np.zeros((40, 40), dtype=np.uint8)
    m[10:30, 5:25] = 1  # 20 x 20 pixels
    gdf = vectorize(m, transform=transform, crs=GEOGRAPHIC, block_size=16, progress=False)
    west, north = xy(transform, 10, 5)
    east, south = xy(transform, 30, 25)
    geod = pyproj.Geod(ellps="WGS84")
    expected, _ = geod.polygon_area_perimeter([west, east, east, west], [north, north, south, south])
    got = gdf[gdf.class_id == 1].area_m2.item()
    assert got == pytest.approx(abs(expected), rel=0.005)
    assert 3e6 < got < 5e6  # ~ (2 km)^2 at 36 N, not square degrees


def islands_map() -> np.ndarray:
    m = np.zeros((24, 24), dtype=np.uint8)
    m[6:18, 6:18] = 2  # 144 px = 14400 m2, kept
    m[7:9, 7:9] = 1  # 4 px island inside class 2, crosses the block line at 8
    m[1:3, 15:18] = 3  # 6 px island in class 0, crosses the block line at 16
    return m


@pytest.mark.parametrize("block_size", [8, 100])
def test_min_area_merge_sieves_into_neighbour(block_size):
    m = islands_map()
    gdf = vectorize(
        m,
        transform=TRANSFORM,
        crs=PROJECTED,
        min_area=1000.0,  # 10 px at 10 m
        block_size=block_size,
        progress=False,
    )
    assert set(gdf.class_id) == {0, 2}
    big = gdf[gdf.class_id == 2].geometry.values
    assert len(big) == 1 and shapely.get_num_interior_rings(big[0]) == 0
    assert gdf[gdf.class_id == 2].area_m2.sum() == pytest.approx(144 * PX * PX)
    assert gdf.area_m2.sum() == pytest.approx(24 * 24 * PX * PX)  # merged, not lost


def test_min_area_merge_blockwise_close_to_whole_raster_sieve():
    m = blobby_map(80, 70, 4, seed=2)
    kw = {"transform": TRANSFORM, "crs": PROJECTED, "min_area": 500.0, "progress": False}
    whole = vectorize(m, block_size=1000, **kw)
    blocks = vectorize(m, block_size=13, **kw)
    raw = vectorize(m, transform=TRANSFORM, crs=PROJECTED, progress=False)
    assert len(whole) < 0.5 * len(raw)  # the sieve did remove many regions
    assert abs(len(blocks) - len(whole)) <= 0.05 * len(whole)
    per_class = blocks.groupby("class_id").area_m2.sum() - whole.groupby("class_id").area_m2.sum()
    assert per_class.abs().max() <= 0.01 * m.size * PX * PX
    assert blocks.area_m2.sum() == pytest.approx(m.size * PX * PX)


def test_min_area_drop_removes_small_polygons():
    m = islands_map()
    kept = vectorize(m, transform=TRANSFORM, crs=PROJECTED, block_size=8, progress=False)
    gdf = vectorize(
        m,
        transform=TRANSFORM,
        crs=PROJECTED,
        min_area=1000.0,
        min_area_mode="drop",
        block_size=8,
        progress=False,
    )
    assert set(kept.class_id) == {0, 1, 2, 3}
    assert set(gdf.class_id) == {0, 2}
    assert (gdf.area_m2 >= 1000.0).all()
    # dropped regions leave empty space: class 2 keeps the hole where the island was
    big = gdf[gdf.class_id == 2].geometry.values
    assert shapely.get_num_interior_rings(big[0]) == 1
    assert gdf.area_m2.sum() == pytest.approx((24 * 24 - 4 - 6) * PX * PX)


def test_simplified_polygons_form_valid_coverage():
    m = blobby_map(60, 60, 4, seed=5, noise=0.15)
    plain = vectorize(m, transform=TRANSFORM, crs=PROJECTED, block_size=16, progress=False)
    simple = vectorize(m, transform=TRANSFORM, crs=PROJECTED, simplify=2 * PX, block_size=16, progress=False)
    geoms = simple.geometry.values
    assert len(simple) == len(plain)
    assert shapely.is_valid(geoms).all()
    assert shapely.coverage_is_valid(geoms)
    # polygons away from the raster edge (whose boundary is kept as is) lose vertices
    frame = shapely.box(*xy(TRANSFORM, 60, 0), *xy(TRANSFORM, 0, 60)).boundary
    inner = ~shapely.intersects(plain.geometry.values, frame)
    plain_inner = plain.geometry.values[inner]
    n_plain = shapely.get_num_coordinates(plain_inner).sum()
    assert shapely.get_num_coordinates(geoms[inner]).sum() < 0.8 * n_plain
    # each polygon stays close to its pixel outline
    assert shapely.hausdorff_distance(geoms[inner], plain_inner).max() <= 3 * 2 * PX
    # no overlaps: areas add up to the area of the union, which is the unsimplified footprint
    union = shapely.union_all(geoms)
    assert shapely.area(geoms).sum() == pytest.approx(union.area, rel=1e-9)
    assert union.area == pytest.approx(60 * 60 * PX * PX, rel=1e-9)


def test_nodata_gives_no_polygons(tmp_path):
    m = blobby_map(32, 32, 3, seed=4)
    m[8:20, 4:28] = 255
    path = write_raster(tmp_path / "nd.tif", m, nodata=255)
    gdf = vectorize(path, block_size=10, progress=False)
    assert 255 not in set(gdf.class_id)
    hole = shapely.box(*xy(TRANSFORM, 20, 4), *xy(TRANSFORM, 8, 28))
    assert shapely.intersection(shapely.union_all(gdf.geometry.values), hole).area == 0
    assert gdf.area_m2.sum() == pytest.approx(((m != 255).sum()) * PX * PX)
    # nodata given as an argument for an array input
    arr = vectorize(m, transform=TRANSFORM, crs=PROJECTED, nodata=255, progress=False)
    assert arr.area_m2.sum() == pytest.approx(gdf.area_m2.sum())


def test_class_names_from_tags_and_crs(tmp_path):
    m = np.zeros((10, 10), dtype=np.uint8)
    m[:, 5:] = 1
    m[0, 0] = 2
    tags = {"classes": json.dumps(["water", "forest"])}
    gdf = vectorize(write_raster(tmp_path / "c.tif", m, tags=tags), progress=False)
    names = dict(zip(gdf.class_id, gdf.class_name, strict=True))
    assert names == {0: "water", 1: "forest", 2: "class_2"}
    assert gdf.crs.to_epsg() == 32119


@pytest.mark.parametrize("suffix", [".gpkg", ".geojson", ".parquet"])
def test_write_round_trip(tmp_path, suffix):
    m = structured_map()
    out = tmp_path / f"polygons{suffix}"
    gdf = vectorize(
        m,
        transform=TRANSFORM,
        crs=PROJECTED,
        classes=["a", "b", "c", "d", "e"],
        output=out,
        block_size=8,
        progress=False,
    )
    back = gpd.read_parquet(out) if suffix == ".parquet" else gpd.read_file(out)
    assert len(back) == len(gdf) > 0
    assert list(back.class_id) == list(gdf.class_id)
    assert list(back.class_name) == list(gdf.class_name)
    assert np.allclose(back.area_m2, gdf.area_m2)
    assert back.crs.to_epsg() == 32119
    assert shapely.equals(back.geometry.values, gdf.geometry.values).all()
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind


def test_existing_output_kept_without_overwrite(tmp_path):
    out = tmp_path / "p.gpkg"
    out.write_bytes(b"keep me")
    m = structured_map()
    with pytest.raises(OutputExistsError):
        vectorize(m, transform=TRANSFORM, crs=PROJECTED, output=out, progress=False)
    assert out.read_bytes() == b"keep me"
    vectorize(m, transform=TRANSFORM, crs=PROJECTED, output=out, overwrite=True, progress=False)
    assert len(gpd.read_file(out)) > 0


def test_bad_inputs_raise_s5geo_errors(tmp_path):
    with pytest.raises(S5GeoError, match="no such file"):
        vectorize(tmp_path / "missing.tif", progress=False)
    with pytest.raises(S5GeoError, match="unknown vector format"):
        vectorize(structured_map(), output=tmp_path / "x.shp", progress=False)
    with pytest.raises(S5GeoError, match="integers"):
        vectorize(np.zeros((4, 4), dtype=np.float32), progress=False)


def test_polygons_line_up_with_raster(tmp_path):
    from rasterio.features import rasterize

    m = blobby_map(45, 52, 5, seed=7)
    m[20:30, 10:20] = 255
    path = write_raster(tmp_path / "map.tif", m, nodata=255)
    gdf = vectorize(path, output=tmp_path / "p.gpkg", block_size=16, progress=False)
    back = gpd.read_file(tmp_path / "p.gpkg")
    burned = rasterize(
        zip(back.geometry, back.class_id, strict=True),
        out_shape=m.shape,
        transform=TRANSFORM,
        fill=255,
        dtype="uint8",
    )
    assert np.array_equal(burned, m)
    assert len(back) == len(gdf)


def test_simplify_is_in_metres_on_a_geographic_crs():
    # 0.0001 degree pixels (~11 m at 35 N): a 15 m tolerance smooths staircase edges; read as
    # degrees it would have collapsed every polygon into a triangle.
    m = blobby_map(60, 60, 3, seed=7, noise=0.0)
    transform = from_origin(-78.8, 35.9, 0.0001, 0.0001)
    plain = vectorize(m, transform=transform, crs=GEOGRAPHIC, block_size=32, progress=False)
    simple = vectorize(m, transform=transform, crs=GEOGRAPHIC, simplify=15.0, block_size=32, progress=False)
    assert len(simple) == len(plain)
    assert simple.area_m2.sum() == pytest.approx(plain.area_m2.sum(), rel=1e-3)
    assert shapely.is_valid(simple.geometry.values).all()
    largest = simple.geometry.values[np.argmax(simple.area_m2.values)]
    assert shapely.get_num_coordinates(largest) > 8  # not a triangle
