"""IDX files (the format MNIST ships in): reading, writing, and checking them against pins.

numpy is imported where arrays are made: the command line imports this package to start.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import TYPE_CHECKING

from digitlab.data.datasets import MNIST, DatasetSpec, raw_dir
from digitlab.errors import DataError
from digitlab.files import atomic_path

if TYPE_CHECKING:
    import numpy as np


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_file(path: Path, sha256: str | None) -> str | None:
    """Return what is wrong with `path` (missing, corrupt), or None if it is good.

    Without a pinned sha256 the file must be a whole IDX file of uint8 28×28 images, or of
    uint8 labels, as its name says.
    """
    if not path.is_file():
        return "missing"
    if sha256 is None:
        return check_idx_structure(path, images="images" in path.name)
    actual = sha256_file(path)
    if actual != sha256:
        return f"corrupt or truncated (sha256 {actual[:12]}…, expected {sha256[:12]}…)"
    return None


def check_idx_structure(path: Path, images: bool) -> str | None:
    """What is wrong with `path` as an IDX file of uint8 28×28 images (or of labels), if anything."""
    with open(path, "rb") as f:
        head = f.read(16)
    ndim = 3 if images else 1
    if len(head) < 4 + 4 * ndim or head[:4] != bytes([0, 0, 0x08, ndim]):
        return f"not an IDX file of {'28×28 images' if images else 'labels'} (bad header)"
    shape = [int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    if images and shape[1:] != [28, 28]:
        return f"images are {shape[1]}×{shape[2]}, not 28×28"
    expected = 4 + 4 * ndim + math.prod(shape)
    if path.stat().st_size != expected:
        return f"corrupt or truncated ({path.stat().st_size} bytes, its header promises {expected})"
    return None


def verify(root: Path, spec: DatasetSpec = MNIST) -> dict[str, str | None]:
    """Check every raw file; map file name -> problem (None when good)."""
    folder = raw_dir(root, spec)
    return {name: check_file(folder / name, sha) for name, sha in spec.files.items()}


_IDX_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (the format MNIST ships in) into a numpy array."""
    import numpy as np

    data = Path(path).read_bytes()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number)")
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path} is truncated (header cut short)")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        raise DataError(f"{path} has {len(data)} bytes but its header promises {expected}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file, atomically."""
    import numpy as np

    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    with atomic_path(path) as tmp:
        tmp.write_bytes(header + array.tobytes())
