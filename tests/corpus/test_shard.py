import json
import os
import socket

import numpy as np
import pytest
import torch

from s5geo.cli.main import main as s5geo_main
from s5geo.corpus.shard import manifest_samples, write_shards
from s5geo.datasets import MillionSeg
from s5geo.datasets.shards import ShardedSegmentation, decode_image
from s5geo.errors import OutputExistsError, S5GeoError

litdata = pytest.importorskip("litdata")


@pytest.fixture(scope="module")
def shards(built_corpus, tmp_path_factory):
    root, _ = built_corpus
    out = tmp_path_factory.mktemp("shards") / "pseudo"
    samples = manifest_samples(root, "manifest.csv", "pseudo_labeled")
    # one sample per chunk: every rank gets several chunks
    assert write_shards(samples, out, chunk_bytes="1KB", workers=1, progress=False) == 8
    return root, out


def test_shards_hold_the_corpus(shards, tmp_path) -> None:
    root, out = shards
    expected = MillionSeg(root, part="pseudo_labeled")
    reference = {f["image"].name: expected[k] for k, f in enumerate(expected.files)}
    ds = ShardedSegmentation(out)
    assert len(ds) == 8 and ds.classes == MillionSeg.classes
    samples = [ds[k] for k in range(len(ds))]
    assert {s["name"] for s in samples} == set(reference)
    for sample in samples:
        truth = reference[sample["name"]]
        assert sample["image"].dtype == torch.float32 and sample["mask"].dtype == torch.int64
        np.testing.assert_array_equal(sample["image"].numpy(), truth["image"].numpy())
        np.testing.assert_array_equal(sample["mask"].numpy(), truth["mask"].numpy())
    assert "mask" not in ShardedSegmentation(out, with_masks=False)[0]
    with pytest.raises(OutputExistsError):
        write_shards(manifest_samples(root, None, "unlabeled"), out, progress=False)
    with pytest.raises(S5GeoError, match=r"index\.json"):
        ShardedSegmentation(tmp_path)
    with pytest.raises(S5GeoError, match="does not exist"):
        write_shards([(tmp_path / "gone.png", None)], tmp_path / "s", progress=False)
    assert not (tmp_path / "s").exists()


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_decode_tiff_bytes(tmp_path) -> None:
    import rasterio

    data = np.arange(2 * 5 * 6, dtype=np.uint16).reshape(2, 5, 6)
    path = tmp_path / "x.tif"
    with rasterio.open(path, "w", driver="GTiff", height=5, width=6, count=2, dtype="uint16") as dst:
        dst.write(data)
    np.testing.assert_array_equal(decode_image(path.read_bytes()), data)
    with pytest.raises(S5GeoError, match=r"x\.bin"):
        decode_image(b"garbage", "x.bin")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _names(loader, stop: int | None = None) -> list[str]:
    names = []
    for batch in loader:
        names += list(batch["name"])
        if stop is not None and len(names) >= stop:
            break
    return names


def _ddp_worker(rank: int, world: int, port: int, shards: str, out: str) -> None:
    import torch.distributed as dist
    from litdata import StreamingDataLoader

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:

        def loader(state=None):
            ds = ShardedSegmentation(shards, shuffle=True, drop_last=False, seed=3)
            dl = StreamingDataLoader(ds, batch_size=1, num_workers=0)
            if state is not None:
                dl.load_state_dict(state)
            return dl

        epoch = _names(loader())
        first_loader = loader()
        first = _names(first_loader, stop=2)
        state = first_loader.state_dict()
        rest = _names(loader(json.loads(json.dumps(state))))  # the state survives a checkpoint file
        with open(os.path.join(out, f"{rank}.json"), "w") as f:
            json.dump({"epoch": epoch, "first": first, "rest": rest}, f)
    finally:
        dist.destroy_process_group()


@pytest.mark.ddp
def test_two_ranks_read_disjoint_samples_and_resume(shards, tmp_path) -> None:
    _, out = shards
    torch.multiprocessing.start_processes(
        _ddp_worker, args=(2, _free_port(), str(out), str(tmp_path)), nprocs=2, start_method="fork"
    )
    ranks = [json.loads((tmp_path / f"{r}.json").read_text()) for r in range(2)]
    a, b = (set(r["epoch"]) for r in ranks)
    assert not a & b and len(a | b) == 8
    for r in ranks:
        assert len(r["epoch"]) == len(set(r["epoch"])) == 4
        # resumed after two samples: the rest of the same epoch, nothing twice
        assert r["first"] + r["rest"] == r["epoch"]


def test_cli_shard(built_corpus, tmp_path, capsys) -> None:
    root, _ = built_corpus
    out = tmp_path / "val"
    code = s5geo_main(
        [
            "corpus",
            "shard",
            "-r",
            str(root),
            "-o",
            str(out),
            "--part",
            "labeled",
            "--split",
            "val",
            "-j",
            "1",
            "--no-progress",
        ]
    )
    assert code == 0 and "4 labeled samples" in capsys.readouterr().out
    assert len(ShardedSegmentation(out)) == 4
    code = s5geo_main(["corpus", "shard", "-r", str(root), "-o", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and "exists" in err and err.count("\n") == 1
