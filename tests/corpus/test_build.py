import csv
import json

import numpy as np
import pytest
import rasterio
from _corpus_helpers import DATA, SOURCES, source_specs
from PIL import Image

from s5geo.cli.main import main as s5geo_main
from s5geo.corpus import build_corpus, parse_source
from s5geo.corpus.build import CLASSES
from s5geo.datasets import ISAIDSegmentation, MillionSeg
from s5geo.errors import S5GeoError


def _rows(root):
    with open(root / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def _red(path):
    return np.asarray(Image.open(path))[..., 0]


def test_parse_source() -> None:
    s = parse_source("isaid=/data/iSAID")
    assert (s.kind, s.crop, s.labeled) == ("isaid", 1024, True)
    s = parse_source("dota=/data/DOTA/images")
    assert (s.kind, s.crop, s.stride, s.labeled) == ("images", 512, None, False)
    s = parse_source("sior=/d,crop=whole")
    assert s.crop is None
    s = parse_source("mine=/d,crop=256,stride=128,masks=/m,split=val")
    assert (s.crop, s.stride, s.labeled, s.split) == (256, 128, True, "val")
    for bad in ("dota", "dota=/d,size=3", "dota=/d,crop=big", "dota=/d,kind=coco", "x=/d,split=test"):
        with pytest.raises(S5GeoError, match="source"):
            parse_source(bad)


def test_layout_filter_manifest_and_statistics(built_corpus) -> None:
    out, stats = built_corpus
    assert stats.failed == [] and stats.source_images == 8 and stats.processed == 8
    rows = _rows(out)
    assert len(rows) == stats.crops == 19
    # dota: 48x80 -> 2 rows x 3 columns of 32 px (last ones on the border); only the bottom row,
    # whose red band holds classes, has foreground; P0200 is all background; sior 00002 too.
    kept = {r["image"].rsplit("/", 1)[1] for r in rows if r["source"] in ("dota", "sior")}
    assert kept == {"dota_P0100_16_0.png", "dota_P0100_16_32.png", "dota_P0100_16_48.png", "sior_00001.png"}
    assert stats.rejected == 8
    assert not list((out / "unlabeled" / "RS4P-1M" / "images").glob("dota_P0200*"))
    assert not list((out / "unlabeled" / "RS4P-1M" / "masks").glob("sior_00002*"))
    # crops hold the source window; whole images are kept whole
    row = next(r for r in rows if r["image"].endswith("dota_P0100_16_48.png"))
    x, y, w, h = (int(row[k]) for k in ("x", "y", "width", "height"))
    source = np.asarray(Image.open(SOURCES / "dota" / "P0100.png"))
    np.testing.assert_array_equal(np.asarray(Image.open(out / row["image"])), source[y : y + h, x : x + w])
    np.testing.assert_array_equal(_red(out / row["image"]), np.asarray(Image.open(out / row["mask"])))
    assert Image.open(out / "unlabeled/RS4P-1M/images/sior_00001.png").size == (20, 24)
    # the georeferenced scene (stride 16 on 36 px: offsets 0 and 4), written as PNG
    geo = sorted(r["image"] for r in rows if r["source"] == "geo")
    assert [g.rsplit("/", 1)[1] for g in geo] == [f"geo_scene_{a}_{b}.png" for a in (0, 4) for b in (0, 4)]
    with rasterio.open(SOURCES / "geo" / "scene.tif") as src:
        window = src.read(window=((4, 36), (0, 32)))
    np.testing.assert_array_equal(np.moveaxis(np.asarray(Image.open(out / geo[2])), -1, 0), window)
    # labeled iSAID crops decode the colour masks like ISAIDSegmentation does, splits kept
    whole = ISAIDSegmentation(DATA / "isaid", split="train", tile_size=None)
    mask = whole[0]["mask"].numpy()
    crop = np.asarray(Image.open(out / "labeled/iSAID/train/masks/isaid_P0000_16_38.png"))
    np.testing.assert_array_equal(crop, mask[16:48, 38:70])
    grey = np.asarray(Image.open(out / "labeled/iSAID/train/images/isaid_P0001_0_0.png"))
    assert grey.shape == (20, 30, 3)  # grey image as 3 bands, smaller than a crop: kept as it is

    # MillionSeg reads the layout, the manifest and the split files alike
    for part, count in (("labeled", 7), ("pseudo_labeled", 8), ("unlabeled", 8)):
        assert len(MillionSeg(out, part=part)) == count
        assert len(MillionSeg(out, part=part, manifest="manifest.csv")) == count
    assert len(MillionSeg(out, part="labeled", split="val", manifest="splits/val.txt")) == 4
    assert len(MillionSeg(out, part="pseudo_labeled", manifest="splits/unlabeled/RS4P-1M.txt")) == 8
    sample = MillionSeg(out, part="pseudo_labeled")[0]
    assert sample["image"].shape[0] == 3 and sample["mask"].max() < 16

    # statistics: pixels per class and images per class add up to the masks
    summary = json.loads((out / "statistics.json").read_text())
    assert summary["classes"] == list(CLASSES)
    for key, part, split in (
        ("labeled/train", "labeled", "train"),
        ("labeled/val", "labeled", "val"),
        ("pseudo_labeled", "pseudo_labeled", "train"),
    ):
        masks = [np.asarray(Image.open(f["mask"])) for f in MillionSeg(out, part=part, split=split).files]
        entry = summary["parts"][key]
        assert entry["images"] == len(masks)
        for k, name in enumerate(CLASSES):
            assert entry["class_pixels"][name] == sum(int((m == k).sum()) for m in masks)
            assert entry["class_images"][name] == sum(int((m == k).any()) for m in masks)
    assert summary["sources"]["dota"] == {"source_images": 2, "crops": 3, "rejected": 7}
    assert not list(out.rglob("*.part"))


def test_resume_skips_finished_and_parallel_matches(tmp_path) -> None:
    sources = [parse_source(s) for s in source_specs()]
    out = tmp_path / "c"
    first = build_corpus(sources, out, workers=2, progress=False)
    assert first.crops == 27 and first.rejected == 0  # no filter: every crop kept, no masks
    assert not (out / "unlabeled" / "RS4P-1M" / "masks").exists()
    # an interrupted run: last log line cut, one crop missing
    log = out / ".s5geo-corpus" / "crops.jsonl"
    lines = log.read_text().splitlines()
    log.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:20])
    lost = out / json.loads(lines[-1])["crops"][0]["image"]
    lost.unlink()
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    again = build_corpus(sources, out, workers=0, progress=False)
    assert again.resumed == 7 and again.processed == 1 and again.crops == 27
    assert lost.exists()
    for path, mtime in mtimes.items():
        assert path.stat().st_mtime_ns == mtime  # finished crops are never rewritten
    serial = tmp_path / "serial"
    build_corpus(sources, serial, workers=0, progress=False)
    assert _rows(serial) == _rows(out)
    assert (serial / "statistics.json").read_text() == (out / "statistics.json").read_text()


