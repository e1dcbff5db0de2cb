import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from s5geo.cli.main import main as s5geo_main
from s5geo.corpus.shard import manifest_samples, write_shards
from s5geo.datasets import MillionSeg
from s5geo.datasets.shards import ShardedSegmentation
from s5geo.errors import OutputExistsError, S5GeoError
from s5geo.imagefile import decode_image_bytes as decode_image

litdata = pytest.importorskip("litdata")

HERE = Path(__file__).parent


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
    with pytest.raises(S5GeoError, match="chunk size"):
        write_shards(
            manifest_samples(root, None, "unlabeled"), tmp_path / "t", chunk_bytes="big", progress=False
        )


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


SMALL = 36  # samples of the DDP tests: 18 per rank


@pytest.fixture(scope="module")
def small_shards(tmp_path_factory) -> str:
    """Shards of 36 tiny pseudo-labeled samples, written by ``s5geo corpus shard`` in a few chunks."""
    root = tmp_path_factory.mktemp("small")
    folder = root / "corpus" / "unlabeled" / "RS4P-1M"
    for sub in ("images", "masks"):
        (folder / sub).mkdir(parents=True)
    for k in range(SMALL):
        Image.fromarray(np.full((8, 8, 3), k, np.uint8)).save(folder / "images" / f"s{k:02d}.png")
        Image.fromarray(np.full((8, 8), k % 16, np.uint8)).save(folder / "masks" / f"s{k:02d}.png")
    out = root / "shards"
    args = ["corpus", "shard", "-r", str(root / "corpus"), "-o", str(out), "--chunk-bytes", "2000"]
    assert s5geo_main([*args, "-j", "1", "--no-progress"]) == 0
    chunks = json.loads((out / "index.json").read_text())["chunks"]
    assert len(chunks) > 2 and len({c["chunk_size"] for c in chunks}) > 1  # several uneven chunks
    return str(out)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _indices(loader, stop: int | None = None) -> list[int]:
    seen: list[int] = []
    for k, batch in enumerate(loader, 1):
        seen += batch["index"].tolist()
        if k == stop:
            break
    return seen


def _ddp_worker(rank: int, world: int, port: int, shards: str, workers: int, out: str) -> None:
    import torch.distributed as dist
    from litdata import StreamingDataLoader

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:

        def loader(state=None):
            ds = ShardedSegmentation(shards, shuffle=True, drop_last=False, seed=3)
            dl = StreamingDataLoader(ds, batch_size=2, num_workers=workers)
            if state is not None:
                dl.load_state_dict(state)
            return dl

        epoch = _indices(loader())
        first_loader = loader()
        first = _indices(first_loader, stop=3)
        state = first_loader.state_dict()
        rest = _indices(loader(json.loads(json.dumps(state))))  # the state survives a checkpoint file
        with open(os.path.join(out, f"{rank}.json"), "w") as f:
            json.dump({"epoch": epoch, "first": first, "rest": rest}, f)
    finally:
        dist.destroy_process_group()


def _check_ranks(epochs: list[list[int]]) -> None:
    """Each rank saw its own samples once, together all of them."""
    a, b = epochs
    assert len(a) == len(set(a)) == len(b) == len(set(b)) == SMALL // 2
    assert not set(a) & set(b) and set(a) | set(b) == set(range(SMALL))


@pytest.mark.ddp
@pytest.mark.parametrize("workers", [0, 2])
def test_two_ranks_read_disjoint_samples_and_resume(small_shards, workers, tmp_path) -> None:
    torch.multiprocessing.start_processes(
        _ddp_worker,
        args=(2, _free_port(), small_shards, workers, str(tmp_path)),
        nprocs=2,
        start_method="fork",
    )
    ranks = [json.loads((tmp_path / f"{r}.json").read_text()) for r in range(2)]
    _check_ranks([r["epoch"] for r in ranks])
    for r in ranks:
        # stopped after three batches, resumed from the loader state: the rest of the same epoch
        assert len(r["first"]) == 6 and r["first"] + r["rest"] == r["epoch"]


@pytest.mark.ddp
def test_lightning_ddp_resumes_mid_epoch_from_checkpoint(small_shards, tmp_path) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent), env.get("PYTHONPATH", "")])
    env.pop("LOCAL_RANK", None)
    result = subprocess.run(
        [sys.executable, str(HERE / "ddp_sep_resume.py"), small_shards, str(tmp_path), "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen = {
        name: json.loads((tmp_path / f"{name}.json").read_text())
        for name in ("full0", "full1", "stop0", "stop1", "resume0", "resume1")
    }
    _check_ranks([seen["full0"], seen["full1"]])
    for rank in "01":
        full, stop, resume = (seen[name + rank] for name in ("full", "stop", "resume"))
        # 2 steps of 2 samples, then the checkpoint's loader state: the rest of the epoch, in order
        assert stop == full[:4] and stop + resume == full


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
