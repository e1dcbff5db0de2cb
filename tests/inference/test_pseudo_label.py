from functools import partial

import numpy as np
import pytest
from _inference_helpers import NUM_CLASSES, IdentityModel, make_metadata
from PIL import Image

from s5geo.cli.main import main as s5geo_main
from s5geo.errors import S5GeoError
from s5geo.inference.pseudo_label import list_images, pseudo_label


@pytest.fixture
def image_dir(tmp_path):
    """Six RGB images whose red band is the class map; one larger than the 32 px window."""
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    (root / "sub").mkdir(parents=True)
    truth = {}
    for k in range(6):
        shape = (40, 50) if k == 5 else (24, 20)
        classes = rng.integers(0, NUM_CLASSES, shape).astype(np.uint8)
        if k == 0:
            classes[:] = 0  # all background
        rel = f"sub/img{k}.jpg" if k % 2 else f"img{k}.png"
        rgb = np.stack([classes, classes, classes], axis=-1)
        path = root / rel
        # PNG is lossless; "jpg" names hold PNG data here so the class values survive.
        Image.fromarray(rgb).save(path, format="PNG")
        truth[rel] = classes
    return root, truth


def _masks(out):
    return {
        p.relative_to(out).as_posix(): np.asarray(Image.open(p))
        for p in sorted(out.rglob("*.png"))
        if "confidence" not in p.parts
    }


def test_labels_match_and_resume_skips_finished(tmp_path, image_dir) -> None:
    root, truth = image_dir
    out = tmp_path / "labels"
    meta = make_metadata(32, bands=3)
    model = IdentityModel()
    stats = pseudo_label(
        model, root, out, metadata=meta, confidence=True, batch_size=4, device="cpu", progress=False
    )
    assert (stats.labelled, stats.skipped) == (6, 0) and stats.images_per_second > 0
    masks = _masks(out)
    assert set(masks) == {rel.rsplit(".", 1)[0] + ".png" for rel in truth}
    for rel, classes in truth.items():
        np.testing.assert_array_equal(masks[rel.rsplit(".", 1)[0] + ".png"], classes)
    png = Image.open(out / "img0.png")
    assert png.mode == "P" and png.getpalette()[3:6] == list(meta.colors[1])
    assert (np.asarray(Image.open(out / "confidence" / "img0.png")) > 250).all()
    assert not list(out.rglob("*.part"))

    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    (out / "sub" / "img3.png").unlink()
    again = IdentityModel()
    stats = pseudo_label(again, root, out, metadata=meta, confidence=True, device="cpu", progress=False)
    assert (stats.labelled, stats.skipped) == (1, 5)
    assert again.calls == 1
    for p, mtime in mtimes.items():
        if p.name != "img3.png":  # its mask and confidence map were rewritten
            assert p.stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(np.asarray(Image.open(out / "sub" / "img3.png")), truth["sub/img3.jpg"])


def test_shards_partition_the_list(tmp_path, image_dir) -> None:
    root, truth = image_dir
    seen = []
    for i in range(3):
        out = tmp_path / f"shard{i}"
        stats = pseudo_label(
            IdentityModel(),
            root,
            out,
            metadata=make_metadata(32, bands=3),
            shard=(i, 3),
            device="cpu",
            progress=False,
        )
        names = set(_masks(out))
        assert stats.labelled == len(names) == 2
        seen.append(names)
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    assert set().union(*seen) == {rel.rsplit(".", 1)[0] + ".png" for rel in truth}
    with pytest.raises(S5GeoError, match="shard"):
        pseudo_label(
            IdentityModel(),
            root,
            tmp_path / "x",
            metadata=make_metadata(32, bands=3),
            shard=(3, 3),
            device="cpu",
            progress=False,
        )


def test_foreground_filter_and_manifest(tmp_path, image_dir) -> None:
    root, truth = image_dir
    manifest = root / "list.txt"
    manifest.write_text("# images\n" + "\n".join(sorted(truth)) + "\n")
    assert [rel.as_posix() for _, rel in list_images(manifest)] == sorted(truth)
    threshold = 300
    out = tmp_path / "labels"
    listing = tmp_path / "fg.txt"
    run = partial(
        pseudo_label,
        IdentityModel(),
        manifest,
        out,
        metadata=make_metadata(32, bands=3),
        min_foreground=threshold,
        foreground_list=listing,
        device="cpu",
        progress=False,
    )
    stats = run()
    expected = sorted(rel for rel, c in truth.items() if (c != 0).sum() >= threshold)
    assert 0 < len(expected) < len(truth)
    assert listing.read_text().split() == expected and stats.foreground == len(expected)
    # Resumed run (everything skipped) rebuilds the same list from the existing masks.
    listing.unlink()
    run()
    assert listing.read_text().split() == expected


def test_cli_pseudo_label_missing_images_is_one_line_error(tmp_path, capsys) -> None:
    code = s5geo_main(
        [
            "pseudo-label",
            "--model",
            "m.ckpt",
            "--images",
            str(tmp_path / "nope"),
            "--output",
            str(tmp_path / "out"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "nope" in err