def test_refusals(tmp_path) -> None:
    sources = [parse_source(f"dota={SOURCES / 'dota'},crop=32")]
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep me")
    with pytest.raises(S5GeoError, match="did not write"):
        build_corpus(sources, user, progress=False)
    assert (user / "notes.txt").read_text() == "keep me"
    with pytest.raises(S5GeoError, match="overlap"):
        build_corpus(sources, SOURCES / "dota" / "out", progress=False)
    with pytest.raises(S5GeoError, match="twice"):
        build_corpus(sources * 2, tmp_path / "x", progress=False)
    build_corpus(sources, tmp_path / "c", progress=False)
    with pytest.raises(S5GeoError, match="same settings"):
        build_corpus([parse_source(f"dota={SOURCES / 'dota'},crop=16")], tmp_path / "c", progress=False)


def test_unreadable_image_is_reported_and_retried(tmp_path) -> None:
    folder = tmp_path / "src"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "good.png")
    (folder / "bad.png").write_bytes(b"not an image")
    stats = build_corpus([parse_source(f"x={folder},crop=32")], tmp_path / "c", progress=False)
    assert stats.crops == 1 and len(stats.failed) == 1 and "bad.png" in stats.failed[0][1]
    again = build_corpus([parse_source(f"x={folder},crop=32")], tmp_path / "c", progress=False)
    assert again.resumed == 1 and len(again.failed) == 1


def test_cli(tmp_path, capsys) -> None:
    out = tmp_path / "c"
    code = s5geo_main(
        [
            "corpus",
            "build",
            "-s",
            f"sior={SOURCES / 'sior'},crop=whole",
            "-o",
            str(out),
            "-j",
            "0",
            "--no-progress",
        ]
    )
    assert code == 0 and "2 crops from 2 source images" in capsys.readouterr().out
    assert len(MillionSeg(out, part="unlabeled", manifest="manifest.csv")) == 2
    code = s5geo_main(["corpus", "build", "-s", f"x={tmp_path / 'missing'}", "-o", str(tmp_path / "d")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "missing does not exist" in err


def test_jpeg_sources_are_cropped_as_the_readers_decode_them(tmp_path) -> None:
    from s5geo.imagefile import read_image_file

    source = tmp_path / "aid"
    source.mkdir()
    yy, xx = np.mgrid[0:50, 0:70]
    rgb = ((np.sin(yy / 4.0) + np.cos(xx / 6.0))[..., None] * 60 + 120 + np.arange(3) * 10).astype(np.uint8)
    Image.fromarray(rgb).save(source / "scene.jpg", quality=80)
    out = tmp_path / "corpus"
    stats = build_corpus([parse_source(f"aid={source},crop=32")], out, progress=False)
    assert stats.crops == 6 and stats.failed == []
    whole = read_image_file(source / "scene.jpg")  # Pillow's decode, as datasets and shards read it
    for row in _rows(out):
        x, y, w, h = (int(row[k]) for k in ("x", "y", "width", "height"))
        crop = np.moveaxis(np.asarray(Image.open(out / row["image"])), -1, 0)
        np.testing.assert_array_equal(crop, whole[:, y : y + h, x : x + w])
