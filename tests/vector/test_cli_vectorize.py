from __future__ import annotations

import geopandas as gpd
import numpy as np
import rasterio
from affine import Affine

from s5geo.cli.main import main


def test_cli_missing_file_is_one_line_error(tmp_path, capsys):
    status = main(["vectorize", str(tmp_path / "nope.tif"), "--output", str(tmp_path / "p.gpkg")])
    captured = capsys.readouterr()
    assert status == 1
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("s5geo vectorize: error:") and "nope.tif" in lines[0]
    assert "Traceback" not in captured.err


def test_cli_writes_gpkg_and_prints_summary(tmp_path, capsys):
    m = np.zeros((20, 20), dtype=np.uint8)
    m[2:10, 2:10] = 1
    m[12:14, 12:14] = 2  # 4 px = 400 m2, sieved away by --min-area 500
    path = tmp_path / "map.tif"
    with rasterio.open(
        path, "w", driver="GTiff", height=20, width=20, count=1, dtype="uint8",
        crs="EPSG:32119", transform=Affine(10, 0, 0, 0, -10, 200),
    ) as dst:  # fmt: skip
        dst.write(m, 1)
    out = tmp_path / "p.gpkg"
    args = [str(path), "-o", str(out), "--min-area", "500", "--block-size", "7", "--quiet"]
    assert main(["vectorize", *args]) == 0
    gdf = gpd.read_file(out)
    assert sorted(gdf.class_id) == [0, 1]
    assert main(["vectorize", str(path), "-o", str(out)]) == 1  # exists, no --overwrite
    assert "exists" in capsys.readouterr().err
    assert main(["vectorize", str(path), "-o", str(out), "--overwrite"]) == 0
    output = capsys.readouterr().out
    assert "class_2" in output and "polygons" in output
