"""One decoder per format, files and bytes alike: JPEG with Pillow (as the S5 reference), the rest GDAL."""

from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.windows import Window

from s5geo.errors import S5GeoError
from s5geo.imagefile import decode_image_bytes, read_image_file


def _photo(height: int = 40, width: int = 56) -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    smooth = (np.sin(yy / 5.0) + np.cos(xx / 7.0)) * 60 + 120
    return (smooth[..., None] + rng.integers(0, 40, size=(height, width, 3))).clip(0, 255).astype(np.uint8)


@pytest.fixture
def jpeg(tmp_path: Path) -> Path:
    path = tmp_path / "photo.jpg"
    Image.fromarray(_photo()).save(path, quality=85)
    return path


def test_jpeg_is_decoded_as_pillow_does_from_files_bytes_and_windows(jpeg: Path) -> None:
    with Image.open(jpeg) as image:
        reference = np.moveaxis(np.asarray(image.convert("RGB")), -1, 0)
    array = read_image_file(jpeg)
    assert array.dtype == np.uint8 and array.shape == (3, 40, 56)
    np.testing.assert_array_equal(array, reference)
    np.testing.assert_array_equal(decode_image_bytes(jpeg.read_bytes(), "x"), reference)
    np.testing.assert_array_equal(read_image_file(jpeg, [3, 1]), reference[[2, 0]])
    window = read_image_file(jpeg, [2], Window(col_off=10, row_off=5, width=16, height=20))
    np.testing.assert_array_equal(window, reference[[1], 5:25, 10:26])


def test_grey_and_cmyk_jpegs(tmp_path: Path) -> None:
    grey = tmp_path / "grey.jpg"
    Image.fromarray(_photo()[..., 0]).save(grey)
    assert read_image_file(grey).shape == (1, 40, 56)
    cmyk = tmp_path / "cmyk.jpg"
    Image.fromarray(_photo()).convert("CMYK").save(cmyk)
    assert read_image_file(cmyk).shape == (3, 40, 56)


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_png_keeps_its_values_from_files_and_bytes(tmp_path: Path) -> None:
    data = np.random.default_rng(1).integers(0, 65535, size=(3, 12, 9)).astype(np.uint16)
    png = tmp_path / "deep.png"
    with rasterio.open(png, "w", driver="PNG", height=12, width=9, count=3, dtype="uint16") as dst:
        dst.write(data)
    # 16-bit colour PNG: Pillow would reduce it to 8 bits.
    np.testing.assert_array_equal(read_image_file(png), data)
    np.testing.assert_array_equal(decode_image_bytes(png.read_bytes()), data)
    mask = tmp_path / "mask.png"
    Image.fromarray((_photo()[..., 0] % 7).astype(np.uint8)).save(mask)
    np.testing.assert_array_equal(decode_image_bytes(mask.read_bytes()), read_image_file(mask))


def test_bad_files_are_one_clear_error(tmp_path: Path, jpeg: Path) -> None:
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(jpeg.read_bytes()[: jpeg.stat().st_size // 2])
    with pytest.raises(S5GeoError, match=r"cut\.jpg: cannot read JPEG"):
        read_image_file(cut)
    with pytest.raises(S5GeoError, match=r"photo\.jpg: has 3 band\(s\), cannot read bands \[4\]"):
        read_image_file(jpeg, [4])
    with pytest.raises(S5GeoError, match=r"cannot read raster"):
        read_image_file(tmp_path / "missing.png")
    with pytest.raises(S5GeoError, match=r"blob: cannot decode"):
        decode_image_bytes(b"not an image", "blob")


def test_windows_of_one_jpeg_decode_it_once(jpeg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from s5geo import imagefile

    imagefile._last_jpeg.cache_clear()
    decoded = []
    real = imagefile._decode_jpeg
    monkeypatch.setattr(
        imagefile, "_decode_jpeg", lambda source, name: decoded.append(name) or real(source, name)
    )
    first = read_image_file(jpeg, window=Window(0, 0, 8, 8))
    first[:] = 0  # a caller may write into its window: the kept image must not change
    again = read_image_file(jpeg, window=Window(0, 0, 8, 8))
    assert len(decoded) == 1 and again.any()
    with Image.open(jpeg) as image:
        np.testing.assert_array_equal(again, np.moveaxis(np.asarray(image), -1, 0)[:, :8, :8])
